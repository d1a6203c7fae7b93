"""Whether a map can be solved, and how long its shortest way is (public as
``optgym.datasets.planning.reachability``).

The robot is a point that moves in straight lines and may not touch a wall (a closed
rectangle; the world's border is one too). :func:`reachability` lays a grid of
:data:`GRID_SIDE` x :data:`GRID_SIDE` square cells over the world, keeps the cells whose
closed square touches no wall, and finds the shortest path of cell centres from the start to
each goal (8 neighbours, a diagonal only where both cells beside it are free, so every
piece of the path lies inside free cells: a path found is a real path). The path is then
pulled tight: each corner is dropped while the straight line past it stays clear of every
wall (an exact test). The length is therefore the length of a real collision-free path, an
upper bound on the shortest one that exceeds it by at most about a cell side per turn.

A way narrower than about two cell sides (``2 * size / GRID_SIDE``: 0.08 on a 10 x 10
map) may be missed, so "unreachable" means "no way at least that wide"; the message says so.

:func:`way_field` runs the same search back from the goals over the whole grid: the way
left to the nearest goal from every free cell (a distance-to-go field; the grid's 8-way
length, a few percent above the straight way), for the closed-loop env's ``WaySensors`` and
``WayProgress``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from optgym.datasets.planning.maps import NavMap

#: Cells per side of the grid the search runs on.
GRID_SIDE = 256
#: Cells (in each direction) around the start or a small goal whose centres are tried with
#: a straight, exact move when the start's or goal's own cell touches a wall.
NEAR_CELLS = 3


@dataclass(frozen=True)
class Reachability:
    """What :func:`reachability` found on a map.

    ``lengths``: per goal, the length in world units of a collision-free path from the start
    into the goal's disk (None: no way at least ``2 * cell`` wide); ``cell``: the grid's
    cell side; ``path``: the path to the nearest reachable goal (start first), empty when
    none is reachable."""

    lengths: tuple[float | None, ...]
    cell: float
    move_bound: float
    horizon: int
    path: tuple[tuple[float, float], ...]

    @property
    def reachable(self) -> bool:
        """Whether some goal is reachable at all."""
        return any(v is not None for v in self.lengths)

    @property
    def length(self) -> float | None:
        """The length of the way to the nearest reachable goal (None: none is)."""
        found = [v for v in self.lengths if v is not None]
        return min(found) if found else None

    @property
    def moves(self) -> int | None:
        """Moves of ``move_bound`` that way takes (at least; None: no goal is reachable)."""
        length = self.length
        return None if length is None else max(1, math.ceil(length / self.move_bound - 1e-9))

    @property
    def within_horizon(self) -> bool:
        """Whether that way fits in the map's horizon of moves."""
        moves = self.moves
        return moves is not None and moves <= self.horizon

    def problem(self, name: str) -> str | None:
        """A sentence on why no plan on map ``name`` can reach a goal, or None when one can."""
        if self.reachable:
            return None
        return (
            f"map {name!r} has no path from the start to any goal: no way at least "
            f"{2 * self.cell:.3g} wide leads there (checked on a {GRID_SIDE} x {GRID_SIDE} "
            "grid); open a wall or move the start or a goal"
        )

    def too_long(self, name: str) -> str | None:
        """A sentence when map ``name``'s way is longer than its horizon's moves allow even
        after the grid's error is taken off (plans then score by the distance they gain),
        else None."""
        slack = 2 * self.cell * len(self.path)  # the most the grid's way can be too long
        if self.length is None or self.length - slack <= self.horizon * self.move_bound:
            return None
        return (
            f"map {name!r}: the shortest way to a goal is about {self.length:.4g} long, "
            f"{self.moves} moves of {self.move_bound:g}, and the horizon allows "
            f"{self.horizon}: no plan reaches a goal (raise 'horizon' or 'move_bound')"
        )


def require_path(nav: NavMap) -> Reachability:
    """:func:`reachability` of ``nav``; ``ValueError`` (:meth:`Reachability.problem`) when
    no goal is reachable."""
    found = reachability(nav)
    why = found.problem(nav.name)
    if why is not None:
        raise ValueError(why)
    return found


def wall_rects(nav: NavMap) -> np.ndarray:
    """(K, 4) x0, y0, x1, y1 of every wall of ``nav`` and of the world's border."""
    w = nav.size
    border = [(-1.0, -1.0, 0.0, w + 1.0), (w, -1.0, w + 1.0, w + 1.0),
              (-1.0, -1.0, w + 1.0, 0.0), (-1.0, w, w + 1.0, w + 1.0)]  # fmt: skip
    return np.array([*nav.walls, *border], dtype=float).reshape(-1, 4)


def segments_clear(rects: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """For segments ``p[i] -> q[i]`` ((N, 2) each): whether each stays off every closed
    rectangle of ``rects`` ((K, 4): x0, y0, x1, y1), by the slab test."""
    p, q = np.atleast_2d(p)[:, None, :], np.atleast_2d(q)[:, None, :]
    d = q - p
    lo, hi = rects[None, :, :2], rects[None, :, 2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (lo - p) / d, (hi - p) / d
    enter, leave = np.minimum(t0, t1), np.maximum(t0, t1)
    flat = d == 0  # parallel to an axis: inside that slab or never
    inside = (lo <= p) & (p <= hi)
    enter = np.where(flat, np.where(inside, -np.inf, np.inf), enter)
    leave = np.where(flat, np.where(inside, np.inf, -np.inf), leave)
    t_in = np.maximum(enter.max(axis=2), 0.0)
    t_out = np.minimum(leave.min(axis=2), 1.0)
    return ~(t_in <= t_out).any(axis=1)


def _free_grid(rects: np.ndarray, size: float) -> tuple[np.ndarray, float]:
    n = GRID_SIDE
    h = size / n
    lo = np.arange(n) * h
    hi = lo + h
    blocked = np.zeros((n, n), dtype=bool)  # [x index, y index]
    for x0, y0, x1, y1 in rects:
        i0, i1 = np.searchsorted(hi, x0, "left"), np.searchsorted(lo, x1, "right")
        j0, j1 = np.searchsorted(hi, y0, "left"), np.searchsorted(lo, y1, "right")
        blocked[i0:i1, j0:j1] = True
    return ~blocked, h


def _graph(free: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (rows, cols, lengths, both ways) between neighbouring free cells; node
    ``i * n + j`` is cell (i, j)."""
    n = free.shape[0]
    ids = np.arange(n * n).reshape(n, n)
    rows, cols, lens = [], [], []
    for di, dj in ((1, 0), (0, 1), (1, 1), (1, -1)):
        j0, j1 = max(0, -dj), n - max(0, dj)  # cells (i, j) whose (i + di, j + dj) exists
        ok = free[: n - di, j0:j1] & free[di:, j0 + dj : j1 + dj]
        if di and dj:  # a diagonal needs both cells beside it free
            ok &= free[di:, j0:j1] & free[: n - di, j0 + dj : j1 + dj]
        src = ids[: n - di, j0:j1][ok]
        dst = src + di * n + dj
        rows += [src, dst]
        cols += [dst, src]
        lens.append(np.full(2 * len(src), h * math.hypot(di, dj)))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(lens)


def _centre(node: int, n: int, h: float) -> tuple[float, float]:
    return ((node // n + 0.5) * h, (node % n + 0.5) * h)


def _near_links(
    rects: np.ndarray,
    free: np.ndarray,
    h: float,
    point: tuple[float, float],
    radius: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Free cells near ``point`` whose centre reaches the disk of ``radius`` around it by
    one clear straight line (aimed at the disk's point nearest the centre): node ids and
    the lines' lengths."""
    n = free.shape[0]
    ci, cj = min(int(point[0] / h), n - 1), min(int(point[1] / h), n - 1)
    r = NEAR_CELLS + int(radius / h)
    ii, jj = np.meshgrid(
        np.arange(max(0, ci - r), min(n, ci + r + 1)),
        np.arange(max(0, cj - r), min(n, cj + r + 1)),
        indexing="ij",
    )
    keep = free[ii, jj]
    ii, jj = ii[keep], jj[keep]
    centres = np.stack([(ii + 0.5) * h, (jj + 0.5) * h], axis=1)
    away = centres - np.asarray(point, dtype=float)
    dist = np.hypot(away[:, 0], away[:, 1])
    reach = np.minimum(1.0, radius / np.maximum(dist, 1e-300))[:, None]
    aims = np.asarray(point, dtype=float) + away * reach
    clear = segments_clear(rects, aims, centres) | (dist <= radius)
    return (ii * n + jj)[clear], np.maximum(dist - radius, 1e-12)[clear]


def _goal_links(
    rects: np.ndarray, free: np.ndarray, h: float, x: float, y: float, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Free cells from which the goal disk is one straight line away: those the disk
    overlaps (their square is free and convex) and those near it with a clear line; node
    ids (each once) and the lines' lengths."""
    n = free.shape[0]
    ii, jj = np.nonzero(free)
    gap = np.hypot(
        np.maximum(0.0, np.abs((ii + 0.5) * h - x) - h / 2),
        np.maximum(0.0, np.abs((jj + 0.5) * h - y) - h / 2),
    )
    over = gap <= radius
    dist = np.hypot((ii[over] + 0.5) * h - x, (jj[over] + 0.5) * h - y)
    near, near_len = _near_links(rects, free, h, (x, y), radius)
    nodes = np.concatenate([ii[over] * n + jj[over], near])
    lengths = np.concatenate([np.maximum(dist - radius, 1e-12), near_len])
    order = np.lexsort((lengths, nodes))
    nodes, lengths = nodes[order], lengths[order]
    first = np.unique(nodes, return_index=True)[1]
    return nodes[first], lengths[first]


def _pull_tight(rects: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Drop corners of a collision-free polyline while the line past them stays clear."""
    kept = [0]
    i = 0
    while i < len(points) - 1:
        ahead = points[i + 1 :]
        clear = segments_clear(rects, np.broadcast_to(points[i], ahead.shape), ahead)
        j = i + 1 + int(np.flatnonzero(clear).max()) if clear.any() else i + 1
        kept.append(j)
        i = j
    return points[kept]


def _into_disk(points: np.ndarray, centre: np.ndarray, radius: float) -> float:
    """Length of the polyline up to where it first enters the closed disk."""
    total = 0.0
    for a, b in zip(points[:-1], points[1:], strict=True):
        d = b - a
        f = a - centre
        qa, qb, qc = d @ d, 2 * f @ d, f @ f - radius * radius
        seg = math.sqrt(qa)
        if qc <= 0:
            return total
        disc = qb * qb - 4 * qa * qc
        if qa > 0 and disc >= 0:
            t = (-qb - math.sqrt(disc)) / (2 * qa)
            if 0 <= t <= 1:
                return total + t * seg
        total += seg
    return total


@lru_cache(maxsize=64)
def reachability(nav: NavMap) -> Reachability:
    """Which goals of ``nav`` the start can reach, by how long a way (see the module
    docstring); cached per map."""
    rects = wall_rects(nav)
    free, h = _free_grid(rects, nav.size)
    n = GRID_SIDE
    rows, cols, lens = _graph(free, h)
    start_node = n * n  # one node beyond the grid for the start, one per goal after it
    near, near_len = _near_links(rects, free, h, nav.start)
    goal_nodes = []
    extra_r, extra_c, extra_l = [near * 0 + start_node], [near], [near_len]
    for k, g in enumerate(nav.goals):
        node = start_node + 1 + k
        goal_nodes.append(node)
        cells, cell_len = _goal_links(rects, free, h, g.x, g.y, g.radius)
        extra_r.append(cells)
        extra_c.append(np.full(len(cells), node))
        extra_l.append(cell_len)
    total = n * n + 1 + len(nav.goals)
    graph = coo_matrix(
        (
            np.concatenate([lens, *extra_l]),
            (np.concatenate([rows, *extra_r]), np.concatenate([cols, *extra_c])),
        ),
        shape=(total, total),
    ).tocsr()
    dist, pred = dijkstra(graph, directed=True, indices=start_node, return_predecessors=True)
    lengths: list[float | None] = []
    best: tuple[float, np.ndarray] | None = None
    for k, node in enumerate(goal_nodes):
        if not math.isfinite(dist[node]):
            lengths.append(None)
            continue
        chain = []
        at = int(pred[node])
        while at != start_node and at >= 0:
            chain.append(at)
            at = int(pred[at])
        centres = np.array([_centre(c, n, h) for c in reversed(chain) if c < n * n])
        g = nav.goals[k]
        points = np.vstack([[nav.start], centres.reshape(-1, 2), [[g.x, g.y]]])
        # the last cell is one straight line from the disk (tested, or inside the disk)
        tight = _pull_tight(rects, points[:-1]) if len(centres) else points[:1]
        tight = np.vstack([tight, [[g.x, g.y]]])
        length = _into_disk(tight, np.array([g.x, g.y]), g.radius)
        lengths.append(float(length))
        if best is None or length < best[0]:
            best = (length, tight)
    path = tuple((float(x), float(y)) for x, y in best[1]) if best else ()
    return Reachability(tuple(lengths), h, nav.move_bound, nav.horizon, path)


@dataclass(frozen=True)
class WayField:
    """The length of the way left to the nearest goal from anywhere on a map (see
    :func:`way_field`): ``left`` holds it per grid cell (inf where a cell touches a wall or
    leads to no goal), ``cell`` is the cells' side."""

    left: np.ndarray
    cell: float

    def distance(self, x: float, y: float) -> float:
        """The way left from ``(x, y)``: the least, over the free cells within two cells,
        of the cell's way plus the straight line to its centre (inf when none leads to a
        goal)."""
        return float(self.distances(np.array([[x, y]]))[0])

    def distances(self, points: np.ndarray) -> np.ndarray:
        """:meth:`distance` of each row of ``points`` (N, 2)."""
        n, h = self.left.shape[0], self.cell
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        i = np.clip((p[:, 0] / h).astype(int), 0, n - 1)
        j = np.clip((p[:, 1] / h).astype(int), 0, n - 1)
        k = np.arange(-2, 3)
        ii = np.clip(i[:, None, None] + k[None, :, None], 0, n - 1)
        jj = np.clip(j[:, None, None] + k[None, None, :], 0, n - 1)
        dx = (ii + 0.5) * h - p[:, 0, None, None]
        dy = (jj + 0.5) * h - p[:, 1, None, None]
        return (self.left[ii, jj] + np.hypot(dx, dy)).reshape(len(p), -1).min(axis=1)


@lru_cache(maxsize=64)
def way_field(nav: NavMap) -> WayField:
    """The way left to the nearest goal's disk from every free grid cell of ``nav`` (the
    grid and moves of :func:`reachability`, from the goals back); cached per map."""
    rects = wall_rects(nav)
    free, h = _free_grid(rects, nav.size)
    n = GRID_SIDE
    rows, cols, lens = _graph(free, h)
    source = n * n  # one node beyond the grid, linked to every cell next to a goal's disk
    links = [_goal_links(rects, free, h, g.x, g.y, g.radius) for g in nav.goals]
    cells = np.concatenate([c for c, _ in links])
    graph = coo_matrix(
        (
            np.concatenate([lens, *(length for _, length in links)]),
            (np.concatenate([rows, np.full(len(cells), source)]), np.concatenate([cols, cells])),
        ),
        shape=(n * n + 1, n * n + 1),
    ).tocsr()
    left = dijkstra(graph, directed=True, indices=source)[: n * n].reshape(n, n)
    return WayField(left, h)
