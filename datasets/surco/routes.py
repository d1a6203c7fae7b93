"""Route instances of the SurCo route-planning problem: a directed graph whose edges have
independent normal travel times, a source, a target and a deadline; the objective of a path
is the probability that it arrives by the deadline.

File format (``.json``, UTF-8; what ``generator://routes-v0`` writes and what
``file:///path/instance.json`` names)::

    {
      "kind": "route",
      "nodes": N,                                 node ids are 0 .. N-1
      "edges": [[u, v, mean, variance], ...],     directed u -> v; travel time ~ Normal
      "source": s,
      "target": t,
      "deadline": d
    }

Every key is required and no other is allowed. ``u``, ``v``, ``s``, ``t`` and ``N`` are
integers; ``mean``, ``variance`` and ``d`` numbers. Limits (a file outside them is refused
with a one-line ``ValueError`` naming the file and what is wrong, never quoting it): at most
:data:`MAX_FILE_BYTES` bytes, JSON nested at most :data:`MAX_JSON_DEPTH` deep; 2 to
:data:`MAX_NODES` nodes; 1 to :data:`MAX_EDGES` edges, each with both ends in ``[0, N)``;
means and variances finite, ``>= 0`` (non-negative means: no negative cycles, so a shortest
path is well defined) and at most :data:`MAX_VALUE`; ``s != t``, both in ``[0, N)``; a
deadline finite, ``> 0`` and at most :data:`MAX_VALUE`; and at least one path from ``s`` to
``t``. Parallel edges and self-loops are allowed (a self-loop is never on a shortest path).
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from optgym.datasets.dataset import Benchmark
from optgym.datasets.files import parse_json_object, read_limited
from optgym.datasets.surco.numbers import check_keys, checked_integer, checked_number

KIND = "route"
KEYS = ("kind", "nodes", "edges", "source", "target", "deadline")
MAX_FILE_BYTES = 8 << 20  # 100,000 edges of ~40 characters each fit in 4 MiB
MAX_JSON_DEPTH = 3  # the object, the edge list, an edge
MAX_NODES = 100_000
MAX_EDGES = 100_000


def on_time_probability(mean: float, variance: float, deadline: float) -> float:
    """``P(T <= deadline)`` for a travel time ``T ~ Normal(mean, variance)``:
    ``Phi((deadline - mean) / sqrt(variance))``; for a variance of 0, 1.0 when
    ``mean <= deadline`` and 0.0 otherwise."""
    if variance <= 0.0:
        return 1.0 if mean <= deadline else 0.0
    z = (deadline - mean) / math.sqrt(variance)
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@dataclass(frozen=True, eq=False)
class RouteInstance:
    """One route instance (see the module docstring): ``nodes``; the edges as arrays
    ``tails``, ``heads`` (int64) and ``means``, ``variances`` (float64, travel-time units and
    their squares), edge ``i`` going ``tails[i] -> heads[i]``; ``source``, ``target`` and
    ``deadline``. Build it with :func:`route_from_bytes` (checked) or :func:`make_route`."""

    nodes: int
    tails: np.ndarray
    heads: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    source: int
    target: int
    deadline: float

    @property
    def n_edges(self) -> int:
        return len(self.tails)

    @cached_property
    def out_edges(self) -> tuple[list[int], list[int]]:
        """``(offsets, order)``: the edges leaving node ``u`` are
        ``order[offsets[u]:offsets[u + 1]]``, in increasing edge index."""
        order = np.argsort(self.tails, kind="stable")
        offsets = np.searchsorted(self.tails[order], np.arange(self.nodes + 1))
        return offsets.tolist(), order.tolist()

    def path_moments(self, path: Sequence[int]) -> tuple[float, float]:
        """The mean and variance of the travel time along ``path`` (edge indices)."""
        return (
            math.fsum(float(self.means[e]) for e in path),
            math.fsum(float(self.variances[e]) for e in path),
        )

    def probability(self, path: Sequence[int]) -> float:
        """The on-time probability of ``path`` (edge indices): :func:`on_time_probability`
        of its mean and variance and the deadline."""
        mean, variance = self.path_moments(path)
        return on_time_probability(mean, variance, self.deadline)

    def reachable(self) -> bool:
        """Whether some path leads from ``source`` to ``target``."""
        offsets, order = self.out_edges
        heads = self.heads.tolist()
        seen = {self.source}
        queue = deque([self.source])
        while queue:
            u = queue.popleft()
            for k in range(offsets[u], offsets[u + 1]):
                v = heads[order[k]]
                if v == self.target:
                    return True
                if v not in seen:
                    seen.add(v)
                    queue.append(v)
        return False

    def to_dict(self) -> dict[str, Any]:
        """The instance in the file format (plain JSON data)."""
        edges = zip(self.tails.tolist(), self.heads.tolist(), self.means.tolist(),
                    self.variances.tolist(), strict=True)  # fmt: skip
        return {
            "kind": KIND,
            "nodes": self.nodes,
            "edges": [list(e) for e in edges],
            "source": self.source,
            "target": self.target,
            "deadline": self.deadline,
        }

    def to_json(self) -> str:
        """The instance as file text: one edge a line."""
        d = self.to_dict()
        edges = ",\n    ".join(json.dumps(e) for e in d["edges"])
        head = ", ".join(f"{json.dumps(k)}: {json.dumps(d[k])}" for k in ("kind", "nodes"))
        tail = ", ".join(f"{json.dumps(k)}: {json.dumps(d[k])}"
                         for k in ("source", "target", "deadline"))  # fmt: skip
        return f'{{{head},\n  "edges": [\n    {edges}\n  ],\n  {tail}}}\n'


def make_route(
    nodes: int,
    edges: Sequence[Sequence[float]],
    source: int,
    target: int,
    deadline: float,
    what: str = "the route",
) -> RouteInstance:
    """A checked :class:`RouteInstance` from plain values (``edges`` as ``[u, v, mean,
    variance]``); ``ValueError`` naming ``what`` and the first thing wrong (never quoting a
    value)."""
    nodes = checked_integer(nodes, f"{what}: 'nodes'", 2, MAX_NODES)
    if not isinstance(edges, (list, tuple)):
        raise ValueError(f"{what}: 'edges' must be a list of [u, v, mean, variance]")
    if not 1 <= len(edges) <= MAX_EDGES:
        raise ValueError(
            f"{what} has {len(edges)} edges; 1 to {MAX_EDGES} allowed "
            "(optgym.datasets.surco.routes.MAX_EDGES)"
        )
    tails, heads, means, variances = [], [], [], []
    for i, edge in enumerate(edges):
        if not isinstance(edge, (list, tuple)) or len(edge) != 4:
            raise ValueError(f"{what}: edge {i} must be [u, v, mean, variance] (four numbers)")
        u, v, mean, variance = edge
        tails.append(checked_integer(u, f"{what}: edge {i}'s tail u", 0, nodes - 1))
        heads.append(checked_integer(v, f"{what}: edge {i}'s head v", 0, nodes - 1))
        means.append(checked_number(mean, f"{what}: edge {i}'s mean", negative="means must be >= 0 "
                            "(non-negative travel times: no negative cycles)"))  # fmt: skip
        variances.append(checked_number(variance, f"{what}: edge {i}'s variance",
                                negative="variances must be >= 0"))  # fmt: skip
    source = checked_integer(source, f"{what}: 'source'", 0, nodes - 1)
    target = checked_integer(target, f"{what}: 'target'", 0, nodes - 1)
    if source == target:
        raise ValueError(f"{what}: 'source' and 'target' are the same node; they must differ")
    deadline = checked_number(deadline, f"{what}: 'deadline'", negative="the deadline must be > 0")
    if deadline <= 0:
        raise ValueError(f"{what}: 'deadline' is 0; the deadline must be > 0")
    route = RouteInstance(
        nodes=nodes,
        tails=np.array(tails, dtype=np.int64),
        heads=np.array(heads, dtype=np.int64),
        means=np.array(means, dtype=np.float64),
        variances=np.array(variances, dtype=np.float64),
        source=source,
        target=target,
        deadline=deadline,
    )
    if not route.reachable():
        raise ValueError(
            f"{what} has no path from the source to the target (the graph is disconnected "
            "there); a route needs at least one"
        )
    return route


def route_from_bytes(data: bytes, what: str) -> RouteInstance:
    """The route a file's bytes hold (``what`` names the file in messages); ``ValueError``
    for anything outside the format or its limits."""
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{what} is {len(data)} bytes; at most {MAX_FILE_BYTES} allowed")
    return route_from_object(parse_json_object(data, what, MAX_JSON_DEPTH), what)


def route_from_object(obj: dict, what: str) -> RouteInstance:
    """The route a parsed file holds (``what`` names the file); ``ValueError`` for anything
    outside the format or its limits."""
    check_keys(obj, KIND, KEYS, what)
    return make_route(obj["nodes"], obj["edges"], obj["source"], obj["target"], obj["deadline"],
                      what)  # fmt: skip


def load_benchmark_route(benchmark: Benchmark) -> RouteInstance:
    """The route of a benchmark's file, its size checked before it is read and its bytes
    against the benchmark's sha256."""
    return route_from_bytes(read_limited(benchmark, "route file", MAX_FILE_BYTES),
                            f"route file {benchmark.path}")  # fmt: skip


def load_route(path: str | Path) -> RouteInstance:
    """The route in the file ``path`` (at most :data:`MAX_FILE_BYTES`)."""
    return route_from_bytes(read_limited(path, "route file", MAX_FILE_BYTES),
                            f"route file {path}")  # fmt: skip


