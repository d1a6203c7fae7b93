"""Graph neural networks for stable-baselines3 on the padded graph observations of
:class:`optgym.wrappers.PaddedGraph` (batched back into torch-geometric by
:func:`optgym.wrappers.to_batch`).

* :class:`ProgramlExtractor`: a features extractor for the ``Programl`` observation of
  ``optgym/PassOrdering-v0``. Node features are two category ids, ``kind`` (0 instruction,
  1 variable, 2 constant; :data:`NODE_KINDS`) and ``text`` (an instruction's opcode index in
  ``INSTCOUNT_NAMES[3:]`` order, or a variable's or constant's LLVM type kind; below
  :data:`NODE_TEXTS`). Edge features are ``flow`` (0 control, 1 data, 2 call;
  :data:`EDGE_FLOWS`) and the operand ``position``, clipped to ``EDGE_POSITIONS - 1``.
  Ids outside these ranges are clipped into them.
* :class:`BipartiteExtractor`: a features extractor for the variable-constraint graph of
  ``optgym/ILPNeighborhood-v0`` (8 float features per node, feature 0 is 0 for a variable
  and 1 for a constraint; one float feature per variable -> constraint edge). It keeps the
  per-node embeddings of its last call for :class:`BipartiteScorePolicy`.
* :class:`BipartiteScorePolicy`: an ``ActorCriticPolicy`` for the ``Box(-1, 1, (size,))``
  action of :class:`optgym.wrappers.FixedScores`: the Gaussian mean of variable ``j`` is an
  MLP of its node embedding (so one set of weights scores an instance of any size), padded
  positions get mean 0, the value is an MLP of the pooled graph embedding, and one learned
  log-std is shared by every position.

Both extractors run message passing in both directions of every edge (the edge list plus
its reverse, the direction as an edge feature) with ``GINEConv``, pool every graph by mean
and max, and concatenate any other entries of the observation (``k_fraction``,
``budget_left``, ``objective`` for LNS) through ``sign(x) * log1p(|x|)`` (objectives can be
large) before a last ``Linear`` + ``ReLU`` to ``features_dim``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch_geometric.nn import GINEConv, global_max_pool, global_mean_pool

from optgym.wrappers.graph import to_batch

__all__ = [
    "EDGE_FLOWS",
    "EDGE_POSITIONS",
    "NODE_KINDS",
    "NODE_TEXTS",
    "BipartiteExtractor",
    "BipartiteScorePolicy",
    "ProgramlExtractor",
]

#: Programl node kinds: 0 instruction, 1 variable, 2 constant.
NODE_KINDS = 3
#: Programl node texts: 67 opcodes (``INSTCOUNT_NAMES[3:]``); type kinds are below this too.
NODE_TEXTS = 67
#: Programl edge flows: 0 control, 1 data, 2 call.
EDGE_FLOWS = 3
#: Programl operand positions embedded; larger positions are clipped to ``EDGE_POSITIONS - 1``.
EDGE_POSITIONS = 16

#: The keys :class:`optgym.wrappers.PaddedGraph` adds to an observation.
GRAPH_KEYS = ("nodes", "edge_index", "edge_attr", "num_nodes", "num_edges")


def _symlog(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log1p(|x|)``: monotone, near identity around 0, tames large values."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def _check_graph_space(observation_space: spaces.Space, who: str) -> spaces.Dict:
    """The space as a ``Dict`` with the padded graph keys, or ``ValueError``."""
    if not isinstance(observation_space, spaces.Dict) or any(
        k not in observation_space.spaces for k in GRAPH_KEYS
    ):
        raise ValueError(
            f"{who} needs the Dict observation of optgym.wrappers.PaddedGraph (keys "
            f"{', '.join(GRAPH_KEYS)}), got {observation_space}"
        )
    return observation_space


def _extra_keys(observation_space: spaces.Dict) -> list[str]:
    """The entries of the observation besides the padded graph, in the space's order."""
    return [k for k in observation_space.spaces if k not in GRAPH_KEYS]


def _ids(values: torch.Tensor, count: int) -> torch.Tensor:
    """Float category ids as ``long`` in ``[0, count)`` (out-of-range ids are clipped)."""
    return values.round().long().clamp(0, count - 1)


def _trimmed(observations: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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


def _both_directions(edge_index: torch.Tensor) -> torch.Tensor:
    """The edge list followed by its reverse."""
    return torch.cat([edge_index, edge_index.flip(0)], dim=1)


class _GINEConv(GINEConv):
    """``GINEConv`` whose message ``relu(x_j + e_ij)`` is computed in place on ``x_j`` (a
    fresh gather of the source nodes), sparing two edge-sized allocations per layer."""

    def message(self, x_j: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return x_j.add_(edge_attr).relu_()


class _MessagePassing(nn.Module):
    """``layers`` residual rounds of ``GINEConv`` (edge embeddings of the node width), each
    followed by ``LayerNorm`` and ``ReLU``."""

    def __init__(self, hidden: int, layers: int, aggr: str) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            _GINEConv(
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


class _GraphExtractor(BaseFeaturesExtractor):
    """What both extractors share: validation, the extra entries, pooling and the head."""

    def __init__(
        self,
        observation_space: spaces.Dict,
        hidden: int,
        layers: int,
        features_dim: int,
        aggr: str,
    ) -> None:
        for name, value in (("hidden", hidden), ("layers", layers), ("features_dim", features_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        super().__init__(observation_space, features_dim)
        self.hidden = hidden
        self.extra_keys = _extra_keys(observation_space)
        extra_dim = sum(get_flattened_obs_dim(observation_space[k]) for k in self.extra_keys)
        self.message_passing = _MessagePassing(hidden, layers, aggr)
        self.head = nn.Sequential(nn.Linear(2 * hidden + extra_dim, features_dim), nn.ReLU())

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
            _symlog(observations[k].reshape(pooled.shape[0], -1).float()) for k in self.extra_keys
        ]
        return self.head(torch.cat(parts, dim=1))


class ProgramlExtractor(_GraphExtractor):
    """Features extractor for the padded ``Programl`` graph of ``optgym/PassOrdering-v0``.

    Node embedding: ``kind`` embedding plus an embedding of the ``(kind, text)`` pair (so
    opcodes and type kinds do not share rows); edge embedding: ``flow`` plus ``position``
    (clipped to ``EDGE_POSITIONS - 1``) plus the direction (messages go both ways). Then
    ``layers`` rounds of ``GINEConv`` (sum aggregation), mean and max pooling per graph, the
    other entries of the observation (if any), and ``Linear`` + ``ReLU`` to ``features_dim``.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        hidden: int = 64,
        layers: int = 3,
        features_dim: int = 128,
    ) -> None:
        space = _check_graph_space(observation_space, "ProgramlExtractor")
        node_f, edge_f = space["nodes"].shape[-1], space["edge_attr"].shape[-1]
        if node_f < 2 or edge_f < 2:
            raise ValueError(
                "ProgramlExtractor needs 2 node features (kind, text) and 2 edge features "
                f"(flow, position), got {node_f} and {edge_f}"
            )
        super().__init__(space, hidden, layers, features_dim, aggr="add")
        self.kind = nn.Embedding(NODE_KINDS, hidden)
        self.text = nn.Embedding(NODE_KINDS * NODE_TEXTS, hidden)
        self.flow = nn.Embedding(EDGE_FLOWS, hidden)
        self.position = nn.Embedding(EDGE_POSITIONS, hidden)
        self.direction = nn.Embedding(2, hidden)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(batch, features_dim)`` features of a batch of padded Programl observations."""
        data = to_batch(_trimmed(observations))
        kind = _ids(data.x[:, 0], NODE_KINDS)
        text = _ids(data.x[:, 1], NODE_TEXTS)
        h = self.kind(kind) + self.text(kind * NODE_TEXTS + text)
        # flow + position + direction embeddings, summed once per combination (96 rows)
        # and looked up once per edge
        table = (
            self.flow.weight[:, None, None]
            + self.position.weight[None, :, None]
            + self.direction.weight[None, None, :]
        ).reshape(-1, self.hidden)
        pair = _ids(data.edge_attr[:, 0], EDGE_FLOWS) * EDGE_POSITIONS + _ids(
            data.edge_attr[:, 1], EDGE_POSITIONS
        )
        edge_attr = nn.functional.embedding(torch.cat([2 * pair, 2 * pair + 1]), table)
        h = self.message_passing(h, _both_directions(data.edge_index), edge_attr)
        return self._head(self._pool(h, data.batch, data.num_graphs), observations)


class BipartiteExtractor(_GraphExtractor):
    """Features extractor for the padded variable-constraint graph of
    ``optgym/ILPNeighborhood-v0``.

    Node features go through ``sign(x) * log1p(|x|)`` and a ``Linear`` + ``ReLU`` to
    ``hidden``; each edge's features and its direction (variable -> constraint or back) through
    a ``Linear``; then ``layers`` rounds of ``GINEConv`` (mean aggregation: constraint
    degrees vary widely, and the degree is a node feature) over the edges and their reverse,
    mean and max pooling per graph, and the pooled embedding with the other entries
    (``k_fraction``, ``budget_left``, ``objective``) through ``Linear`` + ``ReLU`` to
    ``features_dim``.

    Every call keeps what :class:`BipartiteScorePolicy` needs to score the variables:
    ``node_embeddings`` ``(total nodes, hidden)``, ``node_batch`` (the sample of each node),
    ``node_position`` (its index in its sample), ``num_variables`` ``(batch,)`` (nodes with
    feature 0 below 0.5 among the first ``num_nodes``) and ``num_graphs``.
    """

    node_embeddings: torch.Tensor
    node_batch: torch.Tensor
    node_position: torch.Tensor
    num_variables: torch.Tensor
    num_graphs: int

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        hidden: int = 64,
        layers: int = 3,
        features_dim: int = 128,
    ) -> None:
        space = _check_graph_space(observation_space, "BipartiteExtractor")
        node_f, edge_f = space["nodes"].shape[-1], space["edge_attr"].shape[-1]
        super().__init__(space, hidden, layers, features_dim, aggr="mean")
        self.node_dim = hidden
        self.node_encoder = nn.Sequential(nn.Linear(node_f, hidden), nn.ReLU())
        self.edge_encoder = nn.Linear(edge_f + 1, hidden)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(batch, features_dim)`` features; keeps the per-node embeddings (see the class)."""
        data = to_batch(_trimmed(observations))
        h = self.node_encoder(_symlog(data.x))
        e = data.edge_attr.shape[0]
        direction = torch.cat([data.edge_attr.new_zeros(e, 1), data.edge_attr.new_ones(e, 1)])
        edge_attr = self.edge_encoder(
            torch.cat([torch.cat([data.edge_attr, data.edge_attr]), direction], dim=1)
        )
        h = self.message_passing(h, _both_directions(data.edge_index), edge_attr)
        b = data.num_graphs
        counts = torch.bincount(data.batch, minlength=b)
        starts = torch.cumsum(counts, 0) - counts
        self.node_embeddings = h
        self.node_batch = data.batch
        self.node_position = torch.arange(h.shape[0], device=h.device) - starts[data.batch]
        is_variable = (data.x[:, 0] < 0.5).long()
        self.num_variables = torch.zeros(b, dtype=torch.long, device=h.device).index_add_(
            0, data.batch, is_variable
        )
        self.num_graphs = b
        return self._head(self._pool(h, data.batch, b), observations)


class _MaskedDiagGaussian(DiagGaussianDistribution):
    """A diagonal Gaussian whose padded positions (``mask`` false) are always 0: left out of
    ``log_prob`` and ``entropy`` and never sampled."""

    mask: torch.Tensor

    def proba_distribution(  # type: ignore[override]
        self, mean_actions: torch.Tensor, log_std: torch.Tensor, mask: torch.Tensor | None = None
    ) -> _MaskedDiagGaussian:
        super().proba_distribution(mean_actions, log_std)
        self.mask = torch.ones_like(mean_actions) if mask is None else mask.to(mean_actions)
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return (self.distribution.log_prob(actions) * self.mask).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        return (self.distribution.entropy() * self.mask).sum(dim=-1)

    def sample(self) -> torch.Tensor:
        return self.distribution.rsample() * self.mask


def _mlp(inputs: int, hidden: list[int], activation: type[nn.Module]) -> nn.Sequential:
    """``Linear`` + activation for each width in ``hidden``, then ``Linear`` to 1."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), activation()]
        inputs = width
    return nn.Sequential(*layers, nn.Linear(inputs, 1))


class BipartiteScorePolicy(ActorCriticPolicy):
    """Actor-critic policy that scores every variable of an LNS instance with one MLP of its
    node embedding, for ``FixedScores(PaddedGraph(ILPNeighborhood env, ...), size)``.

    The Gaussian mean of action entry ``j`` is ``score_net(node embedding of variable j)``
    for ``j`` below the sample's number of variables, and exactly 0 past it (padding); the
    padded entries are also left out of the log-probability and the entropy, and sampled
    as 0. The value is ``value_net(pooled features)``. One learned log-std (``log_std``,
    shape ``(1,)``) serves every entry; it starts at ``log_std_init`` (-1 by default, so few
    sampled scores are clipped to the box's bounds, where they would tie).

    ``net_arch``: hidden widths of ``score_net`` and ``value_net``, a list for both or
    ``dict(pi=[...], vf=[...])`` (default ``[64]``). The features extractor must keep node
    embeddings as :class:`BipartiteExtractor` does (the default). gSDE is not supported.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Callable[[float], float],
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = -1.0,
        features_extractor_class: type[BaseFeaturesExtractor] = BipartiteExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
            raise ValueError(
                "BipartiteScorePolicy needs a 1-d Box action (one score per variable, as "
                f"optgym.wrappers.FixedScores gives), got {action_space}"
            )
        if use_sde:
            raise ValueError("BipartiteScorePolicy does not support gSDE (use_sde=True)")
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=[64] if net_arch is None else net_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            use_sde=False,
            log_std_init=log_std_init,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            **kwargs,
        )

    def _build(self, lr_schedule: Callable[[float], float]) -> None:
        """Build ``score_net``, ``value_net``, ``log_std`` and the optimizer."""
        node_dim = getattr(self.pi_features_extractor, "node_dim", None)
        if node_dim is None:
            raise ValueError(
                "BipartiteScorePolicy needs a features extractor that keeps node embeddings "
                f"(node_dim, node_embeddings, ...) like BipartiteExtractor, got "
                f"{type(self.pi_features_extractor).__name__}"
            )
        arch = self.net_arch
        pi, vf = (
            (arch.get("pi", []), arch.get("vf", [])) if isinstance(arch, dict) else (arch, arch)
        )
        self.size = int(self.action_space.shape[0])
        self.action_dist = _MaskedDiagGaussian(self.size)
        self.score_net = _mlp(node_dim, list(pi), self.activation_fn)
        self.value_net = _mlp(self.features_dim, list(vf), self.activation_fn)
        self.log_std = nn.Parameter(torch.full((1,), float(self.log_std_init)))
        if self.ortho_init:
            gains: dict[nn.Module, float] = {
                self.score_net: np.sqrt(2),
                self.value_net: np.sqrt(2),
                self.pi_features_extractor: np.sqrt(2),
                self.vf_features_extractor: np.sqrt(2),
            }
            for module, gain in gains.items():
                module.apply(lambda m, g=gain: self.init_weights(m, gain=g))
            self.init_weights(self.score_net[-1], gain=0.01)
            self.init_weights(self.value_net[-1], gain=1.0)
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _features(self, obs: Any, extractor: BaseFeaturesExtractor) -> torch.Tensor:
        """Preprocess ``obs`` and run ``extractor`` on it."""
        return BaseModel.extract_features(self, obs, extractor)  # type: ignore[return-value]

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, mask)``, both ``(batch, size)``, from the actor extractor's last call."""
        ex = self.pi_features_extractor
        h, batch, pos = ex.node_embeddings, ex.node_batch, ex.node_position
        keep = (pos < ex.num_variables[batch]) & (pos < self.size)
        mean = h.new_zeros(ex.num_graphs, self.size)
        mask = h.new_zeros(ex.num_graphs, self.size)
        mean = mean.index_put((batch[keep], pos[keep]), self.score_net(h[keep]).squeeze(-1))
        mask[batch[keep], pos[keep]] = 1.0
        return mean, mask

    def _distribution(self) -> _MaskedDiagGaussian:
        """The action distribution of the actor extractor's last call."""
        mean, mask = self._scores()
        return self.action_dist.proba_distribution(mean, self.log_std, mask)

    def _pi_and_value(self, obs: Any) -> tuple[_MaskedDiagGaussian, torch.Tensor]:
        """The action distribution and the values of a batch of observations."""
        pi_features = self._features(obs, self.pi_features_extractor)
        distribution = self._distribution()
        if self.share_features_extractor:
            vf_features = pi_features
        else:
            vf_features = self._features(obs, self.vf_features_extractor)
        return distribution, self.value_net(vf_features)

    def forward(
        self, obs: Any, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Actions ``(batch, size)``, values ``(batch, 1)`` and log-probabilities."""
        distribution, values = self._pi_and_value(obs)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values, distribution.log_prob(actions)

    def evaluate_actions(
        self, obs: Any, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Values, log-probabilities of ``actions`` and entropies (padding left out)."""
        distribution, values = self._pi_and_value(obs)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: Any) -> _MaskedDiagGaussian:
        """The action distribution for ``obs`` (its ``mode()`` is the mean scores)."""
        self._features(obs, self.pi_features_extractor)
        return self._distribution()

    def predict_values(self, obs: Any) -> torch.Tensor:
        """Values ``(batch, 1)`` of ``obs``."""
        return self.value_net(self._features(obs, self.vf_features_extractor))
