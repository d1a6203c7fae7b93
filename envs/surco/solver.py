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

from optgym.datasets.surco.routes import RouteInstance
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
