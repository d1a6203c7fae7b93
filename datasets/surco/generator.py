"""Seeded instances of the SurCo problem: road-like routes, ``generator://routes-v0/<seed>``,
and embedding-table sharding, ``generator://sharding-v0/<seed>`` (:func:`generate_sharding`
says how a sharding seed is drawn).

Routes, ``generate_route``:
A seed draws, from ``numpy.random.default_rng(seed)`` in this order:

* the grid side ``k`` in 10..16: nodes ``r * k + c`` for rows and columns ``r, c < k``, one
  length unit apart;
* a road class for each of the ``k`` rows, then each of the ``k`` columns: a speed factor
  ``U(0.9, 1.1)`` and a coefficient of variation log-uniform in ``[0.01, 1]`` (a road is
  fast or slow, reliable or risky, along its whole length);
* in each grid cell, row by row, with probability :data:`DIAGONAL_PROBABILITY`, one
  diagonal (either one, equally likely; length ``sqrt(2)``) with a road class of its own;
* per edge (every road segment in both directions: the rows' segments, the columns', then
  the diagonals, each first ``a -> b`` as listed, then ``b -> a``): the mean travel time
  ``5 * length * speed * U(0.9, 1.1)`` and the variance ``(mean * cv * U(0.8, 1.2))**2``,
  both rounded to 4 decimals. Speed and risk are independent and shared along a road, so
  paths of nearly the same expected time differ much in variance: the path of least
  expected time is often not the one most likely to arrive in time;
* the source, a node of the left column, and the target, one of the right column.

The deadline is ``f * T``, ``T`` the least expected time from the source to the target and
the factor ``f`` the SurCo paper's, chosen by the seed: ``(1.1, 1.0, 0.9)[seed % 3]``
(loose, tight, very tight). Under ``f > 1`` safer paths than the expected-value path may
do better, under ``f < 1`` riskier ones; under ``f = 1`` the expected-value path is optimal
(probability 1/2, and every other path has a larger mean), a sanity check for agents.
A benchmark's file is the instance in the route file format
(:mod:`optgym.datasets.surco.routes`), so a seed gives the same bytes on any machine.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from optgym.datasets.seeded import SeededDataset
from optgym.datasets.surco.routes import RouteInstance, make_route
from optgym.datasets.surco.sharding import ShardingInstance, greedy_placement, make_sharding

NAME = "routes-v0"
LICENSE = "MIT (OptGym); generated"
SURCO_PAPER = "https://arxiv.org/abs/2210.12547"
#: The deadline factors, chosen by ``seed % 3``.
DEADLINE_FACTORS = (1.1, 1.0, 0.9)
DIAGONAL_PROBABILITY = 0.3
MIN_SIDE, MAX_SIDE = 10, 16
SPEED_RANGE = (0.9, 1.1)
CV_RANGE = (0.01, 1.0)  # log-uniform
TIME_PER_LENGTH = 5.0


def least_expected_time(route: RouteInstance) -> float:
    """The least expected travel time from the source to the target (scipy's Dijkstra on
    the means; the generated graphs have no parallel edges)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    # an explicit zero in a sparse matrix is no edge: a tiny floor keeps zero-mean edges
    weights = np.maximum(route.means, 1e-300)
    graph = csr_matrix((weights, (route.tails, route.heads)), shape=(route.nodes, route.nodes))
    return float(dijkstra(graph, indices=route.source)[route.target])


def generate_route(seed: int) -> RouteInstance:
    """The instance of ``seed`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))

    def road_class() -> tuple[float, float]:
        speed = float(rng.uniform(*SPEED_RANGE))
        return speed, math.exp(float(rng.uniform(*np.log(CV_RANGE))))

    rows = [road_class() for _ in range(k)]
    columns = [road_class() for _ in range(k)]
    roads = [(r * k + c, r * k + c + 1, 1.0, rows[r]) for r in range(k) for c in range(k - 1)]
    roads += [(r * k + c, (r + 1) * k + c, 1.0, columns[c])
              for r in range(k - 1) for c in range(k)]  # fmt: skip
    for r in range(k - 1):
        for c in range(k - 1):
            if rng.random() < DIAGONAL_PROBABILITY:
                if rng.random() < 0.5:
                    a, b = r * k + c, (r + 1) * k + c + 1
                else:
                    a, b = r * k + c + 1, (r + 1) * k + c
                roads.append((a, b, math.sqrt(2.0), road_class()))
    edges = []
    for a, b, length, (speed, cv) in roads:
        for u, v in ((a, b), (b, a)):
            mean = TIME_PER_LENGTH * length * speed * float(rng.uniform(0.9, 1.1))
            sd = mean * cv * float(rng.uniform(0.8, 1.2))
            edges.append([u, v, round(mean, 4), round(sd * sd, 4)])
    source = int(rng.integers(0, k)) * k
    target = int(rng.integers(0, k)) * k + k - 1
    # a placeholder deadline, to compute the least expected time with the checked instance
    draft = make_route(k * k, edges, source, target, 1.0, f"route {seed}")
    deadline = DEADLINE_FACTORS[seed % len(DEADLINE_FACTORS)] * least_expected_time(draft)
    return make_route(k * k, edges, source, target, deadline, f"route {seed}")


class RoutesDataset(SeededDataset):
    """``generator://routes-v0/<seed>``: road-like grids with normal travel times."""

    name = NAME
    suffix = ".json"
    recipe_modules = ("optgym.datasets.surco.routes",)
    description = (
        "Road-like directed grids of 10 x 10 to 16 x 16 nodes with random diagonals, each road "
        "both ways with its own speed and reliability; independent normal travel times "
        "(means about 4 to 6 a grid segment, coefficients of variation log-uniform from 0.01 "
        "to 1); source in the left column, target in the right one; the deadline 1.1, 1.0 "
        "or 0.9 times the least expected time (seed % 3 = 0, 1, 2). Seed splits as every "
        "generator dataset."
    )
    license = LICENSE
    provenance = (
        "optgym.datasets.surco.generator.generate_route(seed): draws from "
        "numpy.random.default_rng(seed) in the order its docstring lists, means and variances "
        "rounded to 4 decimals; the deadline factor (1.1, 1.0, 0.9)[seed % 3] times the least "
        "expected time (scipy's Dijkstra on the means); each file is RouteInstance.to_json(). "
        "After the route-planning experiments of SurCo (Ferber et al., ICML 2023)."
    )
    references = (SURCO_PAPER,)

    def generate(self, seed: int, workdir: Path) -> bytes:
        return generate_route(seed).to_json().encode()


SHARDING_NAME = "sharding-v0"
TABLES_RANGE = (20, 60)
DEVICES_RANGE = (4, 8)
ROWS_RANGE = (1e4, 5e6)  # log-uniform
POOLING_RANGE = (1.0, 100.0)  # log-uniform
DIMS = (16, 32, 64, 128)
SLACK_RANGE = (1.05, 1.25)  # total capacity over total size
KNEE_RANGE = (0.5, 1.0)  # the knee over the mean device load
WEIGHT_RANGE = (0.6, 1.4)  # a device's share of the capacity, before normalizing
BYTES_PER_VALUE = 4
DLRM_PAPER = "https://arxiv.org/abs/1906.00091"


def generate_sharding(seed: int) -> ShardingInstance:
    """The sharding instance of ``seed``, drawn from ``numpy.random.default_rng(seed)`` in
    this order: the table count ``T`` in 20..60 and the device count ``D`` in 4..8; per
    table, its rows (log-uniform in ``[1e4, 5e6]``), its dim (one of 16, 32, 64, 128) and its
    pooling factor (log-uniform in ``[1, 100]``, 2 decimals); its size is ``rows * dim * 4``
    bytes in GiB (4 decimals). Then the slack ``U(1.05, 1.25)`` and a weight ``U(0.6, 1.4)``
    per device: the capacities share ``slack`` times the total size by weight, each at least
    1.05 times the largest table (4 decimals); last the knee, ``U(0.5, 1.0)`` times the
    mean device load ``sum(l_i) / D`` (2 decimals). When the greedy placement
    (:func:`optgym.datasets.surco.sharding.greedy_placement`) finds no room for a table, the
    capacities grow by 5% until it does, so that every seed has a placement."""
    rng = np.random.default_rng(seed)
    n_tables = int(rng.integers(TABLES_RANGE[0], TABLES_RANGE[1] + 1))
    n_devices = int(rng.integers(DEVICES_RANGE[0], DEVICES_RANGE[1] + 1))
    tables = []
    for _ in range(n_tables):
        rows = math.exp(float(rng.uniform(*np.log(ROWS_RANGE))))
        dim = int(DIMS[int(rng.integers(0, len(DIMS)))])
        pooling = round(math.exp(float(rng.uniform(*np.log(POOLING_RANGE)))), 2)
        size = max(round(rows * dim * BYTES_PER_VALUE / 2**30, 4), 1e-4)
        tables.append([size, pooling, dim])
    slack = float(rng.uniform(*SLACK_RANGE))
    weights = rng.uniform(*WEIGHT_RANGE, n_devices)
    total = math.fsum(t[0] for t in tables)
    largest = max(t[0] for t in tables)
    knee_factor = float(rng.uniform(*KNEE_RANGE))
    knee = round(knee_factor * math.fsum(t[1] * t[2] for t in tables) / n_devices, 2)
    grow = 1.0
    while True:
        caps = [round(max(slack * total * w / weights.sum(), 1.05 * largest) * grow, 4)
                for w in weights.tolist()]  # fmt: skip
        instance = make_sharding(tables, caps, knee, f"sharding {seed}")
        if greedy_placement(instance) is not None:
            return instance
        grow *= 1.05


class ShardingDataset(SeededDataset):
    """``generator://sharding-v0/<seed>``: embedding tables to place on devices."""

    name = SHARDING_NAME
    suffix = ".json"
    recipe_modules = ("optgym.datasets.surco.sharding",)
    description = (
        "Embedding-table sharding: 20 to 60 tables (rows log-uniform 1e4 to 5e6, dim 16 to "
        "128, pooling factor log-uniform 1 to 100) on 4 to 8 devices whose capacities hold "
        "1.05 to 1.25 times the tables' total size; the knee of the latency model 0.5 to 1 "
        "times the mean device load. Seed splits as every generator dataset."
    )
    license = LICENSE
    provenance = (
        "optgym.datasets.surco.generator.generate_sharding(seed): draws from "
        "numpy.random.default_rng(seed) in the order its docstring lists, sizes and "
        "capacities rounded to 4 decimals, pooling factors and the knee to 2; capacities grow "
        "by 5% until the greedy placement fits; each file is ShardingInstance.to_json(). "
        "After the embedding-table sharding experiments of SurCo (Ferber et al., ICML 2023) "
        "on DLRM-like tables (Naumov et al., 2019)."
    )
    references = (SURCO_PAPER, DLRM_PAPER)

    def generate(self, seed: int, workdir: Path) -> bytes:
        return generate_sharding(seed).to_json().encode()
