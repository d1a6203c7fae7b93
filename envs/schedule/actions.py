"""The factored schedule action of ``ScheduleSearch-v0`` and how it becomes Halide directives.

One action schedules one stage. Its components (a ``MultiDiscrete``), in order:

==========  =========================================================================
compute     0 root, 1 inline, 2 at the consumer's outermost tile loop,
            3 at the consumer's innermost tile loop (just outside its inner tile)
split_x/y/c index into ``SPLITS``: the inner tile extent of each dimension
order       index into ``ORDERS``: the order of the outer tile loops (innermost first)
vectorize   index into ``VECTOR_WIDTHS``: vectorize the inner x loop by that width
unroll      index into ``UNROLL_FACTORS``: unroll the inner y loop by that factor
parallel    0 serial, 1 the outermost tile loop is parallel
store       0 store where computed, 1 store at root (with compute at a consumer loop)
==========  =========================================================================

Every combination of legal component values is a legal schedule: a vector width or unroll
factor larger than the split raises that split to it. Per-component legality depends only
on the stage and the choices already made for its consumers, so the mask is the
concatenation of one boolean vector per component (the form MaskablePPO reads).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

#: The pure variables of a stage's dimensions, in order (``lower.py`` names its Vars so).
VAR_NAMES = ("x", "y", "c")
SPLITS = (1, 2, 4, 8, 16, 32, 64)
ORDERS = tuple(itertools.permutations(range(3)))  # outer loops, innermost first
VECTOR_WIDTHS = (1, 4, 8, 16)
UNROLL_FACTORS = (1, 2, 4, 8)
COMPUTE_NAMES = ("root", "inline", "at_consumer_outer", "at_consumer_tile")
ROOT, INLINE, AT_OUTER, AT_TILE = range(4)
COMPONENTS = (
    ("compute", len(COMPUTE_NAMES)),
    ("split_x", len(SPLITS)),
    ("split_y", len(SPLITS)),
    ("split_c", len(SPLITS)),
    ("order", len(ORDERS)),
    ("vectorize", len(VECTOR_WIDTHS)),
    ("unroll", len(UNROLL_FACTORS)),
    ("parallel", 2),
    ("store", 2),
)
NVEC = np.array([n for _, n in COMPONENTS], dtype=np.int64)
MASK_SIZE = int(NVEC.sum())


@dataclass(frozen=True)
class StageSchedule:
    """One stage's decoded choice, with the tile sizes every option implies."""

    compute: int
    tile: tuple[int, ...]  # inner tile extent per dimension (after vector/unroll raises)
    order: tuple[int, ...]  # outer loops, innermost first, present dims only
    vector: int  # 1 = not vectorized
    unroll: int  # 1 = not unrolled
    parallel: bool
    store_root: bool

    @property
    def inlined(self) -> bool:
        return self.compute == INLINE


def canonical_order(order: Sequence[int], dims: int) -> tuple[int, ...]:
    return tuple(d for d in order if d < dims)


def decode(action: Sequence[int], extents: Sequence[int]) -> StageSchedule:
    """The schedule an action gives a stage with ``extents`` (legal actions only)."""
    dims = len(extents)
    compute, sx, sy, sc, order, vec, unroll, parallel, store = (int(a) for a in action)
    tile = [SPLITS[s] for s in (sx, sy, sc)[:dims]]
    vector, factor = VECTOR_WIDTHS[vec], UNROLL_FACTORS[unroll]
    tile[0] = max(tile[0], vector)
    if dims > 1:
        tile[1] = max(tile[1], factor)
    else:
        factor = 1
    return StageSchedule(
        compute=compute,
        tile=tuple(min(t, e) for t, e in zip(tile, extents, strict=True)),
        order=canonical_order(ORDERS[order], dims),
        vector=vector,
        unroll=factor,
        parallel=bool(parallel),
        store_root=bool(store),
    )


def inside_parallel(name: str, spec, schedules: dict[str, StageSchedule]) -> bool:
    """Whether stage ``name``'s loop nest runs inside a parallel loop (its own outermost
    loop excluded), following compute_at up to a root stage."""
    s = schedules[name]
    if s.compute in (ROOT, INLINE):
        return False
    (consumer,) = spec.consumers(name)
    return schedules[consumer].parallel or inside_parallel(consumer, spec, schedules)


def resolve(
    name: str, s: StageSchedule, spec, schedules: dict[str, StageSchedule]
) -> StageSchedule:
    """``s`` as it takes effect, given the consumers' schedules: storage at root applies
    only to a stage computed at a consumer loop with no parallel loop around it (storage
    outside a parallel loop that computes into it would be a race), otherwise the stage is
    stored where it is computed."""
    if not s.store_root:
        return s
    if s.compute in (ROOT, INLINE) or inside_parallel(name, spec, {**schedules, name: s}):
        return replace(s, store_root=False)
    return s


def component_masks(
    extents: Sequence[int],
    *,
    is_output: bool,
    has_update: bool,
    single_consumer_scheduled: bool,
) -> list[np.ndarray]:
    """Legal values of each component for a stage (``single_consumer_scheduled``: the stage
    has exactly one consumer and that consumer is not inlined, so ``compute_at`` has a loop
    nest to go into)."""
    dims = len(extents)
    compute = np.zeros(4, bool)
    compute[ROOT] = True
    if not is_output:
        compute[INLINE] = not has_update
        compute[AT_OUTER] = compute[AT_TILE] = single_consumer_scheduled
    splits = []
    for d in range(3):
        m = np.array([s == 1 or (d < dims and s <= extents[d]) for s in SPLITS])
        splits.append(m)
    orders = np.array([_canonical(o, dims) for o in ORDERS])
    vector = np.array([w == 1 or w <= extents[0] for w in VECTOR_WIDTHS])
    unroll = np.array([f == 1 or (dims > 1 and f <= extents[1]) for f in UNROLL_FACTORS])
    parallel = np.array([True, True])
    store = np.array([True, bool(compute[AT_OUTER])])
    return [compute, *splits, orders, vector, unroll, parallel, store]


def _canonical(order: Sequence[int], dims: int) -> bool:
    """One representative per order of the present dims: missing dims outermost, ascending."""
    missing = [d for d in order if d >= dims]
    return list(order[len(order) - len(missing) :]) == sorted(missing) and all(
        d < dims for d in order[: len(order) - len(missing)]
    )


def _value_kind(value: object) -> str:
    """What a bad action value is, in words (its kind, not its text)."""
    if isinstance(value, (bool, np.bool_)):
        return "a boolean"
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "NaN"
        if np.isinf(value):
            return "an infinite float"
        return f"the non-integer float {float(value)!r}"
    if isinstance(value, (str, bytes, np.str_, np.bytes_)):
        return "a string"
    if value is None:
        return "None"
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return f"a nested {type(value).__name__}"
    return f"a {type(value).__name__}"


def _component_value(name: str, n: int, value: object) -> int:
    """One component as an int: integers and whole-number floats (``2.0``) only."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        number = int(value)
    elif (
        isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer()
    ):
        number = int(value)
    else:
        raise ValueError(
            f"action component {name} is {_value_kind(value)}; allowed: an integer in [0, {n})"
        )
    if not 0 <= number < n:
        shown = str(number) if abs(number) < 10**12 else "a huge integer"
        raise ValueError(f"action component {name}={shown} is outside [0, {n})")
    return number


def check_action(action: object, masks: list[np.ndarray]) -> np.ndarray:
    """The action as an int array; ``ValueError`` naming a wrong shape, a value that is not
    an integer (NaN, a fractional float, a string, ...) or a masked value, with the allowed
    values."""
    names = ", ".join(n for n, _ in COMPONENTS)
    if isinstance(action, np.ndarray):
        values = list(action.reshape(-1)) if action.ndim <= 1 else None
    elif isinstance(action, (list, tuple)):
        values = list(action)
    else:
        values = None
    if values is None:
        got = (
            f"an array of shape {action.shape}"
            if isinstance(action, np.ndarray)
            else _value_kind(action)
        )
        raise ValueError(
            f"a schedule action is a sequence of {len(NVEC)} integers ({names}), got {got}"
        )
    if len(values) != len(NVEC):
        raise ValueError(
            f"a schedule action has {len(NVEC)} components ({names}), got {len(values)}"
        )
    a = np.array(
        [_component_value(name, n, v) for (name, n), v in zip(COMPONENTS, values, strict=True)],
        dtype=np.int64,
    )
    for (name, _), value, mask in zip(COMPONENTS, a, masks, strict=True):
        if not mask[value]:
            allowed = [int(i) for i in np.flatnonzero(mask)]
            raise ValueError(
                f"action component {name}={value} is masked for this stage; allowed: {allowed}"
            )
    return a


def sample_action(masks: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A uniformly random legal action (each component uniform over its legal values)."""
    return np.array([rng.choice(np.flatnonzero(m)) for m in masks], dtype=np.int64)


# Relative odds of each value under the prior of ``prior_action`` (renormalized over the
# legal values): compute at root or at the consumer's tile, tiles of 4 to 32, vectors of 8
# or 16, little unrolling, no parallel loop (one thread by default), stored in place.
PRIOR = (
    np.array([4.0, 2.0, 1.0, 3.0]),
    *(np.array([1.0, 1.0, 2.0, 3.0, 3.0, 2.0, 1.0]),) * 3,
    np.ones(len(ORDERS)),
    np.array([1.0, 1.0, 3.0, 3.0]),
    np.array([4.0, 2.0, 1.0, 0.5]),
    np.array([4.0, 1.0]),
    np.array([3.0, 1.0]),
)


def prior_action(masks: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A random legal action drawn from ``PRIOR``, a proposal distribution that favours the
    choices fast CPU schedules are made of; search agents and data collection use it next
    to uniform sampling."""
    out = []
    for m, p in zip(masks, PRIOR, strict=True):
        w = np.where(m, p, 0.0)
        out.append(rng.choice(len(w), p=w / w.sum()))
    return np.array(out, dtype=np.int64)


def apply_schedule(lowered, schedules: dict[str, StageSchedule]) -> None:
    """Give every stage of a lowered pipeline (``optgym.envs.schedule.lower``) its schedule.

    Each dimension ``d`` splits into ``d_o`` and ``d_i`` (the tile), the inner loops run x
    innermost, the outer loops in the chosen order. An update definition gets the same
    splits with its reduction loops between the inner and the outer loops, so a tile
    accumulates in place. ``compute_at`` goes into the consumer's final stage. Every split
    guards its last partial tile (``GuardWithIf``), so no stage computes, and no input is
    read, beyond the region the output needs.
    """
    import halide as hl

    guard = hl.TailStrategy.GuardWithIf
    outer_vars: dict[str, list] = {}
    spec = lowered.spec
    for stage in reversed(spec.stages):  # consumers first
        s = schedules[stage.name]
        f = lowered.funcs[stage.name]
        if s.inlined:
            f.compute_inline()
            continue
        pure = lowered.vars[stage.name]
        outs = [hl.Var(f"{v.name()}_o") for v in pure]
        ins = [hl.Var(f"{v.name()}_i") for v in pure]
        stages = [f]
        if lowered.rvars[stage.name]:
            stages.append(f.update(0))
        for k, st in enumerate(stages):
            for v, o, i, t in zip(pure, outs, ins, s.tile, strict=True):
                st.split(v, o, i, t, guard)
            inner = list(ins)
            if s.vector > 1:
                xv = hl.Var(f"{pure[0].name()}_v")
                st.split(ins[0], ins[0], xv, s.vector, guard)
                inner = [xv, *inner]
            if s.unroll > 1:
                yu = hl.Var(f"{pure[1].name()}_u")
                st.split(ins[1], ins[1], yu, s.unroll, guard)
                inner = [*inner[: 1 + (s.vector > 1)], yu, *inner[1 + (s.vector > 1) :]]
            outer = [outs[d] for d in s.order]
            middle = list(lowered.rvars[stage.name]) if k == 1 else []
            st.reorder([hl.VarOrRVar(v) for v in (*inner, *middle, *outer)])
            if s.vector > 1:
                st.vectorize(xv)
            if s.unroll > 1:
                st.unroll(yu)
            if s.parallel:
                st.parallel(outer[-1])
        outer_vars[stage.name] = [outs[d] for d in s.order]
        if s.compute == ROOT:
            f.compute_root()
        else:
            (consumer,) = spec.consumers(stage.name)
            loops = outer_vars[consumer]
            var = loops[-1] if s.compute == AT_OUTER else loops[0]
            f.compute_at(lowered.funcs[consumer], var)
            if s.store_root:
                f.store_root()
