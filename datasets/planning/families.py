"""Seeded families of hard 2D navigation maps, each with the train, validation and test seeds
of every generator dataset: ``generator://nav2d-<family>-v0/<seed>``.

Every family puts a wall across the straight line from the start to the goal, so a planner
that follows the distance to the goal greedily is stuck. The families:

* ``utrap``: a U of random width and depth in one of 4 orientations (and mirrored), the
  start inside its cup or in front of its opening (the bug trap), the goal behind its back;
* ``spiral``: a square spiral wall of 5 to 8 pieces with a corridor 0.9 to 1.4 wide, the
  start at its centre, the goal outside: the short way is walled, the way out winds;
* ``rooms``: 2 x 2 to 3 x 3 rooms joined by doors 0.6 to 1.0 wide along a random spanning
  tree of the rooms, the start and goal in rooms as far apart as the tree allows;
* ``corridor``: 2 or 3 bars across the world, each leaving a door 0.6 to 1.2 wide at
  alternate ends, the start below them and the goal above;
* ``maze``: a random spanning-tree maze of 4 x 4, 5 x 5 or 10 x 10 cells, the start and
  the goal in cells far apart in the maze.

Each map is 10 x 10 with 0.2-thick walls, move bound 0.5 and horizon 100, and is accepted
only when :func:`~optgym.datasets.planning.paths.reachability` finds a way to the goal of
at most 40 (80 moves: room to spare in the horizon) and the straight line is blocked; else
the generator draws again from the same random stream. Reproducibility: every coordinate
is an integer number of tenths drawn from ``numpy.random.default_rng(seed)``, so a seed
gives the same bytes on any machine.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import ClassVar

import numpy as np

from optgym.datasets.planning.maps import Goal, NavMap
from optgym.datasets.planning.paths import reachability, segments_clear, wall_rects
from optgym.datasets.seeded import SeededDataset

LICENSE = "MIT (OptGym); generated"
W = 100  # the world's side in tenths
T = 2  # wall thickness in tenths
MAX_LENGTH = 40.0  # the longest way accepted (world units): 80 moves of the horizon's 100
ATTEMPTS = 200

Rect = tuple[int, int, int, int]
Point = tuple[int, int]


class _Redraw(Exception):
    """A draw that cannot be placed: the generator draws again."""


def _between(rng: np.random.Generator, lo: int, hi: int) -> int:
    """An integer in ``[lo, hi)``; :class:`_Redraw` when that is empty."""
    if lo >= hi:
        raise _Redraw
    return int(rng.integers(lo, hi))


def _rotate(p: Point, turns: int, mirror: bool) -> Point:
    x, y = p
    if mirror:
        x = W - x
    for _ in range(turns):
        x, y = W - y, x
    return x, y


def _rotate_rect(r: Rect, turns: int, mirror: bool) -> Rect:
    (ax, ay), (bx, by) = _rotate(r[:2], turns, mirror), _rotate(r[2:], turns, mirror)
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def _bar(a: Point, b: Point) -> Rect:
    """A wall T thick along the axis-parallel line from ``a`` to ``b``, its ends reaching
    T / 2 past them (so that bars meeting at a corner close it)."""
    h = T // 2
    return min(a[0], b[0]) - h, min(a[1], b[1]) - h, max(a[0], b[0]) + h, max(a[1], b[1]) + h


def _clip(r: Rect) -> Rect:
    return max(r[0], 0), max(r[1], 0), min(r[2], W), min(r[3], W)


def _accepted(
    name: str, walls: list[Rect], start: Point, goal: Point, rng: np.random.Generator
) -> NavMap | None:
    """The map in a random orientation, if it is valid, solvable within :data:`MAX_LENGTH`
    and its straight line is blocked; else None."""
    turns, mirror = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
    rects = [_clip(_rotate_rect(r, turns, mirror)) for r in walls]
    rects = [r for r in rects if r[0] < r[2] or r[1] < r[3]]
    s, g = _rotate(start, turns, mirror), _rotate(goal, turns, mirror)
    try:
        nav = NavMap(
            name,
            W / 10,
            tuple(tuple(v / 10 for v in r) for r in rects),  # type: ignore[misc]
            (s[0] / 10, s[1] / 10),
            (Goal(g[0] / 10, g[1] / 10),),
        )
    except ValueError:  # the start or the goal in a wall
        return None
    line = np.array([nav.start]), np.array([[g[0] / 10, g[1] / 10]])
    if segments_clear(wall_rects(nav), *line)[0]:
        return None
    found = reachability(nav).length
    return nav if found is not None and found <= MAX_LENGTH else None


def _utrap(rng: np.random.Generator) -> tuple[list[Rect], Point, Point]:
    # opening towards -x, back wall at x = back; the cup spans y in [cy - w/2, cy + w/2]
    w, depth = int(rng.integers(30, 61)), int(rng.integers(25, 51))
    inside = bool(rng.integers(0, 2))
    behind = int(rng.integers(8, 21))
    before = 0 if inside else int(rng.integers(10, 26))
    back = _between(rng, depth + before + 6, W - T - behind - 4)
    cy = _between(rng, w // 2 + 8, W - w // 2 - 8)
    lo, hi = cy - w // 2, cy + w // 2
    walls = [
        _bar((back, lo), (back, hi)),
        _bar((back - depth, lo), (back, lo)),
        _bar((back - depth, hi), (back, hi)),
    ]
    y = cy + int(rng.integers(-(w // 4), w // 4 + 1))
    if inside:
        start = (back - _between(rng, 6, depth - 5), y)
    else:
        start = (back - depth - before, cy + int(rng.integers(-(w // 4), w // 4 + 1)))
    goal = (back + T // 2 + behind, y + int(rng.integers(-5, 6)))
    return walls, start, goal


def _spiral(rng: np.random.Generator) -> tuple[list[Rect], Point, Point]:
    c, pieces = int(rng.integers(9, 15)), int(rng.integers(5, 9))
    points: list[Point] = [(0, 0)]
    directions = ((1, 0), (0, 1), (-1, 0), (0, -1))
    for k in range(pieces):
        dx, dy = directions[k % 4]
        length = c * (k // 2 + 1)
        x, y = points[-1]
        points.append((x + dx * length, y + dy * length))
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    # place the spiral's box inside the world, 12 tenths from the border at least
    ox = _between(rng, 12 - min(xs), W - 12 - max(xs) + 1)
    oy = _between(rng, 12 - min(ys), W - 12 - max(ys) + 1)
    shifted = [(x + ox, y + oy) for x, y in points]
    walls = [_bar(a, b) for a, b in zip(shifted[:-1], shifted[1:], strict=True)]
    start = (ox + c // 2, oy + c // 2)
    # the goal: outside the spiral's box, at least 8 tenths from it, inside the world
    box = (min(xs) + ox, min(ys) + oy, max(xs) + ox, max(ys) + oy)
    gx = int(rng.integers(6, W - 5))
    gy = int(rng.integers(6, W - 5))
    side = int(rng.integers(0, 4))
    if side == 0:
        gx = _between(rng, box[2] + 8, W - 5)
    elif side == 1:
        gy = _between(rng, box[3] + 8, W - 5)
    elif side == 2:
        gx = _between(rng, 6, box[0] - 7)
    else:
        gy = _between(rng, 6, box[1] - 7)
    return walls, start, (gx, gy)


def _tree_edges(
    rng: np.random.Generator, rows: int, cols: int
) -> set[tuple[tuple[int, int], tuple[int, int]]]:
    """A random spanning tree of the rows x cols grid graph (randomized depth-first)."""
    seen = {(0, 0)}
    stack = [(0, 0)]
    edges: set[tuple[tuple[int, int], tuple[int, int]]] = set()
    while stack:
        i, j = stack[-1]
        around = [(i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)]
        nexts = [(a, b) for a, b in around if 0 <= a < rows and 0 <= b < cols]
        nexts = [c for c in nexts if c not in seen]
        if not nexts:
            stack.pop()
            continue
        cell = nexts[int(rng.integers(0, len(nexts)))]
        seen.add(cell)
        edges.add(tuple(sorted(((i, j), cell))))  # type: ignore[arg-type]
        stack.append(cell)
    return edges


def _tree_distances(
    edges: set[tuple[tuple[int, int], tuple[int, int]]], start: tuple[int, int]
) -> dict[tuple[int, int], int]:
    links: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for a, b in edges:
        links.setdefault(a, []).append(b)
        links.setdefault(b, []).append(a)
    dist = {start: 0}
    queue = deque([start])
    while queue:
        a = queue.popleft()
        for b in links.get(a, []):
            if b not in dist:
                dist[b] = dist[a] + 1
                queue.append(b)
    return dist


def _grid_walls(
    rng: np.random.Generator, n_rows: int, n_cols: int, door: tuple[int, int] | None
) -> tuple[list[Rect], set[tuple[tuple[int, int], tuple[int, int]]], list[int], list[int]]:
    """Walls between the cells of an n_rows x n_cols grid over the world: solid where two
    cells are not joined by the random spanning tree; where they are, open (``door`` None)
    or a wall with a door of width in ``door`` at a random place along it."""
    xs = [round(W * k / n_cols) for k in range(n_cols + 1)]
    ys = [round(W * k / n_rows) for k in range(n_rows + 1)]
    tree = _tree_edges(rng, n_rows, n_cols)
    walls: list[Rect] = []

    def split(a: Point, b: Point, joined: bool) -> None:
        if joined and door is None:
            return
        if not joined:
            walls.append(_bar(a, b))
            return
        span = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        width = int(rng.integers(door[0], door[1] + 1))
        at = int(rng.integers(6, span - width - 5))
        ux, uy = (b[0] - a[0]) // span, (b[1] - a[1]) // span
        p = (a[0] + ux * at, a[1] + uy * at)
        q = (p[0] + ux * width, p[1] + uy * width)
        walls.extend([_bar(a, p), _bar(q, b)])
        walls[-2] = _shorten(walls[-2], ux, uy, end=True)
        walls[-1] = _shorten(walls[-1], ux, uy, end=False)

    for i in range(n_rows):
        for j in range(n_cols):
            if j + 1 < n_cols:  # the wall between (i, j) and (i, j + 1): x = xs[j + 1]
                split((xs[j + 1], ys[i]), (xs[j + 1], ys[i + 1]), ((i, j), (i, j + 1)) in tree)
            if i + 1 < n_rows:
                split((xs[j], ys[i + 1]), (xs[j + 1], ys[i + 1]), ((i, j), (i + 1, j)) in tree)
    return walls, tree, xs, ys


def _shorten(r: Rect, ux: int, uy: int, end: bool) -> Rect:
    """A bar's end at a door kept flush with the door (no T / 2 overhang into it)."""
    h = T // 2
    x0, y0, x1, y1 = r
    if end:
        return (x0, y0, x1 - h * ux, y1 - h * uy)
    return (x0 + h * ux, y0 + h * uy, x1, y1)


def _cell_point(
    rng: np.random.Generator, cell: tuple[int, int], xs: list[int], ys: list[int], spread: bool
) -> Point:
    i, j = cell
    if not spread:
        return (xs[j] + xs[j + 1]) // 2, (ys[i] + ys[i + 1]) // 2
    return (
        int(rng.integers(xs[j] + 8, xs[j + 1] - 7)),
        int(rng.integers(ys[i] + 8, ys[i + 1] - 7)),
    )


def _rooms(rng: np.random.Generator) -> tuple[list[Rect], Point, Point]:
    rows, cols = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    walls, tree, xs, ys = _grid_walls(rng, rows, cols, door=(6, 10))
    first = (int(rng.integers(0, rows)), int(rng.integers(0, cols)))
    dist = _tree_distances(tree, first)
    far = max(dist.values())
    ends = sorted(c for c, d in dist.items() if d == far)
    last = ends[int(rng.integers(0, len(ends)))]
    return walls, _cell_point(rng, first, xs, ys, True), _cell_point(rng, last, xs, ys, True)


def _corridor(rng: np.random.Generator) -> tuple[list[Rect], Point, Point]:
    bars = int(rng.integers(2, 4))
    gap = W // (bars + 1)
    walls = []
    for k in range(bars):
        y = gap * (k + 1) + int(rng.integers(-3, 4))
        door = int(rng.integers(6, 13))
        if k % 2 == 0:
            walls.append((0, y - T // 2, W - door, y + T // 2))
        else:
            walls.append((door, y - T // 2, W, y + T // 2))
    start = (int(rng.integers(8, W - 7)), int(rng.integers(6, gap - 6)))
    goal = (int(rng.integers(8, W - 7)), int(rng.integers(W - gap + 6, W - 5)))
    return walls, start, goal


def _maze(rng: np.random.Generator) -> tuple[list[Rect], Point, Point]:
    n = (4, 5, 10)[int(rng.integers(0, 3))]
    walls, tree, xs, ys = _grid_walls(rng, n, n, door=None)
    first = (int(rng.integers(0, n)), int(rng.integers(0, n)))
    dist = _tree_distances(tree, first)
    cell = W / n / 10  # world units per cell
    fits = {c: d for c, d in dist.items() if d * cell <= 0.75 * MAX_LENGTH}
    far = max(fits.values())
    ends = sorted(c for c, d in fits.items() if d >= far - 1)
    last = ends[int(rng.integers(0, len(ends)))]
    return walls, _cell_point(rng, first, xs, ys, False), _cell_point(rng, last, xs, ys, False)


FAMILIES = {
    "utrap": _utrap,
    "spiral": _spiral,
    "rooms": _rooms,
    "corridor": _corridor,
    "maze": _maze,
}


def family_map(family: str, seed: int) -> NavMap:
    """The map of ``family`` (a key of :data:`FAMILIES`) for ``seed``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown map family {family!r}; allowed: {', '.join(FAMILIES)}")
    rng = np.random.default_rng(seed)
    for _ in range(ATTEMPTS):
        try:
            walls, start, goal = FAMILIES[family](rng)
        except _Redraw:
            continue
        nav = _accepted(f"{family}-{seed}", walls, start, goal, rng)
        if nav is not None:
            return nav
    raise RuntimeError(f"{family} seed {seed}: no acceptable map in {ATTEMPTS} draws")


def _provenance(family: str) -> str:
    return (
        f"optgym.datasets.planning.families.family_map({family!r}, seed): integer draws "
        "(tenths) from numpy.random.default_rng(seed), a random orientation, kept when "
        "reachability() finds a way of at most 40 and the straight line is blocked; each "
        "file is NavMap.to_json()."
    )


class _FamilyDataset(SeededDataset):
    family: ClassVar[str] = ""
    suffix = ".json"
    recipe_modules = ("optgym.datasets.planning.maps", "optgym.datasets.planning.paths")
    license = LICENSE
    references = ("https://arxiv.org/abs/2106.10544",)

    def generate(self, seed: int, workdir: Path) -> bytes:
        return family_map(self.family, seed).to_json().encode()


class Nav2dUTrapDataset(_FamilyDataset):
    """``generator://nav2d-utrap-v0/<seed>``: U-traps."""

    family = "utrap"
    provenance = _provenance("utrap")
    name = "nav2d-utrap-v0"
    description = (
        "U-traps on a 10 x 10 world: a U 3-6 wide and 2.5-5 deep in any orientation, the "
        "start inside its cup or before its opening, the goal behind its back."
    )


class Nav2dSpiralDataset(_FamilyDataset):
    """``generator://nav2d-spiral-v0/<seed>``: spirals."""

    family = "spiral"
    provenance = _provenance("spiral")
    name = "nav2d-spiral-v0"
    description = (
        "Square spirals on a 10 x 10 world: 5-8 wall pieces, a corridor 0.9-1.4 wide, the "
        "start at the centre and the goal outside."
    )


class Nav2dRoomsDataset(_FamilyDataset):
    """``generator://nav2d-rooms-v0/<seed>``: rooms joined by narrow doors."""

    family = "rooms"
    provenance = _provenance("rooms")
    name = "nav2d-rooms-v0"
    description = (
        "2 x 2 to 3 x 3 rooms on a 10 x 10 world joined by doors 0.6-1.0 wide along a "
        "random spanning tree; the start and goal in rooms farthest apart in that tree."
    )


class Nav2dCorridorDataset(_FamilyDataset):
    """``generator://nav2d-corridor-v0/<seed>``: corridors behind narrow doors."""

    family = "corridor"
    provenance = _provenance("corridor")
    name = "nav2d-corridor-v0"
    description = (
        "Zig-zag corridors on a 10 x 10 world: 2 or 3 bars across it, each with a door "
        "0.6-1.2 wide at alternate ends; the start below the bars, the goal above."
    )


class Nav2dMazeDataset(_FamilyDataset):
    """``generator://nav2d-maze-v0/<seed>``: random mazes of several cell sizes."""

    family = "maze"
    provenance = _provenance("maze")
    name = "nav2d-maze-v0"
    description = (
        "Random spanning-tree mazes on a 10 x 10 world with 4 x 4, 5 x 5 or 10 x 10 cells; "
        "start and goal at cell centres far apart in the maze."
    )


FAMILY_DATASETS = (
    Nav2dUTrapDataset,
    Nav2dSpiralDataset,
    Nav2dRoomsDataset,
    Nav2dCorridorDataset,
    Nav2dMazeDataset,
)
