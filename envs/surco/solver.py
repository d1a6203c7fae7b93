"""The linear solver of ``optgym/SurrogateOptimization-v0``: the shortest source-target path
of a route under non-negative edge costs (Dijkstra's algorithm with a binary heap).

Ties are broken deterministically, so a cost vector always gives the same path: nodes of
equal distance are settled in increasing node id, a node's predecessor edge is the first
one (in that settling order, then in increasing edge index) that reached its final
distance, and a later edge of equal cost never replaces it. The search stops once the
target is settled. Sandboxed agents do not see this module (the problem record lists it
among its backends): every path they get is a solver call the env counts.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from optgym.datasets.surco.routes import RouteInstance


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
