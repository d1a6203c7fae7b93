"""An autoscheduler's schedule, re-expressed as ``ScheduleSearch-v1`` stage actions.

Halide's autoschedulers return their schedule as C++ source (``schedule_source``): one
block of directives per definition (``split``, ``vectorize``, ``unroll``, ``compute_root``,
``compute_at``, ``store_at``, ``reorder``, ``parallel``). :func:`express` reads that text
and writes the mapping out, stage by stage:

- each dimension's chain of splits becomes v1's tiles: the vectorized innermost loop is
  the vector width; the loops it unrolls (with the lanes) are the inner tile, whose
  outermost split factor is the tile; a further split loop that is not unrolled is the
  middle tile; the first loop of the chain is the outer loop. A dimension unrolled without
  a split (inside a consumer's tile) has the region one instance computes as its tile;
  one neither split nor unrolled has a tile of 1;
- the ``reorder`` gives the middle and the outer loop orders, and in an update, where
  the reduction loops go;
- ``compute_at(f, v)`` and ``store_at(f, v)`` name a loop of the consumer: its index
  among the consumer's middle and outer loops is the level;
- a stage the source does not schedule is inlined (Halide's default);
- the boundary wrappers of clamped inputs (``repeat_edge`` Funcs, present when a schedule
  reads past the inputs and the worker clamps them) are no stages: what the source does
  with them (a root copy, another storage order) is left out, and they stay inlined.
  :func:`wrappers_scheduled` says whether a source does anything with them.

Whatever v1 cannot say (a split reduction, a loop order that interleaves middle and outer
loops, an unrolled loop outside the tile, a tile not in v1's tables) is a ``ValueError``
that names it. The source is only parsed, never run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from optgym.datasets.schedule.ops import OPS
from optgym.datasets.schedule.spec import MAX_EXTENT, PipelineSpec
from optgym.envs.schedule.actions import (
    AT_LEVEL,
    INLINE,
    REDUCTION_PLACES,
    ROOT,
    VAR_NAMES,
    StageSchedule,
    consumer_loops,
    enclosing_loops,
)
from optgym.envs.schedule.actions_v1 import encode
from optgym.envs.schedule.features import LoopNestFeatures

MAX_SOURCE_CHARS = 1 << 20
_BLOCK_HEAD = re.compile(r"^([A-Za-z_]\w*)(\.update\(0\))?$")
_DIRECTIVE = re.compile(r"^\.(\w+)\((.*)\)$")
_KNOWN = {"split", "vectorize", "unroll", "compute_root", "compute_at", "store_at",
          "store_root", "store_in", "reorder", "parallel", "compute_inline",
          "reorder_storage"}  # fmt: skip
#: how many arguments each directive takes (least, most)
_ARITY = {"split": (5, 5), "vectorize": (1, 2), "unroll": (1, 2), "compute_root": (0, 0),
          "compute_at": (2, 2), "store_at": (2, 2), "store_root": (0, 0), "store_in": (1, 1),
          "reorder": (1, 64), "parallel": (1, 2), "compute_inline": (0, 0),
          "reorder_storage": (1, 4)}  # fmt: skip
#: the Funcs Halide's ``BoundaryConditions.repeat_edge`` wraps a clamped input in
_WRAPPER = re.compile(r"^repeat_edge(_\d+)?$")


@dataclass
class _Definition:
    """The directives of one definition, parsed."""

    splits: list[tuple[str, str, str, int]] = field(default_factory=list)  # old, out, in, f
    vectorized: str | None = None
    unrolled: set[str] = field(default_factory=set)
    parallel: set[str] = field(default_factory=set)
    order: list[str] = field(default_factory=list)  # innermost first
    compute: tuple[str, str] | str | None = None  # "root", "inline" or (func, var)
    store: tuple[str, str] | str | None = None
    storage_order: bool = False  # reorder_storage: a memory layout v1 does not choose


def _args(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    return [a.strip() for a in text.split(",") if a.strip()]


def parse(source: str) -> dict[tuple[str, bool], _Definition]:
    """The directives of every definition in ``source``, by (Func name, is the update)."""
    if len(source) > MAX_SOURCE_CHARS:
        raise ValueError(f"a schedule source is at most {MAX_SOURCE_CHARS} characters")
    out: dict[tuple[str, bool], _Definition] = {}
    current: _Definition | None = None
    for line in source.splitlines():
        text = line.strip().rstrip(";")
        if not text or text.startswith(("Func ", "Var ", "RVar ", "//", "using ", "#")):
            current = None if text.startswith(("Func ", "Var ", "RVar ")) else current
            continue
        head = _BLOCK_HEAD.match(text)
        if head:
            current = out.setdefault((head.group(1), bool(head.group(2))), _Definition())
            continue
        directive = _DIRECTIVE.match(text)
        if directive is None or current is None:
            raise ValueError("a schedule source line is neither a Func block nor a directive")
        name, text_args = directive.group(1), directive.group(2)
        if name not in _KNOWN:
            raise ValueError(f"directive .{name}() is not one v1 expresses")
        if "(" in text_args or ")" in text_args:
            raise ValueError(f".{name}() has a call in its arguments (one directive per line)")
        args = _args(text_args)
        if not _ARITY[name][0] <= len(args) <= _ARITY[name][1]:
            low, high = _ARITY[name]
            raise ValueError(
                f".{name}() takes {low}" + (f" to {high}" if high > low else "")
                + f" arguments, got {len(args)}"
            )
        if name == "split":
            factor = args[3]
            if not (factor.isascii() and factor.isdigit() and len(factor) <= 6) or not (
                1 <= int(factor) <= MAX_EXTENT
            ):
                raise ValueError(f".split()'s factor must be an integer in [1, {MAX_EXTENT}]")
            current.splits.append((args[0], args[1], args[2], int(args[3])))
        elif name == "vectorize":
            current.vectorized = args[0]
        elif name == "unroll":
            current.unrolled.add(args[0])
        elif name == "parallel":
            current.parallel.add(args[0])
        elif name == "reorder":
            current.order = args
        elif name == "compute_root":
            current.compute = "root"
        elif name == "compute_inline":
            current.compute = "inline"
        elif name == "compute_at":
            current.compute = (args[0], args[1])
        elif name == "store_at":
            current.store = (args[0], args[1])
        elif name == "store_root":
            current.store = "root"
        elif name == "reorder_storage":
            current.storage_order = True
    return out


def _stage_of(func: str, names: set[str]) -> str:
    """The spec stage a Func of the source is: Halide names a second Func of the same name
    in one process ``<name>_<n>``."""
    base = func
    while base not in names:
        stripped = re.sub(r"_\d+$", "", base)
        if stripped == base:
            raise ValueError("the source schedules a Func that is no stage of the pipeline")
        base = stripped
    return base


@dataclass
class _Loops:
    """One stage's loops as v1 sees them: each source variable's (dim, kind)."""

    kinds: dict[str, tuple[int, str]]  # var -> (dim, "o" outer, "m" middle, "i" inner, "v")


def _chains(d: _Definition, dims: int) -> tuple[list[list[str]], dict[str, int]]:
    """Each dimension's loop variables, outermost first, and each split variable's factor."""
    chains = [[VAR_NAMES[k]] for k in range(dims)]
    factors: dict[str, int] = {}
    for old, outer, inner, f in d.splits:
        for chain in chains:
            if old in chain:
                k = chain.index(old)
                chain[k : k + 1] = [outer, inner]
                factors[inner] = f
                break
        else:
            raise ValueError("a pure definition splits a loop that is no pure loop")
    return chains, factors


def _stage_schedule(
    d: _Definition,
    update: _Definition | None,
    dims: int,
    reductions: int,
    region: tuple[int, ...] | None,
) -> tuple[StageSchedule, _Loops]:
    """One stage's v1 schedule from its parsed definitions, computed at root (``region``:
    what one instance computes, for a stage inside a consumer; ``reductions``: the number
    of its update's reduction loops)."""
    chains, factors = _chains(d, dims)
    tile, middle, kinds = [1] * dims, [1] * dims, {}
    vector = 1
    for k, chain in enumerate(chains):
        rest = list(chain)
        if d.vectorized in rest:
            if k != 0 or rest[-1] != d.vectorized or d.vectorized not in factors:
                raise ValueError("the vectorized loop is not the innermost split of x")
            vector = factors[d.vectorized]
            tile[k] = vector
            kinds[rest.pop()] = (k, "v")
        while len(rest) > 1 and rest[-1] in d.unrolled:
            tile[k] = factors[rest[-1]]
            kinds[rest.pop()] = (k, "i")
        if len(rest) == 1 and rest[0] in d.unrolled:  # unrolled whole, inside a consumer
            if region is None:
                raise ValueError(f"a root stage unrolls its whole {VAR_NAMES[k]} loop")
            tile[k] = max(region[k], tile[k])
            kinds[rest[0]] = (k, "i")
            rest = []
        middle[k] = tile[k]
        if len(rest) == 2:
            middle[k] = factors[rest[1]]
            kinds[rest[1]] = (k, "m")
        elif len(rest) > 2:
            raise ValueError(f"{VAR_NAMES[k]} has more loops than v1's outer, middle and inner")
        if rest:
            kinds[rest[0]] = (k, "o")
        if any(v in d.unrolled for v in rest):
            raise ValueError(f"an unrolled {VAR_NAMES[k]} loop lies outside the inner tile")
    order_vars = [v for v in d.order if v in kinds] or [VAR_NAMES[k] for k in range(dims)]
    outer = [kinds[v][0] for v in order_vars if kinds[v][1] == "o"]
    mids = [kinds[v][0] for v in order_vars if kinds[v][1] == "m"]
    positions = [kinds[v][1] for v in order_vars if kinds[v][1] in "mo"]
    if "o" in positions and "m" in positions[positions.index("o") :]:
        raise ValueError("the loop order puts a middle loop outside an outer loop")
    outer += [k for k in range(dims) if k not in outer]
    mids += [k for k in range(dims) if k not in mids]
    parallel = bool(d.parallel)
    outermost = next((v for v in order_vars[::-1] if kinds[v][1] == "o"), None)
    if parallel and d.parallel != {outermost}:
        raise ValueError("the parallel loop is not the outermost loop")
    unrolled = any(kind == "i" for kind in (kinds[v][1] for v in kinds))
    reduction = _reduction(update, kinds, tile, middle, region) if update is not None else 0
    rsplit = 1
    for old, outer_var, inner_var, f in update.splits if update is not None else []:
        if old in kinds or old in VAR_NAMES:
            continue  # a pure loop: the update repeats the pure definition's splits
        if rsplit > 1 or old.rsplit("_", 1)[-1] != "xyzw"[max(0, reductions - 1)]:
            raise ValueError("an update splits a reduction loop other than its last one")
        rsplit = f
        kinds[inner_var], kinds[outer_var] = (-1, "r"), (-1, "R")
    s = StageSchedule(
        compute=ROOT,
        tile=tuple(tile),
        order=tuple(outer),
        vector=vector,
        unroll=1,
        parallel=parallel,
        store_root=False,
        middle=tuple(middle),
        middle_order=tuple(mids),
        unroll_all=unrolled,
        reduction=reduction,
        rsplit=rsplit,
        tails="auto",
    )
    return s, _Loops(kinds)


def _level(
    stage: str,
    at: tuple[str, str],
    spec: PipelineSpec,
    done: dict[str, tuple[StageSchedule, _Loops]],
    funcs: dict[str, str],
) -> int:
    """The level (``enclosing_loops`` index) of the loop ``at`` = (Func, variable)."""
    func = funcs.get(at[0])
    if func not in done:
        raise ValueError(f"{stage} is computed or stored in a Func that is not around it")
    schedule, loops = done[func]
    if at[1] not in loops.kinds or loops.kinds[at[1]][1] not in "moRr":
        raise ValueError(f"{stage} is computed or stored in a loop inside a tile of {func}")
    index = consumer_loops(schedule).index(loops.kinds[at[1]])
    around = enclosing_loops(stage, spec, {k: v[0] for k, v in done.items()})
    if (func, index) not in around:
        raise ValueError(f"{stage} is computed or stored in a loop that does not enclose it")
    return around.index((func, index))


def _reduction(
    update: _Definition,
    kinds: dict[str, tuple[int, str]],
    tile: list[int],
    middle: list[int],
    region: tuple[int, ...] | None,
) -> int:
    """Where an update's reduction loops go: the kinds of the non-trivial pure loops its
    ``reorder`` puts inside them."""
    if not update.order or all(v in kinds or v in VAR_NAMES for v in update.order):
        return 0
    first = next(i for i, v in enumerate(update.order) if v not in kinds and v not in VAR_NAMES)
    inside = {kinds[v][1] for v in update.order[:first] if v in kinds}
    outer_trivial = region is not None and all(m >= r for m, r in zip(middle, region, strict=False))
    if "o" in inside and not outer_trivial:
        raise ValueError("an update's reduction loops lie outside an outer loop")
    if "m" in inside and any(m > t for m, t in zip(middle, tile, strict=True)):
        return REDUCTION_PLACES.index("outside_middle")
    if inside <= {"v"} and any(t > 1 for t in tile[1:]):
        return REDUCTION_PLACES.index("inside_inner")
    return REDUCTION_PLACES.index("outside_inner")


def express(source: str, spec: PipelineSpec) -> dict[str, np.ndarray]:
    """``ScheduleSearch-v1`` actions (stage name -> action, in the env's order: the output
    first) that say what ``source`` (an autoscheduler's ``schedule_source``) does."""
    parsed = parse(source)
    names = {s.name for s in spec.stages}
    defs: dict[tuple[str, bool], _Definition] = {}
    funcs: dict[str, str] = {}
    for (func, is_update), d in parsed.items():
        if _WRAPPER.match(func):
            continue  # an input's boundary wrapper: no stage, left to Halide (inlined)
        if d.storage_order:
            raise ValueError("a stage reorders its storage; v1 keeps every stage's layout")
        stage = _stage_of(func, names)
        defs[(stage, is_update)] = d
        funcs[func] = stage
    nest = LoopNestFeatures(spec)
    done: dict[str, tuple[StageSchedule, _Loops]] = {}
    actions: dict[str, np.ndarray] = {}
    for stage in reversed(spec.stages):  # consumers first
        dims = len(stage.shape)
        d = defs.get((stage.name, False))
        if d is None or d.compute == "inline":
            s = StageSchedule(INLINE, (1,) * dims, tuple(range(dims)), 1, 1, False, False,
                              middle=(1,) * dims, middle_order=tuple(range(dims)),
                              tails="auto")  # fmt: skip
            done[stage.name] = (s, _Loops({}))
        else:
            region, level, store_out, store_root = None, 0, 0, False
            if isinstance(d.compute, tuple):
                level = _level(stage.name, d.compute, spec, done, funcs)
                if d.store == "root":
                    store_root = True
                elif isinstance(d.store, tuple):
                    store_out = _level(stage.name, d.store, spec, done, funcs) - level
                probe = StageSchedule(AT_LEVEL, (1,) * dims, tuple(range(dims)), 1, 1, False,
                                      False, level=level)  # fmt: skip
                region = nest.region(stage.name, probe)
            update = defs.get((stage.name, True))
            reductions = len(OPS[stage.op].reduction_extents(stage))
            s, loops = _stage_schedule(d, update, dims, reductions, region)
            if isinstance(d.compute, tuple):
                s = replace(s, compute=AT_LEVEL, level=level, store_out=store_out,
                            store_root=store_root)  # fmt: skip
            done[stage.name] = (s, loops)
        s = done[stage.name][0]
        nest.schedule(stage.name, s)
        actions[stage.name] = encode(s, stage.shape)
    return actions


def wrappers_scheduled(source: str) -> bool:
    """Whether ``source`` schedules an input's boundary wrapper (what :func:`express`
    leaves out)."""
    return any(_WRAPPER.match(func) for func, _ in parse(source))


__all__ = ["express", "parse", "wrappers_scheduled"]
