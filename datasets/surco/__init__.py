"""Route instances for the SurCo route-planning problem (docs/architecture.md#problems): the
instance record and its JSON file format (:mod:`~optgym.datasets.surco.routes`) and the
seeded dataset ``generator://routes-v0`` (:mod:`~optgym.datasets.surco.generator`, imported
on first use)."""

from __future__ import annotations

from optgym.datasets.surco.routes import (
    KIND,
    MAX_EDGES,
    MAX_FILE_BYTES,
    MAX_NODES,
    MAX_VALUE,
    RouteInstance,
    load_benchmark_route,
    load_route,
    make_route,
    on_time_probability,
    route_from_bytes,
)
from optgym.problem import lazy_exports

__getattr__ = lazy_exports(__name__, {"RoutesDataset": "generator", "generate_route": "generator"})

__all__ = [
    "KIND",
    "MAX_EDGES",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_VALUE",
    "RouteInstance",
    "RoutesDataset",
    "generate_route",
    "load_benchmark_route",
    "load_route",
    "make_route",
    "on_time_probability",
    "route_from_bytes",
]
