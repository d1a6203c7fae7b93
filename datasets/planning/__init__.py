"""2D navigation maps for path planning (docs/architecture.md#problems): the map record and its JSON
and text grid formats (:mod:`~optgym.datasets.planning.maps`), and the datasets ``nav2d-v0`` (fixed
maps) and ``nav2d-random-v0`` (seeded random obstacles)."""

from __future__ import annotations

from optgym.datasets.dataset import Benchmark
from optgym.datasets.planning.generators import (
    FIXED_MAPS,
    FIXED_NAME,
    RANDOM_NAME,
    Nav2dDataset,
    Nav2dRandomDataset,
    fixed_map,
    random_map,
)
from optgym.datasets.planning.maps import (
    FORMAT,
    MAX_GOALS,
    Goal,
    NavMap,
    load_map,
    map_from_bytes,
    parse_grid,
    read_map_bytes,
)
from optgym.datasets.planning.paths import Reachability, reachability

__all__ = [
    "FIXED_MAPS",
    "FIXED_NAME",
    "FORMAT",
    "MAX_GOALS",
    "RANDOM_NAME",
    "Goal",
    "Nav2dDataset",
    "Nav2dRandomDataset",
    "NavMap",
    "Reachability",
    "fixed_map",
    "load_benchmark_map",
    "load_map",
    "parse_grid",
    "random_map",
    "reachability",
]


def load_benchmark_map(benchmark: Benchmark) -> NavMap:
    """The map a navigation benchmark's file holds (text grid for ``.txt``, else JSON),
    its size checked before it is read and its bytes against the benchmark's sha256."""
    return map_from_bytes(read_map_bytes(benchmark), benchmark.path)
