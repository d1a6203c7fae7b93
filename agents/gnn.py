"""Graph neural networks for stable-baselines3 on the padded graph observations of
:class:`optgym.wrappers.PaddedGraph` (batched back into torch-geometric by
:func:`optgym.wrappers.to_batch`): the layers every graph policy shares.

* :class:`GraphExtractor`: the base of every graph features extractor: message passing in
  both directions of every edge (the edge list plus its reverse, the direction as an edge
  feature) with ``GINEConv``, mean and max pooling per graph, and any other entries of the
  observation through ``sign(x) * log1p(|x|)`` (:func:`symlog`) before a last ``Linear`` +
  ``ReLU`` to ``features_dim``. The LNS problem's extractor and policy build on it
  (:mod:`optgym.agents.lns.gnn`).
  The pass-ordering extractor is :mod:`optgym.agents.passes.gnn`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch_geometric.nn import GINEConv, global_max_pool, global_mean_pool

__all__ = [
    "EdgeGINEConv",
    "GraphExtractor",
    "MessagePassing",
    "both_directions",
    "category_ids",
    "check_graph_space",
    "extra_keys_of",
    "symlog",
    "trimmed",
]

#: The keys :class:`optgym.wrappers.PaddedGraph` adds to an observation.
GRAPH_KEYS = ("nodes", "edge_index", "edge_attr", "num_nodes", "num_edges")


def symlog(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log1p(|x|)``: monotone, near identity around 0, tames large values."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def check_graph_space(observation_space: spaces.Space, who: str) -> spaces.Dict:
    """The space as a ``Dict`` with the padded graph keys, or ``ValueError``."""
    if not isinstance(observation_space, spaces.Dict) or any(
        k not in observation_space.spaces for k in GRAPH_KEYS
    ):
        raise ValueError(
            f"{who} needs the Dict observation of optgym.wrappers.PaddedGraph (keys "
            f"{', '.join(GRAPH_KEYS)}), got {observation_space}"
        )
    return observation_space


def extra_keys_of(observation_space: spaces.Dict) -> list[str]:
    """The entries of the observation besides the padded graph, in the space's order."""
    return [k for k in observation_space.spaces if k not in GRAPH_KEYS]


def category_ids(values: torch.Tensor, count: int) -> torch.Tensor:
    """Float category ids as ``long`` in ``[0, count)`` (out-of-range ids are clipped)."""
    return values.round().long().clamp(0, count - 1)


def trimmed(observations: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch without the node and edge padding that no sample of it uses (views), so
    :func:`to_batch` reads less; the graphs it gives are the same."""
    nodes, edges = observations["nodes"], observations["edge_index"]
    n = int(observations["num_nodes"].max().round().clamp(0, nodes.shape[1])) if len(nodes) else 0
    e = int(observations["num_edges"].max().round().clamp(0, edges.shape[-1])) if len(nodes) else 0
    return {
        **observations,
        "nodes": nodes[:, :n],
        "edge_index": edges[..., :e],
        "edge_attr": observations["edge_attr"][:, :e],
    }


def both_directions(edge_index: torch.Tensor) -> torch.Tensor:
    """The edge list followed by its reverse."""
    return torch.cat([edge_index, edge_index.flip(0)], dim=1)


class EdgeGINEConv(GINEConv):
    """``GINEConv`` whose message ``relu(x_j + e_ij)`` is computed in place on ``x_j`` (a
    fresh gather of the source nodes), sparing two edge-sized allocations per layer."""

    def message(self, x_j: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return x_j.add_(edge_attr).relu_()


class MessagePassing(nn.Module):
    """``layers`` residual rounds of ``GINEConv`` (edge embeddings of the node width), each
    followed by ``LayerNorm`` and ``ReLU``."""

    def __init__(self, hidden: int, layers: int, aggr: str) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            EdgeGINEConv(
                nn.Sequential(
                    nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden)
                ),
                train_eps=True,
                aggr=aggr,
            )
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))

    def forward(
        self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        """Node embeddings after every round."""
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = h + norm(conv(h, edge_index, edge_attr)).relu_()
        return h


class GraphExtractor(BaseFeaturesExtractor, ABC):
    """What every graph extractor shares: validation, the extra entries, message passing
    (``aggr`` aggregation), pooling and the head. A subclass sets ``aggr`` and builds its
    node and edge embeddings in :meth:`_embeddings`."""

    aggr: ClassVar[str]

    def __init__(
        self,
        observation_space: spaces.Space,
        hidden: int = 64,
        layers: int = 3,
        features_dim: int = 128,
    ) -> None:
        space = check_graph_space(observation_space, type(self).__name__)
        for name, value in (("hidden", hidden), ("layers", layers), ("features_dim", features_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        super().__init__(space, features_dim)
        self.hidden = hidden
        self.extra_keys = extra_keys_of(space)
        extra_dim = sum(get_flattened_obs_dim(space[k]) for k in self.extra_keys)
        self.message_passing = MessagePassing(hidden, layers, self.aggr)
        self.head = nn.Sequential(nn.Linear(2 * hidden + extra_dim, features_dim), nn.ReLU())
        self._embeddings(space["nodes"].shape[-1], space["edge_attr"].shape[-1])

    @abstractmethod
    def _embeddings(self, node_features: int, edge_features: int) -> None:
        """Build the node and edge embeddings for graphs with these feature counts."""

    def _pool(self, h: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """Per graph mean and max of the node embeddings, ``(num_graphs, 2 * hidden)``."""
        return torch.cat(
            [
                global_mean_pool(h, batch, size=num_graphs),
                global_max_pool(h, batch, size=num_graphs),
            ],
            dim=1,
        )

    def _head(self, pooled: torch.Tensor, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """The pooled embedding and the other entries through the last layer."""
        parts = [pooled] + [
            symlog(observations[k].reshape(pooled.shape[0], -1).float()) for k in self.extra_keys
        ]
        return self.head(torch.cat(parts, dim=1))
