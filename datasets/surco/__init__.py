"""Instances for the SurCo problem (docs/architecture.md#problems), of two kinds: routes (the
record and its JSON file format: :mod:`~optgym.datasets.surco.routes`) and embedding-table
sharding (:mod:`~optgym.datasets.surco.sharding`, with its cost model); reading either
(:mod:`~optgym.datasets.surco.instances`); the seeded datasets ``generator://routes-v0`` and
``generator://sharding-v0`` (:mod:`~optgym.datasets.surco.generator`, imported on first
use)."""

from __future__ import annotations

from optgym.datasets.surco.instances import KINDS, instance_from_bytes, load_benchmark_instance
from optgym.datasets.surco.numbers import MAX_VALUE
from optgym.datasets.surco.routes import (
    KIND,
    MAX_EDGES,
    MAX_FILE_BYTES,
    MAX_NODES,
    RouteInstance,
    load_benchmark_route,
    load_route,
    make_route,
    on_time_probability,
    route_from_bytes,
)
from optgym.datasets.surco.sharding import (
    ShardingInstance,
    greedy_placement,
    make_sharding,
    placement_costs,
)
from optgym.problem import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "RoutesDataset": "generator",
        "ShardingDataset": "generator",
        "generate_route": "generator",
        "generate_sharding": "generator",
    },
)

__all__ = [
    "KIND",
    "KINDS",
    "MAX_EDGES",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_VALUE",
    "RouteInstance",
    "RoutesDataset",
    "ShardingDataset",
    "ShardingInstance",
    "generate_route",
    "generate_sharding",
    "greedy_placement",
    "instance_from_bytes",
    "load_benchmark_instance",
    "load_benchmark_route",
    "load_route",
    "make_route",
    "make_sharding",
    "on_time_probability",
    "placement_costs",
    "route_from_bytes",
]
