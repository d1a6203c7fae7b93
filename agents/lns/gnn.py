"""Graph networks for ``optgym/ILPNeighborhood-v0`` on the shared layers of
:mod:`optgym.agents.gnn`.

* :class:`BipartiteExtractor`: a features extractor for the variable-constraint graph (8
  float features per node, feature 0 is 0 for a variable and 1 for a constraint; one float
  feature per variable -> constraint edge). It keeps the per-node embeddings of its last call
  for :class:`BipartiteScorePolicy`.
* :class:`BipartiteScorePolicy`: an ``ActorCriticPolicy`` for the ``Box(-1, 1, (size,))``
  action of :class:`optgym.wrappers.FixedScores`: the Gaussian mean of variable ``j`` is an
  MLP of its node embedding (so one set of weights scores an instance of any size), padded
  positions get mean 0, the value is an MLP of the pooled graph embedding, and one learned
  log-std is shared by every position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from optgym.agents.gnn import GraphExtractor, both_directions, symlog, trimmed
from optgym.wrappers.graph import to_batch

__all__ = ["BipartiteExtractor", "BipartiteScorePolicy"]


class BipartiteExtractor(GraphExtractor):
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

    aggr: ClassVar[str] = "mean"

    def _embeddings(self, node_features: int, edge_features: int) -> None:
        self.node_dim = self.hidden
        self.node_encoder = nn.Sequential(nn.Linear(node_features, self.hidden), nn.ReLU())
        self.edge_encoder = nn.Linear(edge_features + 1, self.hidden)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(batch, features_dim)`` features; keeps the per-node embeddings (see the class)."""
        data = to_batch(trimmed(observations))
        h = self.node_encoder(symlog(data.x))
        e = data.edge_attr.shape[0]
        direction = torch.cat([data.edge_attr.new_zeros(e, 1), data.edge_attr.new_ones(e, 1)])
        edge_attr = self.edge_encoder(
            torch.cat([torch.cat([data.edge_attr, data.edge_attr]), direction], dim=1)
        )
        h = self.message_passing(h, both_directions(data.edge_index), edge_attr)
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
        use_sde: bool = False,
        log_std_init: float = -1.0,
        features_extractor_class: type[BaseFeaturesExtractor] = BipartiteExtractor,
        **kwargs: Any,
    ) -> None:
        """Its own defaults; the other settings (``ortho_init``, ``features_extractor_kwargs``,
        ...) are ``ActorCriticPolicy``'s."""
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
            log_std_init=log_std_init,
            features_extractor_class=features_extractor_class,
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
