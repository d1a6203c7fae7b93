"""SurCo-prior (Ferber et al., ICML 2023) for the route family of
``optgym/SurrogateOptimization-v0``: a network maps each edge's features to its surrogate
cost, trained across the train routes by blackbox differentiation through the
shortest-path solver (Vlastelica et al., ICLR 2020), so that one solve of a new route gives
a good path.

Edge features (scale-free: times in units of the route's mean edge mean ``u``, the deadline
as its slack over the least expected time ``T``): ``mean / u``, ``variance / u**2``,
``sd / u``, ``r = deadline / T - 1``, ``r * sd / u``, ``r * variance / u**2`` and ``|r|``.
The network (two hidden layers, tanh) gives a correction ``h``: the cost is
``mean / u * exp(h)``, rescaled to a mean of 1 over the edges (only ratios of costs matter,
and a free scale drifts), its last layer starting at zero, so an untrained prior is the
expected-value path.

Training, per train route and epoch: the path ``y`` under the predicted costs ``c``, the
analytic ``dL/dy`` of ``L = -P(on time)`` (:func:`optgym.agents.surco.surco.loss_gradient`),
scaled to a largest entry of 1, a second solve at ``c + lam * dL/dy`` for ``y_lam``, and
``-(y - y_lam) / lam`` as the gradient of the loss in ``c``, backpropagated into the
network (Adam). Every solve is an env step, counted by the training budget. The shipped
weights (``agents/weights/surco-prior-routes.pt``) are made by :data:`MAKE_COMMAND`; their
metadata records the command, the train routes and the figures.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from optgym.agents.protocol import reading_weights, saving_weights
from optgym.agents.surco.search import SEARCH_UNITS, CostEvaluator, CostSearch, positive
from optgym.agents.surco.surco import SurcoZero, loss_gradient
from optgym.budget import Budget
from optgym.threads import single_thread

FORMAT = "optgym-surco-prior-1"
N_FEATURES = 7
MAKE_COMMAND = (
    "optgym train surco-prior --task surco-routes --episodes 120 --budget calls=20000 "
    "--out agents/weights/surco-prior-routes.pt"
)


def weights_path() -> Path:
    """``optgym/agents/weights/surco-prior-routes.pt``."""
    return Path(__file__).resolve().parent.parent / "weights" / "surco-prior-routes.pt"


def edge_features(route: Any, least_expected_time: float) -> tuple[np.ndarray, float]:
    """The (E, 7) features of the module docstring, and the unit ``u`` (mean edge mean)."""
    means = np.asarray(route.means, dtype=np.float64)
    variances = np.asarray(route.variances, dtype=np.float64)
    unit = float(np.mean(means)) or 1.0
    sd = np.sqrt(variances) / unit
    r = route.deadline / least_expected_time - 1.0 if least_expected_time > 0 else 0.0
    r = float(np.clip(r, -1.0, 1.0))
    x = np.stack(
        [means / unit, variances / unit**2, sd, np.full_like(sd, r), r * sd,
         r * variances / unit**2, np.full_like(sd, abs(r))], axis=1,
    )  # fmt: skip
    return x, unit


class PriorNet(torch.nn.Module):
    """Edge features -> a correction to ``mean / u`` (zero at initialization)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(N_FEATURES, hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, 1),
        )  # fmt: skip
        torch.nn.init.zeros_(self.body[-1].weight)
        torch.nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor, min_cost: float) -> torch.Tensor:
        """The costs in units of ``u``, one per edge: ``mean / u`` times ``exp`` of the
        correction, rescaled to a mean of 1 (the path depends on the costs' ratios only, and
        a free scale drifts down to the floor), at least ``min_cost``."""
        raw = torch.clamp(x[:, 0], min=min_cost) * torch.exp(
            torch.clamp(self.body(x).squeeze(-1), -5.0, 5.0)
        )
        return torch.clamp(raw / raw.mean(), min=min_cost)


@dataclass
class SurcoPrior(CostSearch):
    """SurCo-prior: a trained network maps each edge's features to its surrogate cost, and
    one solve gives the path (see the module docstring). Weights: ``path``, else the shipped
    ``agents/weights/surco-prior-routes.pt``. Routes only."""

    budget_units: ClassVar[tuple[str, ...]] = SEARCH_UNITS
    kinds: ClassVar[tuple[str, ...]] = ("route",)

    path: str | None = None
    """weights file (default: the shipped ones)"""
    hidden: int = 32
    """width of the two hidden layers (training)"""
    epochs: int = 40
    """passes over the train routes (training; each route costs two solver calls a pass)"""
    lr: float = 0.003
    """Adam's step size (training)"""
    lam: float = 1.0
    """blackbox differentiation's lambda (training; in units of u, dL/dy scaled to 1)"""
    min_cost: float = 1e-3
    """the least cost of an edge, in units of u"""
    net: PriorNet | None = field(default=None, repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name in ("lr", "lam", "min_cost"):
            positive(name, getattr(self, name))
        for name in ("hidden", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.path is not None:
            self.load(self.path)

    # ---- solving ----------------------------------------------------------------------------
    def prior_costs(self, base: Any) -> np.ndarray:
        """The network's costs for the route loaded in ``base`` (the env, unwrapped)."""
        if self.net is None:
            self.load(weights_path())
        assert self.net is not None
        x, unit = edge_features(base.route, base.least_expected_time)
        with torch.no_grad(), single_thread():
            costs = self.net(torch.from_numpy(x).float(), self.min_cost)
        return costs.double().numpy() * unit

    def _search(self, ev: CostEvaluator, rng: np.random.Generator) -> None:
        if ev.remaining > 0:
            ev.evaluate(self.prior_costs(ev.base))

    def _unsearched(self, ev: CostEvaluator) -> np.ndarray:
        return self.prior_costs(ev.base)  # one call: the prior's costs are the commit

    # ---- training ---------------------------------------------------------------------------
    def train(
        self,
        env: gym.Env,
        benchmarks: list[str],
        budget: Budget,
        seed: int = 0,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Fit the network on ``benchmarks`` (train routes) for ``epochs`` passes, or until
        the budget's solver calls run out; the figures."""
        base = env.unwrapped
        meter = getattr(base, "meter", None)
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        order_rng = np.random.default_rng(seed)
        self.net = PriorNet(self.hidden)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        routes = []
        for uri in benchmarks:
            base.reset(seed=seed, options={"benchmark": uri})
            if getattr(base, "kind", "route") not in self.kinds:
                continue
            x, unit = edge_features(base.route, base.least_expected_time)
            routes.append((uri, torch.from_numpy(x).float(), unit))
        if not routes:
            raise ValueError("surco-prior trains on routes: no route among the benchmarks")
        curve: list[float] = []
        calls = 0
        with single_thread():
            for _epoch in range(self.epochs):
                if meter is not None and meter.room() < 2:
                    break
                probabilities = []
                for i in order_rng.permutation(len(routes)):
                    if meter is not None and meter.room() < 2:
                        break
                    uri, x, unit = routes[i]
                    probabilities.append(self._train_step(base, uri, x, unit, optimizer, seed))
                    calls += 2
                if probabilities:
                    curve.append(float(np.mean(probabilities)))
                if progress:
                    print(f"surco-prior epoch {len(curve)}: mean on-time probability "
                          f"{curve[-1]:.4f}", flush=True)  # fmt: skip
        figures = {
            "routes": len(routes),
            "epochs": len(curve),
            "solver_calls": calls,
            "first_epoch_mean_probability": round(curve[0], 4) if curve else None,
            "last_epoch_mean_probability": round(curve[-1], 4) if curve else None,
            "wall_seconds": round(time.perf_counter() - t0, 1),
        }
        self.meta = {
            "hidden": self.hidden, "made_by": MAKE_COMMAND,
            "benchmarks": [u for u, _, _ in routes], "figures": figures,
        }  # fmt: skip
        return figures

    def _train_step(
        self, base: Any, uri: str, x: torch.Tensor, unit: float, optimizer: Any, seed: int
    ) -> float:
        """One blackbox-differentiation update on one route; the path's on-time probability."""
        assert self.net is not None
        base.reset(seed=seed, options={"benchmark": uri})
        route = base.route
        costs = self.net(x, self.min_cost)
        c = costs.detach().double().numpy()
        info = base.step(c * unit)[4]
        path, probability = list(info["path"]), float(info["probability"])
        means, variances = np.asarray(route.means), np.asarray(route.variances)
        g = loss_gradient(means, variances, route.deadline, path)
        top = float(np.max(np.abs(g)))
        if not top > 0 or not math.isfinite(top):
            return probability
        other = list(base.step(np.maximum(c + self.lam * g / top, 0.0) * unit)[4]["path"])
        y = np.zeros(len(c))
        y[path] = 1.0
        y_lam = np.zeros(len(c))
        y_lam[other] = 1.0
        grad = torch.from_numpy(-(y - y_lam) / self.lam).float()
        optimizer.zero_grad()
        costs.backward(grad)
        optimizer.step()
        return probability

    # ---- saving -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """The network's weights and the metadata (tensors, numbers and strings only)."""
        saving_weights(path, "surco-prior", self.net, FORMAT, self.meta)

    def load(self, path: str | Path) -> None:
        """Read what :meth:`save` wrote; ``ValueError`` names a file that is not one."""
        with reading_weights(path, "surco-prior", MAKE_COMMAND):
            data = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"no {FORMAT} format tag")
            net = PriorNet(int(data["hidden"]))
            net.load_state_dict(data["state_dict"])
        self.net = net.eval()
        self.meta = {k: v for k, v in data.items() if k not in ("format", "state_dict")}


@dataclass
class SurcoHybrid(SurcoZero):
    """SurCo-hybrid: the prior's costs (:class:`SurcoPrior`, weights ``path`` or the shipped
    ones) solved first, then SurCo-zero's descent from them (and its restarts around them)
    for the rest of the budget. Routes only."""

    kinds: ClassVar[tuple[str, ...]] = ("route",)

    path: str | None = None
    """the prior's weights file (default: the shipped ones)"""

    def _route_start(self, ev: CostEvaluator, unit: float) -> np.ndarray:
        return self._prior().prior_costs(ev.base) / unit

    def _unsearched(self, ev: CostEvaluator) -> np.ndarray:
        return self._prior().prior_costs(ev.base)  # one call: the prior's costs

    def _prior(self) -> SurcoPrior:
        return SurcoPrior(path=self.path)
