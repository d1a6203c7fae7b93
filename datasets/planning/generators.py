"""2D navigation datasets: fixed maps and seeded random obstacle fields.

``benchmark://nav2d-v0/<map>`` holds seven hand-made 10 x 10 maps (after the LaP3 paper's
navigation tasks, Yang et al., NeurIPS 2021): ``open``, ``wall``, ``bug-trap``, ``maze``,
``four-rooms``, ``two-goals`` and ``maze-hard``. On every map but ``open`` (and
``two-goals``, where it reaches the nearer, cheaper goal) the straight line from start to
goal runs into a wall and stops there, so a plan that follows the distance to the goal
greedily gets stuck; the bug trap (a U facing the start with the goal behind it) and the
maze (a 5 x 5 grid of 2 x 2 cells whose way in first leads away from the goal, past a
pocket under the goal and a dead-end branch beside it) are the traps of the paper.
``maze-hard`` is a 10 x 10 grid maze with one-unit corridors and eight turns.

``generator://nav2d-random-v0/<seed>`` draws 4 to 12 random rectangles, a start and a goal
at least 5 apart, both free and connected (breadth-first search on a 0.2 grid whose walls
are inflated by 0.15, so the robot always has a corridor at least 0.3 wide).

A benchmark's file is its :class:`~optgym.datasets.planning.maps.NavMap` as canonical JSON.
Reproducibility: the generator draws only integers from ``numpy.random.default_rng(seed)``
and places everything on a 0.1 grid, so a seed gives the same bytes on any machine.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path

import numpy as np

from optgym.datasets.dataset import Benchmark, Dataset
from optgym.datasets.planning.maps import Goal, NavMap, Wall, parse_grid
from optgym.datasets.seeded import SeededDataset

LICENSE = "MIT (OptGym); generated"
FIXED_NAME = "nav2d-v0"
RANDOM_NAME = "nav2d-random-v0"
LAP3_PAPER = "https://arxiv.org/abs/2106.10544"

SIZE = 10.0
THICK = 0.2  # wall thickness of the hand-made maps

# 2 x 2 cells on the 10 x 10 world: the straight way up from the start ends in a pocket
# under the goal, the right-hand branch in a dead end beside it; the way in is the left
# corridor, which first leads away from the goal.
MAZE_GRID = """\
..G#.
.###.
.#.#.
.#...
..S#.
"""

# 1 x 1 cells: corridors one unit wide and a way with eight turns (no planner here
# reaches its goal within 2000 evaluations; kept as the hard case).
MAZE_HARD_GRID = """\
G..#......
##.#.####.
...#.#....
.###.#.###
.....#....
####.####.
.....#....
.###.#.##.
.#...#..#.
S#.###.##.
"""


def grid_map(text: str, name: str, size: float = SIZE) -> NavMap:
    """A text-grid map (``optgym.datasets.planning.maps``) scaled to a world of side ``size``."""
    grid = parse_grid(text, name)
    k = size / grid.size
    return NavMap(
        name,
        size,
        tuple((x0 * k, y0 * k, x1 * k, y1 * k) for x0, y0, x1, y1 in grid.walls),
        (grid.start[0] * k, grid.start[1] * k),
        tuple(Goal(g.x * k, g.y * k, g.radius, g.payoff) for g in grid.goals),
    )


def _open() -> NavMap:
    return NavMap("open", SIZE, (), (1.0, 1.0), (Goal(9.0, 9.0),))


def _wall() -> NavMap:
    # one wall across the straight line, open at the top
    return NavMap("wall", SIZE, ((4.9, 0.0, 5.1, 7.0),), (1.5, 3.0), (Goal(8.5, 3.0),))


def _bug_trap() -> NavMap:
    # a U open towards the start; the goal sits right behind its back wall, 1.0 from the
    # inside of it (with 1.7, CMA-ES got out of the trap in 5 of 10 seeds at 2000 evaluations)
    walls = (
        (6.8, 2.5, 6.8 + THICK, 7.5),  # back
        (3.5, 2.5, 7.0, 2.5 + THICK),  # lower arm
        (3.5, 7.5 - THICK, 7.0, 7.5),  # upper arm
    )
    return NavMap("bug-trap", SIZE, walls, (1.5, 5.0), (Goal(7.8, 5.0),))


def _maze() -> NavMap:
    return grid_map(MAZE_GRID, "maze")


def _maze_hard() -> NavMap:
    return grid_map(MAZE_HARD_GRID, "maze-hard")


def _four_rooms() -> NavMap:
    # a central cross with one unit-wide door in each arm, none near the centre
    lo, hi = 5.0 - THICK / 2, 5.0 + THICK / 2
    walls = (
        (lo, 0.0, hi, 1.0),
        (lo, 2.0, hi, 8.0),
        (lo, 9.0, hi, SIZE),
        (0.0, lo, 1.0, hi),
        (2.0, lo, 8.0, hi),
        (9.0, lo, SIZE, hi),
    )
    return NavMap("four-rooms", SIZE, walls, (2.5, 2.5), (Goal(7.5, 7.5),))


def _two_goals() -> NavMap:
    # the near goal pays half; the far one is behind a wall and pays in full
    goals = (Goal(1.5, 2.0, payoff=0.5), Goal(5.0, 8.5, payoff=1.0))
    return NavMap("two-goals", SIZE, ((2.0, 5.0, 8.0, 5.0 + THICK),), (5.0, 2.0), goals)


FIXED_MAPS = {
    "open": _open,
    "wall": _wall,
    "bug-trap": _bug_trap,
    "maze": _maze,
    "four-rooms": _four_rooms,
    "two-goals": _two_goals,
    "maze-hard": _maze_hard,
}


def fixed_map(name: str) -> NavMap:
    """The ``nav2d-v0`` map called ``name``."""
    try:
        return FIXED_MAPS[name]()
    except KeyError:
        raise ValueError(
            f"unknown map {name!r} in {FIXED_NAME}; allowed: {', '.join(FIXED_MAPS)}"
        ) from None


# --------------------------------------------------------------------------- random maps

GRID_STEP = 0.2  # BFS cell side
MARGIN = 0.15  # walls are inflated by this much for the connectivity check
MIN_SEPARATION = 5.0


def free_cells(walls: tuple[Wall, ...], size: float, step: float, margin: float) -> np.ndarray:
    """Boolean grid ``[i, j]`` (x index, y index): whether the cell of side ``step`` at
    ``(i * step, j * step)`` stays clear of every wall inflated by ``margin``."""
    n = int(round(size / step))
    lo = np.arange(n) * step
    hi = lo + step
    free = np.ones((n, n), dtype=bool)
    for x0, y0, x1, y1 in walls:
        bx = (lo < x1 + margin) & (hi > x0 - margin)
        by = (lo < y1 + margin) & (hi > y0 - margin)
        free &= ~(bx[:, None] & by[None, :])
    return free


def grid_distance(free: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> int | None:
    """Steps of the shortest 4-connected path of free cells from ``a`` to ``b``, or None."""
    if not (free[a] and free[b]):
        return None
    n0, n1 = free.shape
    dist = {a: 0}
    queue = deque([a])
    while queue:
        cell = queue.popleft()
        if cell == b:
            return dist[cell]
        i, j = cell
        for nxt in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if 0 <= nxt[0] < n0 and 0 <= nxt[1] < n1 and free[nxt] and nxt not in dist:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return None


def _cell(point: tuple[float, float]) -> tuple[int, int]:
    return (int(point[0] // GRID_STEP), int(point[1] // GRID_STEP))


def random_map(seed: int) -> NavMap:
    """The ``nav2d-random-v0`` map of ``seed``: rectangles on a 0.1 grid, start and goal
    free, at least :data:`MIN_SEPARATION` apart and connected."""
    rng = np.random.default_rng(seed)
    horizon, bound = 100, 0.5
    tenth = int(round(SIZE * 10))
    while True:
        walls: list[Wall] = []
        for _ in range(int(rng.integers(4, 13))):
            w, h = int(rng.integers(2, 31)), int(rng.integers(2, 31))
            if rng.integers(0, 2):  # half of them are thin bars
                w, h = (2, h + 10) if rng.integers(0, 2) else (w + 10, 2)
            w, h = min(w, tenth - 2), min(h, tenth - 2)
            x0, y0 = int(rng.integers(0, tenth - w + 1)), int(rng.integers(0, tenth - h + 1))
            walls.append((x0 / 10, y0 / 10, (x0 + w) / 10, (y0 + h) / 10))
        free = free_cells(tuple(walls), SIZE, GRID_STEP, MARGIN)
        for _ in range(20):
            s = (int(rng.integers(3, tenth - 2)) / 10, int(rng.integers(3, tenth - 2)) / 10)
            g = (int(rng.integers(3, tenth - 2)) / 10, int(rng.integers(3, tenth - 2)) / 10)
            if math.dist(s, g) < MIN_SEPARATION:
                continue
            steps = grid_distance(free, _cell(s), _cell(g))
            # reachable with room to spare: a grid path is at most sqrt(2) times too long
            if steps is not None and steps * GRID_STEP <= 0.8 * horizon * bound:
                return NavMap(f"random-{seed}", SIZE, tuple(walls), s, (Goal(*g),), bound, horizon)


# --------------------------------------------------------------------------- datasets


class Nav2dDataset(Dataset):
    """``benchmark://nav2d-v0/<map>``: the hand-made maps, all in the test split."""

    name = FIXED_NAME
    description = (
        "Hand-made 2D navigation maps, 10 x 10 with 0.2-thick walls, move bound 0.5, "
        "horizon 100: open (no walls), wall (one wall across the straight line), "
        "bug-trap (a U facing the start, goal behind it), maze (a 5 x 5 grid maze of 2 x 2 "
        "cells with a pocket under the goal), four-rooms (a cross with four doors), "
        "two-goals (a near goal paying 0.5 and a far goal behind a wall paying 1.0), "
        "maze-hard (a 10 x 10 grid maze, one-unit corridors). Every map is in the "
        "test split."
    )
    license = LICENSE
    provenance = (
        "Written by hand in optgym.datasets.planning.generators (FIXED_MAPS; the mazes "
        "are MAZE_GRID and MAZE_HARD_GRID in the text grid format, scaled to 10 x 10); "
        "each file is NavMap.to_json(). Designed after the navigation tasks of the "
        "LaP3 paper."
    )
    references = (LAP3_PAPER,)

    def benchmark_names(self, split: str | None = None) -> list[str]:
        return list(FIXED_MAPS) if split in (None, "test") else []

    def benchmark(self, uri: str) -> Benchmark:
        name = self.check_uri(uri).path
        return self.stored_benchmark(uri, name, fixed_map(name).to_json().encode(), ".json")


class Nav2dRandomDataset(SeededDataset):
    """``generator://nav2d-random-v0/<seed>``: seeded random rectangle fields."""

    suffix = ".json"
    recipe_modules = ("optgym.datasets.planning.maps",)

    name = RANDOM_NAME
    description = (
        "Random 10 x 10 obstacle fields: 4 to 12 axis-aligned rectangles (half of them "
        "thin bars) on a 0.1 grid, a start and a goal (radius 0.5) at least 5 apart, "
        "free and connected; move bound 0.5, horizon 100. Seed splits as every "
        "generator dataset."
    )
    license = LICENSE
    provenance = (
        "optgym.datasets.planning.generators.random_map(seed): integer draws from "
        "numpy.random.default_rng(seed); connectivity by breadth-first search on a "
        "0.2 grid with walls inflated by 0.15; each file is NavMap.to_json()."
    )
    references = (LAP3_PAPER,)

    def generate(self, seed: int, workdir: Path) -> bytes:
        return random_map(seed).to_json().encode()
