"""The linear solvers of ``optgym/SurrogateOptimization-v0``: for a route, the shortest
source-target path under non-negative edge costs (Dijkstra's algorithm with a binary heap,
:func:`shortest_path`); for a sharding instance, the assignment MIP of tables to devices
under capacities, on SCIP (:func:`assign_tables`).

Shortest paths: ties are broken deterministically, so a cost vector always gives the same
path: nodes of equal distance are settled in increasing node id, a node's predecessor edge
is the first one (in that settling order, then in increasing edge index) that reached its
final distance, and a later edge of equal cost never replaces it. The search stops once
the target is settled. Assignments: a fresh single-threaded SCIP model per call with a node
limit (never a time limit) gives the same placement for the same costs. Sandboxed agents
see neither this module nor SCIP (the problem record lists them among its backends): every
solution they get is a solver call the env counts.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optgym.datasets.surco.routes import RouteInstance, on_time_probability
from optgym.datasets.surco.sharding import ShardingInstance, greedy_placement


def shortest_path(route: RouteInstance, costs: Sequence[float]) -> list[int]:
    """The edge indices, source to target, of the shortest path of ``route`` under
    ``costs`` (one finite, non-negative number per edge); ``ValueError`` when the target
    cannot be reached (a checked route always can)."""
    offsets, order = route.out_edges
    heads = route.heads.tolist()
    cost = list(costs)
    inf = float("inf")
    dist = [inf] * route.nodes
    via = [-1] * route.nodes  # the edge a node was reached by
    done = [False] * route.nodes
    source, target = route.source, route.target
    dist[source] = 0.0
    heap = [(0.0, source)]
    while heap:
        d, u = heapq.heappop(heap)
        if done[u]:
            continue
        done[u] = True
        if u == target:
            break
        for k in range(offsets[u], offsets[u + 1]):
            e = order[k]
            v = heads[e]
            nd = d + cost[e]
            if nd < dist[v]:
                dist[v] = nd
                via[v] = e
                heapq.heappush(heap, (nd, v))
    if not done[target]:
        raise ValueError("the target cannot be reached from the source")
    tails = route.tails.tolist()
    path = []
    node = target
    while node != source:
        e = via[node]
        path.append(e)
        node = tails[e]
    path.reverse()
    return path


#: Labels past which :func:`exact_route` gives up (the exact search is not tractable there).
EXACT_MAX_LABELS = 200_000


def exact_route(route: RouteInstance) -> list[int] | None:
    """A path of the highest on-time probability, exactly, when the deadline is at least the
    least expected time; None when it is not, or past :data:`EXACT_MAX_LABELS` labels.

    Then the best path has a mean of at most the deadline (the expected-value path's
    probability is at least 1/2, and a later mean gives less), and among such paths the
    probability ``Phi((d - mean) / sd)`` only grows as the mean or the variance falls: the
    best path is one of the Pareto-optimal (mean, variance) pairs of source-target paths.
    A label-setting search finds them all: labels leave the heap by mean, then variance; a
    label no better in both than one already at its node is dropped, as is one whose mean
    plus the least remaining mean passes the deadline. (A path with a cycle is never
    needed: removing the cycle lowers neither moment's quality.)"""
    offsets, order = route.out_edges
    heads, tails = route.heads.tolist(), route.tails.tolist()
    means, variances = route.means.tolist(), route.variances.tolist()
    deadline = route.deadline
    # the least remaining mean from each node to the target: Dijkstra on reversed edges
    inf = float("inf")
    rest = [inf] * route.nodes
    rest[route.target] = 0.0
    into: list[list[int]] = [[] for _ in range(route.nodes)]
    for e, v in enumerate(heads):
        into[v].append(e)
    heap = [(0.0, route.target)]
    while heap:
        dist, v = heapq.heappop(heap)
        if dist > rest[v]:
            continue
        for e in into[v]:
            u = tails[e]
            if dist + means[e] < rest[u]:
                rest[u] = dist + means[e]
                heapq.heappush(heap, (rest[u], u))
    # sums of the same means in another order differ in the last bits: a path whose mean is
    # the deadline's (a deadline at exactly the least expected time) must not be lost
    slack = deadline + 1e-9 * abs(deadline) + 1e-12
    if not rest[route.source] <= slack:
        return None  # the deadline is below the least expected time
    labels: list[tuple[float, float, int, int]] = []  # (mean, variance, parent label, edge)
    at: list[list[int]] = [[] for _ in range(route.nodes)]  # labels kept per node
    queue: list[tuple[float, float, int, int, int]] = [(0.0, 0.0, route.source, -1, -1)]
    best, best_label = -1.0, -1
    while queue:
        mean, var, u, parent, edge = heapq.heappop(queue)
        if any(labels[k][0] <= mean and labels[k][1] <= var for k in at[u]):
            continue
        if len(labels) >= EXACT_MAX_LABELS:
            return None
        labels.append((mean, var, parent, edge))
        at[u].append(len(labels) - 1)
        if u == route.target:
            p = on_time_probability(mean, var, deadline)
            if p > best:
                best, best_label = p, len(labels) - 1
            continue
        for k in range(offsets[u], offsets[u + 1]):
            e = order[k]
            v = heads[e]
            m = mean + means[e]
            if m + rest[v] > slack:
                continue
            w = var + variances[e]
            if not any(labels[j][0] <= m and labels[j][1] <= w for j in at[v]):
                heapq.heappush(queue, (m, w, v, len(labels) - 1, e))
    if best_label < 0:
        return None
    path = []
    k = best_label
    while labels[k][3] >= 0:
        path.append(labels[k][3])
        k = labels[k][2]
    path.reverse()
    return path


#: Branch-and-bound nodes one assignment solve may explore: a deterministic limit (a time
#: limit is not: where it cuts depends on the machine's load).
ASSIGNMENT_NODE_LIMIT = 20_000
#: CPU seconds past which an assignment solve is abandoned (an error, never a result: what a
#: time limit cuts off is not reproducible).
ASSIGNMENT_TIME_LIMIT = 120.0
#: SCIP's feasibility tolerance for the capacity rows (relative).
ASSIGNMENT_FEASTOL = 1e-9


@dataclass(frozen=True)
class Assignment:
    """A placement the assignment MIP gave: ``placement[i]`` is table ``i``'s device;
    ``optimal`` whether SCIP proved it optimal (else the node limit cut the search and it is
    the best placement found)."""

    placement: list[int]
    optimal: bool


class AssignmentError(RuntimeError):
    """The assignment MIP found no placement: infeasible capacities, or the limits reached
    first."""


def scip_version() -> str:
    """The version of SCIP that solves the assignments."""
    import pyscipopt

    return str(pyscipopt.Model().version())


def assign_tables(instance: ShardingInstance, costs: Sequence[float]) -> Assignment:
    """The placement minimizing ``sum(costs[i * D + d] * x[i, d])`` subject to every table on
    exactly one device and ``sum(s_i * x[i, d]) <= capacity_d``, ``x`` binary: one SCIP
    model built for this call (a model reused across calls would start from the solutions
    of earlier objectives, and ties could then break by history), single-threaded, default
    random seed, :data:`ASSIGNMENT_NODE_LIMIT` nodes. Costs are divided by their largest
    entry first (only their ratios count). :class:`AssignmentError` when no placement is
    found within the limits, or the time limit cuts the solve."""
    import pyscipopt

    t, d_count = instance.n_tables, instance.n_devices
    c = np.asarray(costs, dtype=np.float64).reshape(t, d_count)
    top = float(c.max()) if c.size else 0.0
    if top > 0:
        c = c / top
    model = pyscipopt.Model()
    model.hideOutput()
    model.setParam("parallel/maxnthreads", 1)
    model.setParam("lp/threads", 1)
    model.setParam("timing/clocktype", 1)  # CPU time: fair on a shared machine
    model.setParam("limits/nodes", ASSIGNMENT_NODE_LIMIT)
    model.setParam("limits/time", ASSIGNMENT_TIME_LIMIT)
    model.setParam("numerics/feastol", ASSIGNMENT_FEASTOL)
    rows = c.tolist()
    x = [[model.addVar(vtype="B", obj=rows[i][d]) for d in range(d_count)] for i in range(t)]
    for i in range(t):
        model.addCons(pyscipopt.quicksum(x[i]) == 1)
    sizes = instance.sizes.tolist()
    for d, cap in enumerate(instance.capacities.tolist()):
        model.addCons(pyscipopt.quicksum(sizes[i] * x[i][d] for i in range(t)) <= cap)
    model.optimize()
    status = model.getStatus()
    if status == "timelimit":
        raise AssignmentError(
            f"the assignment MIP reached its time limit ({ASSIGNMENT_TIME_LIMIT:g} CPU s)"
        )
    if model.getNSols() == 0:
        why = "the capacities admit no placement" if status == "infeasible" else (
            f"none found within {ASSIGNMENT_NODE_LIMIT} nodes (status {status})")
        raise AssignmentError(f"the assignment MIP found no placement: {why}")
    sol = model.getBestSol()
    placement = [max(range(d_count), key=lambda d, i=i: model.getSolVal(sol, x[i][d]))
                 for i in range(t)]  # fmt: skip
    return Assignment(placement=placement, optimal=status == "optimal")


def reference_placement(instance: ShardingInstance) -> list[int]:
    """The placement a sharding instance's speedup is measured against: the greedy placement
    (:func:`optgym.datasets.surco.sharding.greedy_placement`) when it fits, else the
    assignment MIP's under zero costs (any placement that fits). ``ValueError`` when the
    MIP finds none: no episode can run on the instance."""
    placement = greedy_placement(instance)
    if placement is not None:
        return placement
    try:
        return assign_tables(instance, [0.0] * (instance.n_tables * instance.n_devices)).placement
    except AssignmentError as e:
        raise ValueError(f"no placement of the tables fits the capacities ({e})") from None


@dataclass(frozen=True)
class LinearizedSharding:
    """What :func:`linearized_sharding` found: the best ``placement`` (its true slowest-device
    ``latency``), a ``lower_bound`` on every placement's latency, the MILP ``rounds`` run and
    the CPU ``seconds`` they took."""

    placement: list[int]
    latency: float
    lower_bound: float
    rounds: int
    seconds: float

    @property
    def gap(self) -> float:
        """``(latency - lower_bound) / latency``: how far from optimal the placement may be."""
        return (self.latency - self.lower_bound) / self.latency if self.latency > 0 else 0.0


def linearized_sharding(
    instance: ShardingInstance, seconds: float = 10.0, rounds: int = 8, gap: float = 1e-4
) -> LinearizedSharding:
    """SCIP on a linearized model of the sharding objective: a near-exact reference (the
    benchmark's and the tests'; never an agent's, and not the env's solver).

    A device's latency is a convex function of its load plus a term linear in its number of
    tables, so the tangents of the convex part at any loads lie below it. The MILP minimizes
    ``z`` subject to the assignment and capacity rows and, for every device and tangent
    point, ``z >= tangent(L_d) + TABLE_OVERHEAD_US * n_d``: its optimum is a lower bound on
    the true one. Outer approximation: each round solves it (started from the best placement
    so far, the greedy one first), keeps its placement when its true latency is lower, and
    adds tangents at that placement's device loads; it stops when the lower bound is within
    ``gap`` (relative) of the best latency, after ``rounds`` rounds, or when ``seconds`` CPU
    seconds are spent (each round gets an equal share of what is left). Single-threaded,
    SCIP's default seed."""
    import time

    import pyscipopt

    from optgym.datasets.surco.sharding import (
        TABLE_OVERHEAD_US,
        load_latency,
        load_latency_slope,
    )

    t_count, d_count, knee = instance.n_tables, instance.n_devices, instance.knee
    loads, sizes = instance.loads.tolist(), instance.sizes.tolist()
    best = reference_placement(instance)
    best_latency, lower = instance.latency(best), 0.0
    mean_load = sum(loads) / d_count
    points = {0.0, *(knee * a for a in np.linspace(0.1, 3.0, 15)),
              *(mean_load * a for a in (0.8, 0.9, 1.0, 1.1, 1.2))}  # fmt: skip
    begin = time.process_time()
    done = 0
    while done < rounds and lower < best_latency * (1.0 - gap):
        left = seconds - (time.process_time() - begin)
        if left <= 0.01:
            break
        model = pyscipopt.Model()
        model.hideOutput()
        model.setParam("parallel/maxnthreads", 1)
        model.setParam("lp/threads", 1)
        model.setParam("timing/clocktype", 1)
        model.setParam("limits/time", left / (rounds - done))
        model.setParam("limits/gap", gap)
        x = [[model.addVar(vtype="B") for _ in range(d_count)] for _ in range(t_count)]
        z = model.addVar(lb=0.0, obj=1.0)
        for i in range(t_count):
            model.addCons(pyscipopt.quicksum(x[i]) == 1)
        tangents = [(p, load_latency(p, knee), load_latency_slope(p, knee))
                    for p in sorted(points)]  # fmt: skip
        for d, cap in enumerate(instance.capacities.tolist()):
            column = [x[i][d] for i in range(t_count)]
            used = pyscipopt.quicksum(s * v for s, v in zip(sizes, column, strict=True))
            model.addCons(used <= cap)
            load = pyscipopt.quicksum(w * v for w, v in zip(loads, column, strict=True))
            tables = pyscipopt.quicksum(column)
            for p, value, slope in tangents:
                model.addCons(z >= value + slope * (load - p) + TABLE_OVERHEAD_US * tables)
        start = model.createSol()
        for i, d in enumerate(best):
            model.setSolVal(start, x[i][d], 1.0)
        model.setSolVal(start, z, best_latency)
        model.addSol(start, free=True)
        model.optimize()
        done += 1
        lower = max(lower, float(model.getDualbound()))
        if model.getNSols() == 0:
            continue
        sol = model.getBestSol()
        placement = [max(range(d_count), key=lambda d, i=i: model.getSolVal(sol, x[i][d]))
                     for i in range(t_count)]  # fmt: skip
        if instance.fits(placement) and instance.latency(placement) < best_latency:
            best, best_latency = placement, instance.latency(placement)
        device_load = np.zeros(d_count)
        np.add.at(device_load, np.asarray(placement, dtype=np.int64), instance.loads)
        points.update(device_load.tolist())
    return LinearizedSharding(
        placement=best, latency=best_latency, lower_bound=min(lower, best_latency),
        rounds=done, seconds=time.process_time() - begin,
    )  # fmt: skip
