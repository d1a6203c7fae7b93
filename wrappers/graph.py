"""Graph observations as fixed-size arrays (what stable-baselines3 stores), and back into
torch-geometric batches (what a GNN reads).

:class:`PaddedGraph` turns the Programl observation of ``optgym/PassOrdering-v0`` (a
torch-geometric ``Data``) or the bipartite variable-constraint graph of
``optgym/ILPNeighborhood-v0`` (a gymnasium ``Graph`` under the ``"graph"`` key) into a
``Dict`` of fixed-shape arrays:

* ``nodes`` ``(max_nodes, F)`` float32: node features, zero past ``num_nodes``;
* ``edge_index`` ``(2, max_edges)`` int64: source and target node of each edge, zero past
  ``num_edges``;
* ``edge_attr`` ``(max_edges, Fe)`` float32: edge features;
* ``num_nodes``, ``num_edges`` ``(1,)`` int64: how many rows are real;
* every other entry of a ``Dict`` observation, unchanged.

:func:`to_batch` undoes the padding for a batch of such observations (as tensors) and
gives one torch-geometric ``Batch``-like ``Data`` with ``batch`` and ``num_graphs``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def _graph_parts(obs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nodes, edge_index (2, E), edge_attr) of a Programl ``Data`` or a ``GraphInstance``."""
    if isinstance(obs, spaces.GraphInstance):
        links = np.asarray(obs.edge_links, dtype=np.int64).reshape(-1, 2).T
        edges = np.asarray(obs.edges, dtype=np.float32)
        return np.asarray(obs.nodes, dtype=np.float32), links, edges.reshape(links.shape[1], -1)
    x = obs.x.numpy()
    return x.astype(np.float32), obs.edge_index.numpy(), obs.edge_attr.numpy().astype(np.float32)


class PaddedGraph(gym.ObservationWrapper):
    """Pad a graph observation to ``max_nodes`` nodes and ``max_edges`` edges (see the
    module docstring for the arrays).

    A graph larger than that raises ``ValueError`` naming its size and the limits, unless
    ``truncate=True``: then the nodes past ``max_nodes`` are dropped with every edge that
    touches them, and the edges past ``max_edges``. Truncate only where losing the tail of
    the graph is acceptable (the Programl embedding of a large program); never where the
    policy scores every node (LNS variables).
    """

    def __init__(
        self, env: gym.Env, max_nodes: int, max_edges: int, truncate: bool = False
    ) -> None:
        super().__init__(env)
        for name, value in (("max_nodes", max_nodes), ("max_edges", max_edges)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        inner = env.observation_space
        self._key: str | None = None
        rest: dict[str, spaces.Space] = {}
        if isinstance(inner, spaces.Dict):
            keys = [k for k, s in inner.spaces.items() if isinstance(s, spaces.Graph)]
            if len(keys) != 1:
                raise ValueError(f"PaddedGraph needs a Dict with one Graph entry, got {inner}")
            self._key = keys[0]
            graph = inner.spaces[self._key]
            node_f, edge_f = graph.node_space.shape[0], graph.edge_space.shape[0]
            rest = {k: s for k, s in inner.spaces.items() if k != self._key}
        elif hasattr(inner, "node_features") and hasattr(inner, "edge_features"):
            node_f, edge_f = inner.node_features, inner.edge_features
        elif isinstance(inner, spaces.Graph):
            node_f, edge_f = inner.node_space.shape[0], inner.edge_space.shape[0]
        else:
            raise ValueError(
                f"PaddedGraph needs a graph observation (Programl, a gymnasium Graph, or a "
                f"Dict holding one), got {inner}"
            )
        self.max_nodes, self.max_edges, self.truncate = max_nodes, max_edges, truncate
        self.observation_space = spaces.Dict(
            {
                "nodes": spaces.Box(-np.inf, np.inf, (max_nodes, node_f), np.float32),
                "edge_index": spaces.Box(0, max_nodes - 1, (2, max_edges), np.int64),
                "edge_attr": spaces.Box(-np.inf, np.inf, (max_edges, edge_f), np.float32),
                "num_nodes": spaces.Box(0, max_nodes, (1,), np.int64),
                "num_edges": spaces.Box(0, max_edges, (1,), np.int64),
                **rest,
            }
        )

    def observation(self, observation: Any) -> dict[str, Any]:
        graph = observation[self._key] if self._key is not None else observation
        nodes, links, attrs = _graph_parts(graph)
        n, e = len(nodes), links.shape[1]
        if n > self.max_nodes or e > self.max_edges:
            if not self.truncate:
                raise ValueError(
                    f"the graph has {n} nodes and {e} edges; PaddedGraph holds at most "
                    f"{self.max_nodes} nodes and {self.max_edges} edges (raise the limits, "
                    "or truncate=True where dropping the tail is acceptable)"
                )
            nodes = nodes[: self.max_nodes]
            keep = (links < self.max_nodes).all(axis=0)
            links, attrs = links[:, keep][:, : self.max_edges], attrs[keep][: self.max_edges]
            n, e = len(nodes), links.shape[1]
        space = self.observation_space
        out = {
            "nodes": np.zeros(space["nodes"].shape, np.float32),
            "edge_index": np.zeros(space["edge_index"].shape, np.int64),
            "edge_attr": np.zeros(space["edge_attr"].shape, np.float32),
            "num_nodes": np.array([n], np.int64),
            "num_edges": np.array([e], np.int64),
        }
        out["nodes"][:n] = nodes
        out["edge_index"][:, :e] = links
        out["edge_attr"][:e] = attrs
        if self._key is not None:
            out.update({k: v for k, v in observation.items() if k != self._key})
        return out


def to_batch(obs: dict[str, Any]) -> Any:
    """A batch of padded observations (tensors with a leading batch dimension, as an SB3
    feature extractor receives them; integer arrays may arrive as floats) as one
    torch-geometric ``Data``: ``x``, ``edge_index`` (nodes numbered across the batch),
    ``edge_attr``, ``batch`` (the graph of each node) and ``num_graphs``."""
    import torch
    from torch_geometric.data import Data

    nodes, edge_index, edge_attr = obs["nodes"], obs["edge_index"], obs["edge_attr"]
    b, max_nodes = nodes.shape[0], nodes.shape[1]
    max_edges = edge_index.shape[-1]
    n = obs["num_nodes"].reshape(b).round().long().clamp(0, max_nodes)
    e = obs["num_edges"].reshape(b).round().long().clamp(0, max_edges)
    node_mask = torch.arange(max_nodes, device=nodes.device)[None, :] < n[:, None]
    edge_mask = torch.arange(max_edges, device=nodes.device)[None, :] < e[:, None]
    offsets = torch.cumsum(n, 0) - n
    links = edge_index.round().long() + offsets[:, None, None]
    return Data(
        x=nodes[node_mask],
        edge_index=links.permute(1, 0, 2)[:, edge_mask],
        edge_attr=edge_attr[edge_mask],
        batch=torch.repeat_interleave(torch.arange(b, device=nodes.device), n),
        num_graphs=b,
        num_nodes=int(n.sum()),
    )
