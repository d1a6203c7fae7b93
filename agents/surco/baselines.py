"""Baselines for ``optgym/SurrogateOptimization-v0``: the expected-value path and the
mean-variance heuristic (routes), the greedy placement (sharding), and random surrogate costs
(both kinds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from optgym.agents.surco.search import SEARCH_UNITS, CostEvaluator, CostSearch, clip_costs, positive


@dataclass
class ExpectedValuePath(CostSearch):
    """The path of least expected travel time: the means as costs (one solver call)."""

    stochastic: ClassVar[bool] = False
    kinds: ClassVar[tuple[str, ...]] = ("route",)

    def _search(self, ev: CostEvaluator, rng: np.random.Generator) -> None:
        if ev.remaining > 0:
            ev.evaluate(ev.route.means)


@dataclass
class MeanVariance(CostSearch):
    """The mean-variance heuristic: costs ``mean + lambda * variance`` (clipped at 0) for
    ``lambda`` on a grid of both signs, the best path kept. ``lambda > 0`` prefers safe
    roads (a loose deadline), ``lambda < 0`` risky ones (a deadline below the least
    expected time). The grid is 0, then ``n_lambdas // 2`` magnitudes spaced geometrically
    from ``max_lambda / 100`` to ``max_lambda``, in units of the route's mean edge mean over
    its mean edge variance, each tried with the sign the deadline favours first; at most
    ``n_lambdas`` solver calls (and the commit)."""

    stochastic: ClassVar[bool] = False
    kinds: ClassVar[tuple[str, ...]] = ("route",)

    n_lambdas: int = 21
    """values of lambda tried (0 and both signs of n_lambdas // 2 magnitudes)"""
    max_lambda: float = 2.0
    """the largest magnitude, in units of the mean edge mean / the mean edge variance"""

    def __post_init__(self) -> None:
        if isinstance(self.n_lambdas, bool) or not isinstance(self.n_lambdas, int):
            raise ValueError(f"n_lambdas must be an integer >= 1, got {self.n_lambdas!r}")
        if self.n_lambdas < 1:
            raise ValueError(f"n_lambdas must be >= 1, got {self.n_lambdas}")
        positive("max_lambda", self.max_lambda)

    def lambdas(self, ev: CostEvaluator) -> list[float]:
        """The grid, in the order it is tried."""
        route = ev.route
        variance = float(np.mean(route.variances))
        unit = float(np.mean(route.means)) / variance if variance > 0 else 0.0
        m = self.n_lambdas // 2
        magnitudes = np.geomspace(self.max_lambda / 100, self.max_lambda, m) if m else []
        first = -1.0 if route.deadline < ev.base.least_expected_time else 1.0
        out = [0.0]
        for a in magnitudes:
            out += [first * a * unit, -first * a * unit]
        return out[: self.n_lambdas]

    def _search(self, ev: CostEvaluator, rng: np.random.Generator) -> None:
        route = ev.route
        for lam in self.lambdas(ev):
            if ev.remaining <= 0:
                return
            ev.evaluate(clip_costs(route.means + lam * route.variances))


@dataclass
class GreedySharding(CostSearch):
    """The greedy placement of a sharding instance
    (:func:`optgym.datasets.surco.sharding.greedy_placement`: tables by decreasing load, each
    on the device with room whose latency is lowest once it is added), committed through
    one solver call with the costs that give exactly it (0 for each table's device, 1
    elsewhere). Where the greedy placement does not fit, the env's reference placement."""

    stochastic: ClassVar[bool] = False
    kinds: ClassVar[tuple[str, ...]] = ("sharding",)

    def _search(self, ev: CostEvaluator, rng: np.random.Generator) -> None:
        if ev.remaining > 0:
            ev.evaluate(ev.default_costs)


@dataclass
class RandomSearch(CostSearch):
    """Random surrogate costs, one cost vector a solver call until the budget is spent;
    keeps the best. On a route, each edge's mean times ``exp(spread * z)``; on a sharding
    instance, the cost of table ``i`` on device ``d`` is the table's load over the mean
    table load times ``exp(spread * z[i, d])`` (a hot table's preference weighs more against
    the capacities); ``z`` standard normal (seeded)."""

    budget_units: ClassVar[tuple[str, ...]] = SEARCH_UNITS

    spread: float = 1.0
    """standard deviation of the log-normal factor on every mean"""

    def __post_init__(self) -> None:
        positive("spread", self.spread)

    def _search(self, ev: CostEvaluator, rng: np.random.Generator) -> None:
        if ev.route is not None:
            base = ev.route.means
        else:
            loads = ev.sharding.loads
            scale = float(np.mean(loads)) or 1.0
            base = np.repeat(loads / scale, ev.sharding.n_devices)
        while ev.remaining > 0:
            ev.evaluate(base * np.exp(self.spread * rng.standard_normal(len(base))))
