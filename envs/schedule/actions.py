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
from dataclasses import asdict, dataclass, fields, replace

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
    """One stage's decoded choice, with the tile sizes every option implies.

    The fields after ``store_root`` belong to the expressive space of ``ScheduleSearch-v1``
    (``actions_v1.py``); their defaults are the v0 schedule, and a schedule's cache key
    leaves out the ones at their defaults, so v0 keys are what they always were.
    """

    compute: int
    tile: tuple[int, ...]  # inner tile extent per dimension (after vector/unroll raises)
    order: tuple[int, ...]  # outer loops, innermost first, present dims only
    vector: int  # 1 = not vectorized
    unroll: int  # 1 = not unrolled
    parallel: bool
    store_root: bool
    #: v1: the middle tile per dimension (a multiple of ``tile``; None: one tile level)
    middle: tuple[int, ...] | None = None
    #: v1: the middle loops' order, innermost first
    middle_order: tuple[int, ...] = ()
    #: v1 (``compute == AT_LEVEL``): the consumer's loop it is computed in, innermost first
    #: over its middle loops then its outer loops (:func:`consumer_loops`)
    level: int = 0
    #: v1: stored this many of the consumer's loops further out than it is computed
    store_out: int = 0
    #: v1: unroll the inner tile loops (not the vector lanes), innermost first, while their
    #: trip counts multiply to at most ``MAX_UNROLLED``
    unroll_all: bool = False
    #: v1: where an update's reduction loops go (``REDUCTION_PLACES``)
    reduction: int = 0
    #: v1: split the update's last reduction loop by this factor (1: not split); its two
    #: halves are loops a producer can be computed in (unless inside the inner tile)
    rsplit: int = 1
    #: v1: tail strategies like Halide's autoschedulers (``"auto"``: ShiftInwards at root,
    #: RoundUp inside a consumer, GuardWithIf for updates) instead of GuardWithIf everywhere
    tails: str = "guard"

    @property
    def inlined(self) -> bool:
        return self.compute == INLINE

    def key(self) -> dict:
        """The schedule as a JSON-ready dict without the v1 fields left at their defaults
        (the measurement cache's key)."""
        out = asdict(self)
        for f in fields(self)[len(V0_FIELDS) :]:
            if out[f.name] == f.default:
                del out[f.name]
        return out


V0_FIELDS = ("compute", "tile", "order", "vector", "unroll", "parallel", "store_root")
#: v1 compute location: in the consumer's loop ``StageSchedule.level``
AT_LEVEL = 4
#: v1 places of an update's reduction loops: outside the inner tile (as in v0), outside
#: the middle tiles, or just outside the vector lanes
REDUCTION_PLACES = ("outside_inner", "outside_middle", "inside_inner")
MAX_UNROLLED = 64


def unrolled_inner(s: StageSchedule) -> list[bool]:
    """Which inner tile loops (``x_i``, ``y_i``, ``c_i``) ``unroll_all`` unrolls: those of
    more than one trip, innermost first, while the trip counts multiply to at most
    ``MAX_UNROLLED``."""
    out, total = [], 1
    for d, t in enumerate(s.tile):
        trips = -(-t // s.vector) if d == 0 else t
        total *= trips
        out.append(s.unroll_all and total <= MAX_UNROLLED and trips > 1)
    return out


def consumer_loops(s: StageSchedule) -> list[tuple[int, str]]:
    """The loops a producer can be computed in, innermost first, as (dim, "m" middle or
    "o" outer): the middle loops in their order, then the outer loops in theirs; a split
    reduction adds its inner and outer halves, (-1, "r") and (-1, "R"), where they go."""
    middle = [(d, "m") for d in s.middle_order] if s.middle is not None else []
    outer = [(d, "o") for d in s.order]
    if s.rsplit > 1:
        halves = [(-1, "r"), (-1, "R")]
        if REDUCTION_PLACES[s.reduction] == "outside_inner":
            return halves + middle + outer
        if REDUCTION_PLACES[s.reduction] == "outside_middle":
            return middle + halves + outer
    return middle + outer


def enclosing_loops(name: str, spec, schedules: dict[str, StageSchedule]) -> list[tuple[str, int]]:
    """The loops stage ``name`` can be computed in, innermost first, as (stage, index into
    its ``consumer_loops``): every loop of its one consumer, then the loops around the
    consumer where it is computed, and so on out to a root stage (v1's levels)."""
    (consumer,) = spec.consumers(name)
    out = [(consumer, k) for k in range(len(consumer_loops(schedules[consumer])))]
    if schedules[consumer].compute not in (ROOT, INLINE):
        func, k = location(consumer, spec, schedules)
        outside = enclosing_loops(consumer, spec, schedules)
        out += outside[outside.index((func, k)) :]
    return out


def location(name: str, spec, schedules: dict[str, StageSchedule]) -> tuple[str, int]:
    """The loop a stage computed at a consumer goes into: (stage, index into its
    ``consumer_loops``); v0's kinds name the consumer's innermost or outermost tile loop."""
    s = schedules[name]
    loops = enclosing_loops(name, spec, schedules)
    if s.compute == AT_TILE:
        return loops[0]
    if s.compute == AT_OUTER:
        (consumer,) = spec.consumers(name)
        return loops[len(consumer_loops(schedules[consumer])) - 1]
    return loops[min(s.level, len(loops) - 1)]


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
    if s.compute in (ROOT, INLINE) and s.store_out:
        s = replace(s, store_out=0)  # stored where it is computed: there is no consumer loop
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
    orders = np.array([is_canonical(o, dims) for o in ORDERS])
    vector = np.array([w == 1 or w <= extents[0] for w in VECTOR_WIDTHS])
    unroll = np.array([f == 1 or (dims > 1 and f <= extents[1]) for f in UNROLL_FACTORS])
    parallel = np.array([True, True])
    store = np.array([True, bool(compute[AT_OUTER])])
    return [compute, *splits, orders, vector, unroll, parallel, store]


def is_canonical(order: Sequence[int], dims: int) -> bool:
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


def check_action(
    action: object, masks: list[np.ndarray], components: tuple = COMPONENTS
) -> np.ndarray:
    """The action as an int array; ``ValueError`` naming a wrong shape, a value that is not
    an integer (NaN, a fractional float, a string, ...) or a masked value, with the allowed
    values. ``components``: the space's (name, size) pairs (v0's by default)."""
    names = ", ".join(n for n, _ in components)
    nvec = [n for _, n in components]
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
            f"a schedule action is a sequence of {len(nvec)} integers ({names}), got {got}"
        )
    if len(values) != len(nvec):
        raise ValueError(
            f"a schedule action has {len(nvec)} components ({names}), got {len(values)}"
        )
    a = np.array(
        [_component_value(name, n, v) for (name, n), v in zip(components, values, strict=True)],
        dtype=np.int64,
    )
    for (name, _), value, mask in zip(components, a, masks, strict=True):
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

    Each dimension ``d`` splits into ``d_o`` and ``d_i`` (the tile), or, with a middle
    tile, into ``d_o``, ``d_m`` and ``d_i``; the inner loops run x innermost, the middle and
    outer loops in their chosen orders. An update definition gets the same splits with its
    reduction loops where ``reduction`` puts them (v0: between the inner and the outer
    loops, so a tile accumulates in place). ``compute_at`` goes into the consumer's final
    definition. In v0 every split guards its last partial tile (``GuardWithIf``), so no
    stage computes, and no input is read, beyond the region the output needs; v1's
    ``tails="auto"`` shifts a root stage's last tile inwards and rounds up a tile inside a
    consumer (an update still guards), as Halide's autoschedulers do.
    """
    import halide as hl

    loops: dict[str, list] = {}  # stage -> its final definition's loops a producer may use
    spec = lowered.spec
    for stage in reversed(spec.stages):  # consumers first
        s = schedules[stage.name]
        f = lowered.funcs[stage.name]
        if s.inlined:
            f.compute_inline()
            continue
        pure = lowered.vars[stage.name]
        stages = [f]
        if lowered.rvars[stage.name]:
            stages.append(f.update(0))
        for k, st in enumerate(stages):
            loops[stage.name] = _schedule_definition(
                hl, st, s, pure, list(lowered.rvars[stage.name]) if k == 1 else [], k == 1
            )
        if s.compute == ROOT:
            f.compute_root()
            continue
        func, at = location(stage.name, spec, schedules)
        f.compute_at(lowered.funcs[func], loops[func][at])
        if s.store_root:
            f.store_root()
        elif s.store_out:
            around = enclosing_loops(stage.name, spec, schedules)
            func, at = around[min(around.index((func, at)) + s.store_out, len(around) - 1)]
            f.store_at(lowered.funcs[func], loops[func][at])


def _schedule_definition(hl, st, s: StageSchedule, pure: list, rvars: list, update: bool) -> list:
    """Split, reorder, vectorize, unroll and parallelize one definition of a stage; the
    loops a producer may be computed in (``consumer_loops`` order)."""
    guard = hl.TailStrategy.GuardWithIf
    if s.tails == "guard" or update:
        tail = guard
    else:
        tail = hl.TailStrategy.ShiftInwards if s.compute == ROOT else hl.TailStrategy.RoundUp
    names = [v.name() for v in pure]
    outs = [hl.Var(f"{n}_o") for n in names]
    ins = [hl.Var(f"{n}_i") for n in names]
    mids = [hl.Var(f"{n}_m") for n in names]
    for d, v in enumerate(pure):
        if s.middle is None:
            st.split(v, outs[d], ins[d], s.tile[d], tail)
        else:
            rest = hl.Var(f"{names[d]}_r")
            st.split(v, outs[d], rest, s.middle[d], tail)
            st.split(rest, mids[d], ins[d], s.tile[d], tail)
    inner = list(ins)
    lanes: list = []
    if s.vector > 1:
        xv = hl.Var(f"{names[0]}_v")
        st.split(ins[0], ins[0], xv, s.vector, tail)
        lanes = [xv]
    if s.unroll > 1:
        yu = hl.Var(f"{names[1]}_u")
        st.split(ins[1], ins[1], yu, s.unroll, tail)
        inner = [inner[0], yu, *inner[1:]]
    outer = [outs[d] for d in s.order]
    middle = [mids[d] for d in s.middle_order] if s.middle is not None else []
    halves: dict[tuple[int, str], object] = {}
    if rvars and s.rsplit > 1:
        last = rvars[-1]
        r_outer, r_inner = hl.RVar(f"{last.name()}_o"), hl.RVar(f"{last.name()}_i")
        st.split(last, r_outer, r_inner, s.rsplit, guard)
        rvars = [*rvars[:-1], r_inner, r_outer]
        halves = {(-1, "r"): r_inner, (-1, "R"): r_outer}
    place = REDUCTION_PLACES[s.reduction]
    nest = [*lanes]
    nest += rvars if place == "inside_inner" else []
    nest += inner
    nest += rvars if place == "outside_inner" else []
    nest += middle
    nest += rvars if place == "outside_middle" else []
    st.reorder([hl.VarOrRVar(v) for v in (*nest, *outer)])
    if s.vector > 1:
        st.vectorize(lanes[0])
    if s.unroll > 1:
        st.unroll(yu)
    for v, unrolled in zip(ins, unrolled_inner(s), strict=True):
        if unrolled:
            st.unroll(v)
    if s.parallel:
        st.parallel(outer[-1])
    named = {(d, kind): v for kind, vs in (("m", mids), ("o", outs)) for d, v in enumerate(vs)}
    return [halves.get(k, named.get(k)) for k in consumer_loops(s)]
