"""The action space: CompilerGym's 124 LLVM pass flags, run through LLVM 19's new pass manager.

Action names stay CompilerGym's (``-sroa``, ``-early-cse-memssa``), so a command line reads
the same in both. Most flags keep their name as a new-pass-manager pipeline; the rest are
renamed or replaced, as :data:`SUBSTITUTIONS` lists with the reason for each.

LLVM 19's ``opt`` no longer takes legacy flags (``opt -instcombine``): :func:`opt_pipeline`
writes an episode as the ``opt-19 -passes='...'`` pipeline that runs exactly what the env
ran. Every flag has one: the substitutes above, each step in its own adaptor, analyses
dropped between steps; ``-barrier`` and ``-loop-reroll`` (no-ops) have nothing to run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# CompilerGym's LLVM action space, in its order (action i is FLAGS[i]).
FLAGS: tuple[str, ...] = (
    "-add-discriminators", "-adce", "-aggressive-instcombine", "-alignment-from-assumptions",
    "-always-inline", "-argpromotion", "-attributor", "-barrier", "-bdce", "-break-crit-edges",
    "-simplifycfg", "-callsite-splitting", "-called-value-propagation", "-canonicalize-aliases",
    "-consthoist", "-constmerge", "-constprop", "-coro-cleanup", "-coro-early", "-coro-elide",
    "-coro-split", "-correlated-propagation", "-cross-dso-cfi", "-deadargelim", "-dce", "-die",
    "-dse", "-reg2mem", "-div-rem-pairs", "-early-cse-memssa", "-early-cse", "-elim-avail-extern",
    "-ee-instrument", "-flattencfg", "-float2int", "-forceattrs", "-inline",
    "-insert-gcov-profiling", "-gvn-hoist", "-gvn", "-globaldce", "-globalopt", "-globalsplit",
    "-guard-widening", "-hotcoldsplit", "-ipconstprop", "-ipsccp", "-indvars", "-irce",
    "-infer-address-spaces", "-inferattrs", "-inject-tli-mappings", "-instsimplify",
    "-instcombine", "-instnamer", "-jump-threading", "-lcssa", "-licm", "-libcalls-shrinkwrap",
    "-load-store-vectorizer", "-loop-data-prefetch", "-loop-deletion", "-loop-distribute",
    "-loop-fusion", "-loop-guard-widening", "-loop-idiom", "-loop-instsimplify",
    "-loop-interchange", "-loop-load-elim", "-loop-predication", "-loop-reroll", "-loop-rotate",
    "-loop-simplifycfg", "-loop-simplify", "-loop-sink", "-loop-reduce", "-loop-unroll-and-jam",
    "-loop-unroll", "-loop-unswitch", "-loop-vectorize", "-loop-versioning-licm",
    "-loop-versioning", "-loweratomic", "-lower-constant-intrinsics", "-lower-expect",
    "-lower-guard-intrinsic", "-lowerinvoke", "-lower-matrix-intrinsics", "-lowerswitch",
    "-lower-widenable-condition", "-memcpyopt", "-mergefunc", "-mergeicmps", "-mldst-motion",
    "-sancov", "-name-anon-globals", "-nary-reassociate", "-newgvn", "-pgo-memop-opt",
    "-partial-inliner", "-partially-inline-libcalls", "-post-inline-ee-instrument",
    "-functionattrs", "-mem2reg", "-prune-eh", "-reassociate", "-redundant-dbg-inst-elim",
    "-rpo-functionattrs", "-rewrite-statepoints-for-gc", "-sccp", "-slp-vectorizer", "-sroa",
    "-scalarizer", "-separate-const-offset-from-gep", "-simple-loop-unswitch", "-sink",
    "-speculative-execution", "-slsr", "-strip-dead-prototypes", "-strip-debug-declare",
    "-strip-nondebug", "-strip", "-tailcallelim", "-mergereturn",
)  # fmt: skip

# Flags whose LLVM 19 pipeline differs from the flag's own name, with the reason.
SUBSTITUTIONS: dict[str, tuple[str, str]] = {
    "-barrier": ("", "legacy pass-manager barrier, never a transformation: a no-op"),
    "-constprop": ("instsimplify", "removed in LLVM 12; LLVM's notes name instsimplify"),
    "-die": ("dce", "dead-instruction elimination was removed in LLVM 12; dce subsumes it"),
    "-early-cse-memssa": ("early-cse<memssa>", "renamed: a parameter of early-cse"),
    "-flattencfg": ("flatten-cfg", "renamed"),
    "-inline": ("cgscc(inline)", "the inliner is a CGSCC pass"),
    "-instcombine": (
        "instcombine<no-verify-fixpoint>",
        "LLVM 19 verifies the fixpoint by default and aborts when it is not reached",
    ),
    "-ipconstprop": ("ipsccp", "removed in LLVM 12; ipsccp subsumes it"),
    "-licm": ("loop-mssa(licm)", "LICM needs MemorySSA in the new pass manager"),
    "-loop-guard-widening": ("loop(guard-widening)", "the loop flavour of guard-widening"),
    "-loop-reroll": ("", "removed in LLVM 19: a no-op"),
    "-loop-unswitch": ("loop-mssa(simple-loop-unswitch)", "replaced by simple-loop-unswitch"),
    "-loweratomic": ("lower-atomic", "renamed"),
    "-lowerinvoke": ("lower-invoke", "renamed"),
    "-lowerswitch": ("lower-switch", "renamed"),
    "-sancov": ("sancov-module", "renamed, now a module pass"),
    "-post-inline-ee-instrument": ("ee-instrument<post-inline>", "a parameter of ee-instrument"),
    "-functionattrs": ("cgscc(function-attrs)", "renamed, a CGSCC pass"),
    "-prune-eh": (
        "cgscc(function-attrs),function(simplifycfg)",
        "removed in LLVM 16; "
        "function-attrs infers nounwind and simplifycfg drops the dead unwind edges",
    ),
    "-rpo-functionattrs": ("rpo-function-attrs", "renamed"),
    "-simple-loop-unswitch": ("loop-mssa(simple-loop-unswitch)", "needs MemorySSA"),
}


def pipeline(flag: str) -> str:
    """LLVM 19 new-pass-manager pipeline text that stands for a CompilerGym flag."""
    if flag in SUBSTITUTIONS:
        return SUBSTITUTIONS[flag][0]
    if flag not in FLAGS:
        raise ValueError(f"unknown pass flag {flag!r}; allowed: the {len(FLAGS)} flags in FLAGS")
    return flag[1:]


PIPELINES: tuple[str, ...] = tuple(pipeline(f) for f in FLAGS)
INDEX: dict[str, int] = {f: i for i, f in enumerate(FLAGS)}

# The level of every pass a flag runs that is not a function pass, in LLVM 19's registry
# (PassRegistry.def): a step's pipeline runs alone, and LLVM's parser wraps it in the
# adaptor its first pass needs (``opt-19 -passes=P -print-pipeline-passes`` shows how; a
# test checks this table against opt-19 for every flag).
MODULE_PASSES = frozenset({
    "always-inline", "attributor", "called-value-propagation", "canonicalize-aliases",
    "constmerge", "coro-cleanup", "coro-early", "cross-dso-cfi", "deadargelim", "default",
    "elim-avail-extern", "forceattrs", "globaldce", "globalopt", "globalsplit",
    "hotcoldsplit", "inferattrs", "insert-gcov-profiling", "ipsccp", "mergefunc",
    "name-anon-globals", "partial-inliner", "rewrite-statepoints-for-gc",
    "rpo-function-attrs", "sancov-module", "strip", "strip-dead-prototypes",
    "strip-debug-declare", "strip-nondebug",
    # adaptors that a module pipeline holds as they are
    "cgscc", "function", "module",
})  # fmt: skip
CGSCC_PASSES = frozenset({"argpromotion", "coro-split"})
LOOP_PASSES = frozenset({
    "indvars", "loop-deletion", "loop-idiom", "loop-instsimplify", "loop-interchange",
    "loop-predication", "loop-reduce", "loop-rotate", "loop-simplifycfg",
    "loop-unroll-and-jam", "loop-versioning-licm",
})  # fmt: skip
#: What separates two steps in :func:`opt_pipeline`: every cached analysis is dropped.
#: ``invalidate<all>`` leaves the analyses that call themselves stateless, of which the
#: 124 flags and the reference pipelines compute one, GlobalsAA (``-Oz`` requires it, and
#: a later step's alias queries would see it): it is dropped by name.
STEP_SEPARATOR = "invalidate<all>,invalidate<globals-aa>"


def module_pipeline(text: str) -> str:
    """One step's pipeline text (an element of :data:`PIPELINES`, or a reference's such as
    ``default<Oz>``) as a module-level pipeline: wrapped in the adaptor LLVM's parser gives
    it when it runs alone (``function(sroa)``, ``cgscc(argpromotion)``,
    ``function(loop(loop-rotate))``), so that steps joined by commas stay one adaptor each
    (joined bare, consecutive function passes would share one and run function by
    function). ``""`` (a no-op step) stays ``""``."""
    if not text:
        return ""
    first = text
    for stop in "(<,":
        first = first.split(stop, 1)[0]
    if first in MODULE_PASSES:
        return text
    if first in CGSCC_PASSES:
        return f"cgscc({text})"
    if first in LOOP_PASSES:
        return f"function(loop({text}))"
    return f"function({text})"  # function passes, and the loop(...)/loop-mssa(...) adaptors


def opt_pipeline(steps: Iterable[str]) -> str:
    """The ``opt-19 -passes=`` pipeline that runs ``steps`` (pipeline texts, one per env
    step, in order) as the env runs them: each step in an adaptor of its own
    (:func:`module_pipeline`), and every cached analysis dropped between two steps
    (:data:`STEP_SEPARATOR`), since the env runs each step with fresh analysis managers (an
    analysis kept from one step, stale or more precise, changes what a later one does).
    No-op steps (``-barrier``, ``-loop-reroll``) are left out; ``""`` when nothing
    runs."""
    return f",{STEP_SEPARATOR},".join(m for m in map(module_pipeline, steps) if m)


def flatten(actions: Iterable[Any]) -> list[Any]:
    """The passes of a list of actions, each pass sequence (a list, one compilation) spread
    into its passes, in order."""
    out: list[Any] = []
    for a in actions:
        out.extend(a if isinstance(a, (list, tuple)) else [a])
    return out


def action_index(flag: str) -> int:
    """Action number of a flag (``-sroa`` or ``sroa``); ``ValueError`` for unknown flags."""
    allowed = f"allowed: {', '.join(FLAGS[:5])}, ... ({len(FLAGS)} flags)"
    if not isinstance(flag, str):
        raise ValueError(f"a pass flag is a string, got a {type(flag).__name__}; {allowed}")
    name = flag if flag.startswith("-") else "-" + flag
    try:
        return INDEX[name]
    except KeyError:
        shown = repr(flag) if len(flag) <= 40 else f"{flag[:40]!r}... ({len(flag)} characters)"
        raise ValueError(f"unknown pass flag {shown}; {allowed}") from None
