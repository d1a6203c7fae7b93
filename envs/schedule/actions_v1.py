"""The expressive stage action of ``ScheduleSearch-v1``: what Halide's autoschedulers write.

v0's action (``actions.py``) tiles each dimension once, computes a producer only at its
consumer's innermost or outermost tile loop and guards every partial tile. Adams2019's
schedules need more: a second tiling level, ``compute_at`` a middle loop, tiles of 3, 6,
12, 24, 48, fully unrolled register tiles, and the tail strategies that keep their trip
counts constant. One v1 action schedules one stage; its components, in order:

============  ==========================================================================
compute       0 root, 1 inline, 2 + k: in loop k around the stage, innermost first: its
              consumer's middle loops, then its outer loops, then the loops around the
              consumer where it is computed, out to a root stage (``enclosing_loops``)
split_x/y/c   index into ``SPLITS``: the inner tile of each dimension
middle_x/y/c  index into ``MIDDLES``: the middle tile, as a multiple of the inner tile
middle_order  index into ``ORDERS``: the order of the middle loops (innermost first)
order         index into ``ORDERS``: the order of the outer loops (innermost first)
vectorize     index into ``VECTOR_WIDTHS``: vectorize the inner x loop by that width
unroll        index into ``UNROLLS``: unroll the inner y loop by 2, 4 or 8, or every inner
              tile loop but the vector lanes while their trip counts multiply to at most
              ``MAX_UNROLLED`` (innermost first)
reduction     index into ``REDUCTION_PLACES``: where an update's reduction loops go
rsplit        index into ``RSPLITS``: split the update's last reduction loop (the two
              halves become loops a producer can be computed in, outside the inner tile)
parallel      0 serial, 1 the outermost loop is parallel
store         0 where computed, k = 1-5 loops further out (``enclosing_loops``), 6 at root
============  ==========================================================================

Tails are Halide's autoschedulers' (``tails="auto"``): a root stage's last partial tile is
shifted inwards, a stage computed in a consumer rounds its region up to whole tiles (its
inputs are then read past the region the output needs, which the worker allows by clamping
them to their edges), an update guards with an ``if``. As in v0, every combination of
legal component values is a legal schedule (a vector width or unroll factor larger than
the split raises that split to it; a tile larger than the dimension is cut to it) and the
mask is the concatenation of one boolean vector per component.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optgym.envs.schedule.actions import (
    AT_LEVEL,
    INLINE,
    MAX_UNROLLED,
    ORDERS,
    REDUCTION_PLACES,
    ROOT,
    VECTOR_WIDTHS,
    StageSchedule,
    canonical_order,
    is_canonical,
    sample_action,
)

SPLITS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
MIDDLES = (1, 2, 4, 8)
RSPLITS = (1, 2, 4, 8, 16)
UNROLLS = (1, 2, 4, 8, "all")
#: loops a producer can be computed in (``enclosing_loops``): its consumer's middle and
#: outer loops, then those around the consumer, the innermost first
MAX_LEVELS = 12
#: where a stage computed in a loop is stored: there, k loops further out, or at root
STORES = (0, 1, 2, 3, 4, 5, "root")
COMPONENTS = (
    ("compute", 2 + MAX_LEVELS),
    ("split_x", len(SPLITS)),
    ("split_y", len(SPLITS)),
    ("split_c", len(SPLITS)),
    ("middle_x", len(MIDDLES)),
    ("middle_y", len(MIDDLES)),
    ("middle_c", len(MIDDLES)),
    ("middle_order", len(ORDERS)),
    ("order", len(ORDERS)),
    ("vectorize", len(VECTOR_WIDTHS)),
    ("unroll", len(UNROLLS)),
    ("reduction", len(REDUCTION_PLACES)),
    ("rsplit", len(RSPLITS)),
    ("parallel", 2),
    ("store", len(STORES)),
)
NVEC = np.array([n for _, n in COMPONENTS], dtype=np.int64)
MASK_SIZE = int(NVEC.sum())
__all__ = [
    "COMPONENTS",
    "MAX_UNROLLED",
    "NVEC",
    "SPLITS",
    "component_masks",
    "decode",
    "encode",
    "prior_action",
    "prior_value",
    "sample_action",
]


def decode(action: Sequence[int], extents: Sequence[int]) -> StageSchedule:
    """The schedule a v1 action gives a stage with ``extents`` (legal actions only)."""
    dims = len(extents)
    a = [int(v) for v in action]
    compute, splits, middles = a[0], a[1:4], a[4:7]
    middle_order, order, vec, unroll, reduction, rsplit, parallel, store = a[7:]
    vector, factor = VECTOR_WIDTHS[vec], UNROLLS[unroll]
    tile = [SPLITS[s] for s in splits[:dims]]
    tile[0] = max(tile[0], vector)
    if dims > 1 and factor != "all":
        tile[1] = max(tile[1], factor)
    tile = [min(t, e) for t, e in zip(tile, extents, strict=True)]
    middle = tuple(
        min(t * MIDDLES[m], e) for t, m, e in zip(tile, middles[:dims], extents, strict=True)
    )
    return StageSchedule(
        compute=compute if compute < 2 else AT_LEVEL,
        tile=tuple(tile),
        order=canonical_order(ORDERS[order], dims),
        vector=vector,
        unroll=factor if factor != "all" and dims > 1 else 1,
        parallel=bool(parallel),
        store_root=STORES[store] == "root",
        middle=middle,
        middle_order=canonical_order(ORDERS[middle_order], dims),
        level=max(0, compute - 2),
        store_out=0 if STORES[store] == "root" else int(STORES[store]),
        unroll_all=factor == "all",
        reduction=reduction,
        rsplit=RSPLITS[rsplit],
        tails="auto",
    )


def component_masks(
    extents: Sequence[int],
    *,
    is_output: bool,
    reduction_extents: Sequence[int],
    consumer_levels: int,
) -> list[np.ndarray]:
    """Legal values of each component for a stage; ``consumer_levels`` is the number of
    loops around it (``enclosing_loops``: 0 when it has several consumers, its consumer is
    inlined, or it is the output); ``reduction_extents``: its update's RDom (empty without
    an update)."""
    dims = len(extents)
    has_update = bool(reduction_extents)
    compute = np.zeros(2 + MAX_LEVELS, bool)
    compute[ROOT] = True
    levels = 0 if is_output else min(consumer_levels, MAX_LEVELS)
    if not is_output:
        compute[INLINE] = not has_update
        compute[2 : 2 + levels] = True

    def fits(table: Sequence[int], d: int) -> np.ndarray:
        return np.array([v == 1 or (d < dims and v <= extents[d]) for v in table])

    splits = [fits(SPLITS, d) for d in range(3)]
    middles = [fits(MIDDLES, d) for d in range(3)]
    orders = np.array([is_canonical(o, dims) for o in ORDERS])
    vector = np.array([w == 1 or w <= extents[0] for w in VECTOR_WIDTHS])
    unroll = np.array([f in (1, "all") or (dims > 1 and f <= extents[1]) for f in UNROLLS])
    reduction = np.array([True, has_update, has_update])
    last = reduction_extents[-1] if has_update else 0
    rsplit = np.array([f == 1 or f < last for f in RSPLITS])
    parallel = np.array([True, True])
    store = np.array([k == 0 or (levels > k if k != "root" else levels > 0) for k in STORES])
    return [compute, *splits, *middles, orders, orders.copy(), vector, unroll, reduction,
            rsplit, parallel, store]  # fmt: skip


def encode(s: StageSchedule, extents: Sequence[int]) -> np.ndarray:
    """The v1 action that decodes to ``s`` (``ValueError`` naming the first choice v1
    cannot express); the inverse of :func:`decode` on the schedules it gives."""
    dims = len(extents)

    def index(table: Sequence, value: object, what: str) -> int:
        if value not in table:
            raise ValueError(f"{what} {value!r} is not in v1's {list(table)}")
        return list(table).index(value)

    if s.compute == ROOT:
        compute = 0
    elif s.compute == INLINE:
        compute = 1
    elif s.compute == AT_LEVEL and 0 <= s.level < MAX_LEVELS:
        compute = 2 + s.level
    else:
        raise ValueError(f"compute {s.compute} (level {s.level}) is not a v1 compute location")
    splits = [index(SPLITS, t, "tile") for t in s.tile] + [0] * (3 - dims)
    middle = s.middle if s.middle is not None else s.tile
    middles = []
    for d in range(dims):
        fits = [k for k, m in enumerate(MIDDLES) if min(s.tile[d] * m, extents[d]) == middle[d]]
        if not fits:
            raise ValueError(f"middle tile {middle[d]} of tile {s.tile[d]} is not in v1's")
        middles.append(fits[0])
    middles += [0] * (3 - dims)

    def order_index(order: tuple[int, ...]) -> int:
        for k, o in enumerate(ORDERS):
            if is_canonical(o, dims) and canonical_order(o, dims) == tuple(order):
                return k
        raise ValueError(f"loop order {order} is not an order of {dims} dimensions")

    if s.unroll_all:
        unroll = UNROLLS.index("all")
    else:
        unroll = index(UNROLLS, s.unroll, "unroll factor")
    if s.store_root:
        store = STORES.index("root")
    else:
        store = index(STORES[:-1], s.store_out, "store offset")
    return np.array(
        [
            compute,
            *splits,
            *middles,
            order_index(s.middle_order or tuple(range(dims))),
            order_index(s.order),
            index(VECTOR_WIDTHS, s.vector, "vector width"),
            unroll,
            s.reduction,
            index(RSPLITS, s.rsplit, "reduction split"),
            int(s.parallel),
            store,
        ],
        dtype=np.int64,
    )


# Relative odds of each value under ``prior_action`` (renormalized over the legal values):
# compute at root or in the loops closest to it, tiles of 4 to 32, one tiling level
# more often than two, vectors of 8 or 16, unrolled register tiles, no parallel loop (one
# thread by default), stored where computed.
PRIOR = (
    np.array([4.0, 2.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
    *(np.array([2.0, 1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 3.0, 1.0, 2.0, 1.0, 1.0, 0.5]),) * 3,
    *(np.array([4.0, 1.0, 1.0, 0.5]),) * 3,
    np.ones(len(ORDERS)),
    np.ones(len(ORDERS)),
    np.array([1.0, 1.0, 3.0, 3.0]),
    np.array([3.0, 1.0, 1.0, 0.5, 3.0]),
    np.array([3.0, 1.0, 1.0]),
    np.array([6.0, 1.0, 1.0, 1.0, 1.0]),
    np.array([4.0, 1.0]),
    np.array([8.0, 1.0, 1.0, 0.5, 0.5, 0.5, 1.0]),
)


def prior_value(
    mask: np.ndarray, prior: np.ndarray, rng: np.random.Generator, avoid: int = -1
) -> int:
    """A legal value of one component drawn from its ``PRIOR`` row, ``avoid`` left out
    while another value is legal."""
    w = np.where(mask, prior, 0.0)
    if 0 <= avoid < len(w) and w.sum() > w[avoid]:
        w[avoid] = 0.0
    return int(rng.choice(len(w), p=w / w.sum()))


def prior_action(masks: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A random legal v1 action drawn from ``PRIOR``."""
    values = [prior_value(m, p, rng) for m, p in zip(masks, PRIOR, strict=True)]
    return np.array(values, dtype=np.int64)
