"""The bipartite variable-constraint graph observation of the LNS env.

Nodes are the n variables, then the m constraints, each with 8 features:

* variable: [0, objective coefficient / max |c|, is integer, degree / max degree,
  incumbent value, incumbent one step ago, two steps ago, LP relaxation value (0 until
  ``env.unwrapped.lp_features()`` is called)]
* constraint: [1, rhs / scale, lhs / scale (0 when infinite), degree / max degree, 0, 0,
  0, 0] with scale the row's largest |coefficient|

One edge per nonzero a_ij from variable j to constraint i, with a_ij / scale_i as its
feature. The static parts are built once per instance from the constraint matrix.

Bounds (:data:`GRAPH_SPACE`): the node type (column 0) and the degree fraction (column 3)
lie in [0, 1], the edge coefficient in [-1, 1] (``scale_i >= max |a_ij|``); the other
node columns hold values of the instance (a constraint's scaled sides, variable values)
and are unbounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from optgym.envs.lns.problem import MipProblem

NODE_FEATURES = 8
_NODE_LOW = np.full(NODE_FEATURES, -np.inf)
_NODE_HIGH = np.full(NODE_FEATURES, np.inf)
_NODE_LOW[[0, 3]], _NODE_HIGH[[0, 3]] = 0.0, 1.0  # node type, degree / max degree
GRAPH_SPACE = spaces.Graph(
    node_space=spaces.Box(_NODE_LOW, _NODE_HIGH, dtype=np.float64),
    edge_space=spaces.Box(-1.0, 1.0, (1,), np.float64),  # a_ij / max(1, max_j |a_ij|)
)


class StaticGraph:
    """The instance's graph with its static features; ``instance`` adds the dynamic ones."""

    def __init__(self, problem: MipProblem):
        A = problem.A.tocoo()
        n, m = problem.n, A.shape[0]
        row_scale = np.ones(m)
        np.maximum.at(row_scale, A.row, np.abs(A.data))
        var_deg = np.bincount(A.col, minlength=n).astype(float)
        con_deg = np.bincount(A.row, minlength=m).astype(float)
        max_deg = max(var_deg.max(initial=1.0), con_deg.max(initial=1.0))
        nodes = np.zeros((n + m, NODE_FEATURES))
        obj_scale = max(np.abs(problem.obj).max(initial=0.0), 1e-12)
        nodes[:n, 1] = problem.obj / obj_scale
        nodes[:n, 2] = problem.integer
        nodes[:n, 3] = var_deg / max_deg
        nodes[n:, 0] = 1.0
        nodes[n:, 1] = np.where(np.isfinite(problem.rhs), problem.rhs, 0.0) / row_scale
        nodes[n:, 2] = np.where(np.isfinite(problem.lhs), problem.lhs, 0.0) / row_scale
        nodes[n:, 3] = con_deg / max_deg
        self.n = n
        self.static = nodes
        self.edges = (A.data / row_scale[A.row]).reshape(-1, 1)
        self.edge_links = np.stack([A.col, n + A.row], axis=1).astype(np.int64)

    def instance(self, history: list[np.ndarray], lp: np.ndarray) -> spaces.GraphInstance:
        nodes = self.static.copy()
        for j, x in enumerate(history[:3]):
            nodes[: self.n, 4 + j] = x
        nodes[: self.n, 7] = lp
        # fresh arrays each call: users keep what an env returns (gymnasium checks it)
        return spaces.GraphInstance(
            nodes=nodes, edges=self.edges.copy(), edge_links=self.edge_links.copy()
        )


def to_hetero_data(obs: dict[str, Any]):
    """The graph observation as torch-geometric ``HeteroData`` with node types ``var`` and
    ``cons`` and the edge type ``(var, in, cons)`` (plus its reverse)."""
    import torch
    from torch_geometric.data import HeteroData

    graph: spaces.GraphInstance = obs["graph"]
    is_cons = graph.nodes[:, 0] > 0.5
    n = int((~is_cons).sum())
    data = HeteroData()
    data["var"].x = torch.from_numpy(graph.nodes[:n]).float()
    data["cons"].x = torch.from_numpy(graph.nodes[n:]).float()
    src = torch.from_numpy(graph.edge_links[:, 0])
    dst = torch.from_numpy(graph.edge_links[:, 1] - n)
    data["var", "in", "cons"].edge_index = torch.stack([src, dst])
    data["var", "in", "cons"].edge_attr = torch.from_numpy(graph.edges).float()
    data["cons", "has", "var"].edge_index = torch.stack([dst, src])
    data["cons", "has", "var"].edge_attr = torch.from_numpy(graph.edges).float()
    return data
