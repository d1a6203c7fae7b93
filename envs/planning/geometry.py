"""Exact collision of straight moves with axis-aligned walls, one plan or many at once.

A move from ``p`` by ``d`` is tested against every wall (a closed rectangle; the world's
border is four more) by the slab method: the move enters a wall at the parameter
``t = max(entry_x, entry_y)`` when that is in ``[0, 1]`` and before the exit. A move that
would enter a wall stops at the first contact, :data:`EPS` world units short of it, so the
robot is never inside or on a wall. A move that enters a goal disk stops at the disk's
edge, and the robot stays there: the goal is reached at that step.

Plans are in action units: move ``k`` of a plan is ``plan[k] * move_bound``, its length
clipped to ``move_bound``. :func:`rollout` evaluates ``N`` plans at once in NumPy
(vectorized over plans, looping over steps; each step tests only the walls near each robot,
found on a grid of cells as wide as a move). :func:`rollout_one` (built on :func:`move`, one
move) is the same computation for one plan in plain Python floats over every wall, with the
same floating-point operations in the same order, so both give bit-identical results (the
tests check it); it is the faster of the two for a single plan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from optgym.datasets.planning import NavMap
from optgym.env import as_numbers

EPS = 1e-6  # how far short of a wall a blocked move stops, in world units
# Most (cell, wall) pairs the broad-phase grid holds: a map whose walls crowd every cell
# gets fewer, larger cells (same results, bounded memory).
MAX_CELL_ENTRIES = 1_000_000
# A single plan is rolled out in plain Python unless some cell lists more walls than this;
# then NumPy over the crowded cell is faster (the results are bit-identical either way).
PLAIN_MAX_NEAR_WALLS = 64
NO_HIT = 2.0  # contact parameter meaning "no wall on this move" (a real one is <= 1)
INF = math.inf
TINY = 1e-200  # a move component smaller than this counts as none in the slab test


def border_walls(size: float) -> list[tuple[float, float, float, float]]:
    """The world's border as four unit-thick walls just outside ``[0, size]^2``."""
    return [
        (-1.0, -1.0, 0.0, size + 1.0),
        (size, -1.0, size + 1.0, size + 1.0),
        (-1.0, -1.0, size + 1.0, 0.0),
        (-1.0, size, size + 1.0, size + 1.0),
    ]


@dataclass(frozen=True)
class MapGeometry:
    """Arrays derived from a map for fast batched collision tests.

    ``rects``: (K, 4) every wall and the border as x0, y0, x1, y1; ``cell``: side of the
    broad-phase grid cells; ``cell_walls``: (4, Kc, n * n): for each cell the walls a move
    starting in it can touch (x0, y0, x1, y1), padded with a wall far outside the world;
    ``cell_lists``: the same walls per cell as Python tuples (for :func:`move`);
    ``goals``: (G, 4) x, y, radius, payoff. The grid is coarsened until it holds at most
    :data:`MAX_CELL_ENTRIES` (cell, wall) pairs.
    """

    size: float
    move_bound: float
    horizon: int
    start: tuple[float, float]
    rects: np.ndarray
    cell: float
    cells_per_side: int
    cell_walls: np.ndarray
    goals: np.ndarray
    cell_lists: tuple[tuple[tuple[float, float, float, float], ...], ...] = ()

    @classmethod
    def build(cls, nav: NavMap) -> MapGeometry:
        rects = np.array([*nav.walls, *border_walls(nav.size)], dtype=np.float64)
        cell = max(nav.move_bound, nav.size / 64)
        reach = nav.move_bound + 1e-6 * nav.size  # a move from the cell reaches this far
        far = -3.0 * nav.size - 10.0
        while True:
            n = max(1, math.ceil(nav.size / cell))
            lists = _cell_lists(rects, cell, n, reach)
            width = max(1, max(len(x) for x in lists))
            if n == 1 or width * n * n <= MAX_CELL_ENTRIES:
                break
            cell *= 2  # crowded cells everywhere: fewer, larger cells
        cell_walls = np.empty((4, width, n * n))
        cell_walls[:] = np.array([far, far, far + 1.0, far + 1.0])[:, None, None]
        for k, near in enumerate(lists):
            cell_walls[:, : len(near), k] = near.T
        goals = np.array([(g.x, g.y, g.radius, g.payoff) for g in nav.goals], dtype=np.float64)
        plain = tuple(tuple(map(tuple, near.tolist())) for near in lists)
        return cls(
            nav.size,
            nav.move_bound,
            nav.horizon,
            nav.start,
            rects,
            cell,
            n,
            cell_walls,
            goals,
            plain,
        )

    @property
    def most_near_walls(self) -> int:
        """The most walls one cell lists (what a move is tested against at worst)."""
        return self.cell_walls.shape[1]

    def cell_of(self, x: float, y: float) -> int:
        """The index of the cell holding ``(x, y)``, as :meth:`near_walls` computes it."""
        last = self.cells_per_side - 1
        i = min(int(x * (1.0 / self.cell)), last)
        j = min(int(y * (1.0 / self.cell)), last)
        return i * self.cells_per_side + j

    @property
    def all_walls(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every wall as (K, 1) arrays x0, y0, x1, y1, for :func:`first_contact`."""
        r = self.rects
        return (r[:, 0:1], r[:, 1:2], r[:, 2:3], r[:, 3:4])

    def near_walls(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For points (N,), the walls a move from each can touch: (Kc, N) arrays x0, y0,
        x1, y1 (positions are in [0, size], so the cell index needs no lower clip)."""
        last = self.cells_per_side - 1
        i = np.minimum((x * (1.0 / self.cell)).astype(np.intp), last)
        j = np.minimum((y * (1.0 / self.cell)).astype(np.intp), last)
        w = np.take(self.cell_walls, i * self.cells_per_side + j, axis=2)
        return (w[0], w[1], w[2], w[3])


def _cell_lists(rects: np.ndarray, cell: float, n: int, reach: float) -> list[np.ndarray]:
    """For each of the ``n * n`` cells, the walls of ``rects`` within ``reach`` of it."""
    lists = []
    for i in range(n):
        lo_x, hi_x = i * cell - reach, (i + 1) * cell + reach
        column = rects[(rects[:, 0] <= hi_x) & (rects[:, 2] >= lo_x)]
        for j in range(n):
            lo_y, hi_y = j * cell - reach, (j + 1) * cell + reach
            lists.append(column[(column[:, 1] <= hi_y) & (column[:, 3] >= lo_y)])
    return lists


@lru_cache(maxsize=16)
def map_geometry(nav: NavMap) -> MapGeometry:
    """The (cached) :class:`MapGeometry` of a map."""
    return MapGeometry.build(nav)


# --------------------------------------------------------------------------- batched


def first_contact(
    px: np.ndarray,
    py: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    walls: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Contact parameter of moves ``p -> p + d`` (each of shape (N,)) with walls given as
    ``(x0, y0, x1, y1)`` arrays of shape (K, 1) (the same walls for every move) or (K, N):
    the smallest ``t`` in [0, 1] at which the move enters a wall, or :data:`NO_HIT`. (Walls
    run along the first axis so that NumPy's inner loops run over the N moves.)"""
    x0, y0, x1, y1 = walls
    flat_x, flat_y = np.abs(dx) < TINY, np.abs(dy) < TINY
    any_x, any_y = bool(flat_x.any()), bool(flat_y.any())
    ix = 1.0 / (np.where(flat_x, 1.0, dx) if any_x else dx)
    iy = 1.0 / (np.where(flat_y, 1.0, dy) if any_y else dy)
    cx, cy = px[None], py[None]
    ax, bx = (x0 - cx) * ix[None], (x1 - cx) * ix[None]
    ay, by = (y0 - cy) * iy[None], (y1 - cy) * iy[None]
    lo_x, hi_x = np.minimum(ax, bx), np.maximum(ax, bx)
    lo_y, hi_y = np.minimum(ay, by), np.maximum(ay, by)
    if any_x:  # moving parallel to the y axis: the x slab is everything or nothing
        lo_x, hi_x = _flat_slab(flat_x, cx, x0, x1, lo_x, hi_x)
    if any_y:
        lo_y, hi_y = _flat_slab(flat_y, cy, y0, y1, lo_y, hi_y)
    enter = np.maximum(lo_x, lo_y)
    leave = np.minimum(hi_x, hi_y)
    t = np.where((enter <= leave) & (enter >= 0.0), enter, NO_HIT)
    return t.min(axis=0)


def _flat_slab(
    flat: np.ndarray,
    c: np.ndarray,
    a0: np.ndarray,
    a1: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    inside = (c >= a0) & (c <= a1)
    flat = flat[None]
    return (
        np.where(flat, np.where(inside, -INF, INF), lo),
        np.where(flat, np.where(inside, INF, -INF), hi),
    )


def clip_moves(plans: np.ndarray, move_bound: float) -> np.ndarray:
    """Moves in world units: ``plans * move_bound``, each move's length clipped to the bound."""
    m = plans * move_bound
    mx, my = m[..., 0], m[..., 1]
    norm = np.sqrt(mx * mx + my * my)
    scale = np.where(norm > move_bound, move_bound / np.where(norm > 0, norm, 1.0), 1.0)
    return m * scale[..., None]


def blocked_fraction(t: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The fraction of each move made: 1 without contact, else :data:`EPS` short of it."""
    length = np.sqrt(dx * dx + dy * dy)
    hit = t <= 1.0
    safe = np.where(hit, length, 1.0)
    return np.where(hit, np.maximum(t - EPS / safe, 0.0), 1.0)


def goal_entry(
    px: np.ndarray, py: np.ndarray, sx: np.ndarray, sy: np.ndarray, goals: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(parameter, goal index) of the first goal disk each segment ``p -> p + s`` enters,
    or (:data:`NO_HIT`, -1); ties go to the lower index."""
    best = np.full(px.shape, NO_HIT)
    which = np.full(px.shape, -1, dtype=np.intp)
    a = sx * sx + sy * sy
    moving = a > 0
    safe_a = np.where(moving, a, 1.0)
    for g in range(len(goals)):
        gx, gy, r = goals[g, 0], goals[g, 1], goals[g, 2]
        fx, fy = px - gx, py - gy
        b = sx * fx + sy * fy
        c = fx * fx + fy * fy - r * r
        disc = b * b - a * c
        s = (-b - np.sqrt(np.maximum(disc, 0.0))) / safe_a
        enter = moving & (disc >= 0.0) & (s >= 0.0) & (s <= 1.0) & (s < best)
        best = np.where(enter, s, best)
        which = np.where(enter, g, which)
    return best, which


def check_plans(plans: Any, horizon: int) -> np.ndarray:
    """``plans`` as float64 (N, T, 2); ``ValueError`` for something that is not numbers, a
    wrong shape, a non-finite value or a value outside [-1, 1] (the action space).
    Accepts (N, 2T) flat plans too."""
    allowed = f"allowed: plans of {horizon} moves (dx, dy), each number finite and in [-1, 1]"
    arr = as_numbers(plans, "plans", allowed)
    if arr.ndim == 2 and arr.shape[1] == 2 * horizon:
        arr = arr.reshape(len(arr), horizon, 2)
    if arr.ndim != 3 or arr.shape[1:] != (horizon, 2):
        raise ValueError(
            f"plans must have shape (N, {horizon}, 2) or (N, {2 * horizon}) for horizon "
            f"{horizon}; got shape {np.shape(plans)}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        n, t, _ = np.argwhere(bad)[0]
        raise ValueError(
            f"plan {n} has a non-finite move {arr[n, t].tolist()} at step {t}; moves must be "
            "finite numbers"
        )
    outside = np.abs(arr) > 1.0 + 1e-9
    if outside.any():
        n, t, _ = np.argwhere(outside)[0]
        raise ValueError(
            f"plan {n} has a move {arr[n, t].tolist()} at step {t} outside the action space "
            "[-1, 1]; clip plans before evaluating them"
        )
    return arr


def rollout(nav: NavMap, plans: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Roll out ``N`` open-loop plans, shape (N, T, 2) in action units, on ``nav``.

    Returns ``positions`` (N, T + 1, 2) (row 0 the start; a robot that reached a goal stays
    where it entered the disk), ``reached_step`` (N,) the step 1..T at which a goal was
    reached or -1, and ``goal`` (N,) the index of that goal or -1.
    """
    geo = map_geometry(nav)
    arr = check_plans(plans, nav.horizon)
    n, horizon = arr.shape[0], nav.horizon
    # (T, 2, N): each step reads two contiguous rows; a robot at a goal gets zero moves
    moves = np.ascontiguousarray(clip_moves(arr, nav.move_bound).transpose(1, 2, 0))
    trace = np.empty((horizon + 1, 2, n))
    px, py = np.full(n, geo.start[0]), np.full(n, geo.start[1])
    trace[0, 0], trace[0, 1] = px, py
    reached = np.full(n, -1, dtype=np.intp)
    goal = np.full(n, -1, dtype=np.intp)
    # a move can only enter a goal disk from within radius + move length of its centre
    reach = (geo.goals[:, 2] + nav.move_bound * (1 + 1e-9) + 1e-9 * nav.size) ** 2
    gx, gy = geo.goals[:, 0:1], geo.goals[:, 1:2]
    left = n
    for k in range(horizon):
        dx, dy = moves[k, 0], moves[k, 1]
        t = first_contact(px, py, dx, dy, geo.near_walls(px, py))
        if (t <= 1.0).any():
            f = blocked_fraction(t, dx, dy)
            sx, sy = dx * f, dy * f
        else:
            sx, sy = dx, dy
        nx, ny = px + sx, py + sy
        ex, ey = px - gx, py - gy
        near = np.flatnonzero(((ex * ex + ey * ey) <= reach[:, None]).any(axis=0))
        if len(near):
            s, which = goal_entry(px[near], py[near], sx[near], sy[near], geo.goals)
            hit = which >= 0
            if hit.any():
                idx, s = near[hit], s[hit]
                nx[idx] = px[idx] + sx[idx] * s
                ny[idx] = py[idx] + sy[idx] * s
                reached[idx] = k + 1
                goal[idx] = which[hit]
                moves[k + 1 :, :, idx] = 0.0
                left -= len(idx)
        px, py = nx, ny
        trace[k + 1, 0], trace[k + 1, 1] = px, py
        if left == 0:
            trace[k + 2 :] = trace[k + 1]
            break
    return trace.transpose(2, 0, 1).copy(), reached, goal


def ranges(nav: NavMap, x: float, y: float, directions: np.ndarray, cap: float) -> np.ndarray:
    """Distance from ``(x, y)`` to the nearest wall along each unit direction (D, 2), at
    most ``cap``."""
    geo = map_geometry(nav)
    d = directions * cap
    n = len(d)
    t = first_contact(np.full(n, float(x)), np.full(n, float(y)), d[:, 0], d[:, 1], geo.all_walls)
    return np.minimum(t, 1.0) * cap


# --------------------------------------------------------------------------- one plan


def _slab(c: float, d: float, lo: float, hi: float) -> tuple[float, float]:
    if abs(d) < TINY:
        return (-INF, INF) if lo <= c <= hi else (INF, -INF)
    inv = 1.0 / d
    a, b = (lo - c) * inv, (hi - c) * inv
    return (a, b) if a <= b else (b, a)


def first_contact_one(
    x: float, y: float, dx: float, dy: float, rects: Iterable[tuple[float, float, float, float]]
) -> float:
    """:func:`first_contact` for one move, in Python floats, over the walls ``rects``
    (the same operations as :func:`_slab`, inlined: this is the hot loop of one plan)."""
    best = NO_HIT
    flat_x, flat_y = abs(dx) < TINY, abs(dy) < TINY
    ix = 0.0 if flat_x else 1.0 / dx
    iy = 0.0 if flat_y else 1.0 / dy
    for x0, y0, x1, y1 in rects:
        if flat_x:  # moving along y: the x slab is everything or nothing
            if not x0 <= x <= x1:
                continue
            lo_x, hi_x = -INF, INF
        else:
            a, b = (x0 - x) * ix, (x1 - x) * ix
            lo_x, hi_x = (a, b) if a <= b else (b, a)
        if flat_y:
            if not y0 <= y <= y1:
                continue
            lo_y, hi_y = -INF, INF
        else:
            a, b = (y0 - y) * iy, (y1 - y) * iy
            lo_y, hi_y = (a, b) if a <= b else (b, a)
        enter = lo_x if lo_x >= lo_y else lo_y
        leave = hi_x if hi_x <= hi_y else hi_y
        if enter <= leave and enter >= 0.0 and enter < best:
            best = enter
    return best


@lru_cache(maxsize=16)
def _plain_goals(nav: NavMap) -> list[tuple[float, float, float]]:
    """Every goal of a map as Python tuples."""
    return [(g.x, g.y, g.radius) for g in nav.goals]


def move(nav: NavMap, x: float, y: float, dx: float, dy: float) -> tuple[float, float, int]:
    """One move by ``(dx, dy)`` in world units (already clipped to the move bound) from
    ``(x, y)``, in plain Python: the new position and the goal it entered (-1 for none).
    Tests the walls the cell of ``(x, y)`` lists (every wall the move can touch).
    Bit-identical to a step of :func:`rollout`."""
    geo = map_geometry(nav)
    goals = _plain_goals(nav)
    t = first_contact_one(x, y, dx, dy, geo.cell_lists[geo.cell_of(x, y)])
    f = max(t - EPS / math.sqrt(dx * dx + dy * dy), 0.0) if t <= 1.0 else 1.0
    sx, sy = dx * f, dy * f
    a = sx * sx + sy * sy
    best, which = NO_HIT, -1
    if a > 0:
        for g, (gx, gy, r) in enumerate(goals):
            fx, fy = x - gx, y - gy
            b = sx * fx + sy * fy
            c = fx * fx + fy * fy - r * r
            disc = b * b - a * c
            if disc < 0.0:
                continue
            s = (-b - math.sqrt(disc)) / a
            if 0.0 <= s <= 1.0 and s < best:
                best, which = s, g
    if which >= 0:
        return x + sx * best, y + sy * best, which
    return x + sx, y + sy, -1


def rollout_one(nav: NavMap, plan: np.ndarray) -> tuple[list[tuple[float, float]], int, int]:
    """One plan (T, 2) in action units, in plain Python: (positions, reached_step, goal),
    bit-identical to :func:`rollout`'s row for the same plan."""
    arr = check_plans(np.asarray(plan, dtype=np.float64)[None], nav.horizon)[0]
    bound = nav.move_bound
    x, y = nav.start
    positions = [(x, y)]
    for k, (ax, ay) in enumerate(arr.tolist()):
        dx, dy = ax * bound, ay * bound
        norm = math.sqrt(dx * dx + dy * dy)
        if norm > bound:
            scale = bound / norm
            dx, dy = dx * scale, dy * scale
        x, y, which = move(nav, x, y, dx, dy)
        positions.append((x, y))
        if which >= 0:
            positions.extend([(x, y)] * (nav.horizon - k - 1))
            return positions, k + 1, which
    return positions, -1, -1
