"""Baselines for ``optgym/SurrogateOptimization-v0``: the expected-value path, the
mean-variance heuristic and random surrogate costs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from optgym.agents.surco.search import SEARCH_UNITS, CostEvaluator, CostSearch, clip_costs, positive


@dataclass
class ExpectedValuePath(CostSearch):
    """The path of least expected travel time: the means as costs (one solver call)."""

    stochastic: ClassVar[bool] = False

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
class RandomSearch(CostSearch):
    """Random surrogate costs: each edge's mean times ``exp(spread * z)``, ``z`` standard
    normal (seeded), one cost vector a solver call until the budget is spent; keeps the
    best."""

    budget_units: ClassVar[tuple[str, ...]] = SEARCH_UNITS

    spread: float = 1.0
    """standard deviation of the log-normal factor on every mean"""

    def __post_init__(self) -> None:
        positive("spread", self.spread)

    def _search(self, ev: CostEvaluator, rng: np.random.Generator) -> None:
        means = ev.route.means
        while ev.remaining > 0:
            ev.evaluate(means * np.exp(self.spread * rng.standard_normal(len(means))))
