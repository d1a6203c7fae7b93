"""SurCo-zero (Ferber et al., ICML 2023) for ``optgym/SurrogateOptimization-v0``: gradient
descent on the surrogate costs of one instance, through the shortest-path solver by
blackbox differentiation (Vlastelica et al., "Differentiation of Blackbox Combinatorial
Solvers", ICLR 2020).

With ``y(c)`` the indicator of the shortest path under costs ``c`` and the loss
``L(y) = -Phi((d - m.y) / sqrt(v.y))`` (minus the on-time probability), the gradient of
``L(y(c))`` is piecewise zero; blackbox differentiation replaces it by that of a continuous
interpolation: solve again at ``c' = c + lambda * dL/dy`` for ``y_lambda``, and take
``-(y - y_lambda) / lambda``. ``dL/dy`` is analytic: with ``mu = m.y``, ``s**2 = v.y`` and
``z = (d - mu) / s``, ``dL/dy_e = phi(z) * (m_e / s + (d - mu) * v_e / (2 s**3))``. Edges of
a path that arrives late (``z < 0``) are made cheaper the larger their variance.

The descent is local: when every interpolation gives the path it stands on, it restarts
from randomly scaled means (seeded), so that the whole budget is used.

On a sharding instance ``y`` is the placement's indicator ``x[i, d]`` (flattened as the
action) and the loss the slowest device's latency, smoothed by log-sum-exp:
``L(x) = tau * log(sum_d exp(latency_d(x) / tau))`` with ``tau = temperature * max_d
latency_d``, so that ``dL/dx[i, d] = softmax_d(latency / tau) * d latency_d / d x[i, d]``
(:func:`sharding_loss_gradient`; the latency's derivative is analytic:
:func:`optgym.datasets.surco.sharding.latency_gradient`). The hard max would give no
direction to any device but the slowest; the smooth one also ranks the others, the busier
ones costlier. The descent starts from the greedy placement's costs, 0 on each table's
device and elsewhere the table's load over the mean table load (so its first solve is the
greedy placement, and a perturbation, which grows with the load, moves light tables before
hot ones), and a stalled descent restarts from the best costs so far times
``exp(restart_spread * z)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from optgym.agents.surco.search import SEARCH_UNITS, CostEvaluator, CostSearch, positive
from optgym.datasets.surco.sharding import ShardingInstance, latency_gradient


def loss_gradient(
    means: np.ndarray, variances: np.ndarray, deadline: float, path: list[int]
) -> np.ndarray:
    """``dL/dy`` at the indicator of ``path`` for ``L(y) = -Phi((d - m.y) / sqrt(v.y))``
    (one entry per edge). A path of no variance is taken to have a tiny one, so that the
    gradient keeps its direction."""
    mu = math.fsum(float(means[e]) for e in path)
    var = math.fsum(float(variances[e]) for e in path)
    s = math.sqrt(max(var, 1e-12 * max(mu * mu, 1.0)))
    z = (deadline - mu) / s
    phi = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return phi * (means / s + (deadline - mu) * variances / (2.0 * s**3))


def sharding_loss_gradient(
    instance: ShardingInstance, placement: list[int], temperature: float
) -> np.ndarray:
    """``dL/dx`` (flattened ``(T, D)``) at ``placement`` for the log-sum-exp smooth maximum
    of the device latencies at temperature ``temperature`` times the largest latency."""
    latencies = np.asarray(instance.device_latencies(placement))
    top = float(latencies.max())
    tau = temperature * top if top > 0 else 1.0
    weights = np.exp((latencies - top) / tau)
    weights /= weights.sum()
    return (latency_gradient(instance, placement) * weights[None, :]).ravel()


@dataclass
class SurcoZero(CostSearch):
    """SurCo-zero: per-instance Adam on the surrogate costs, through the solver by blackbox
    differentiation, from the means; keeps the best path any solve gives. Each gradient
    step costs two solver calls (``y(c)`` and ``y_lambda``). When ``y_lambda`` equals
    ``y``, the perturbation doubles (at most 64-fold) for the next try; past that the
    descent has stalled (every interpolation gives the same path) and, while the budget
    lasts, starts again from the means times ``exp(restart_spread * z)``, ``z`` standard
    normal from the seed (``restart_spread=0``: stop instead). Costs are kept at least
    ``min_cost``; ``lr``, ``lam`` and ``min_cost`` are in units of the route's mean edge
    mean, and ``dL/dy`` is scaled to a largest entry of 1 (only its direction counts)."""

    budget_units: ClassVar[tuple[str, ...]] = SEARCH_UNITS
    MAX_GROWTH: ClassVar[float] = 64.0

    lr: float = 0.1
    """Adam's step size (units of the mean edge mean)"""
    lam: float = 1.0
    """blackbox differentiation's lambda: the size of the perturbation c' - c (units of the
    mean edge mean, dL/dy scaled to a largest entry of 1)"""
    steps: int | None = None
    """gradient steps at most, over every restart (each two solver calls); None: until the
    budget is spent"""
    min_cost: float = 1e-3
    """the least cost an edge keeps (units of the mean edge mean)"""
    restart_spread: float = 0.5
    """standard deviation of the log-normal factor on the means (sharding: the best costs) a
    stalled descent restarts from; 0: no restart"""
    temperature: float = 0.1
    """sharding only: the log-sum-exp temperature of the smooth maximum latency, in units of
    the largest device latency"""

    def __post_init__(self) -> None:
        positive("lr", self.lr)
        positive("lam", self.lam)
        positive("min_cost", self.min_cost)
        positive("temperature", self.temperature)
        if not (isinstance(self.restart_spread, (int, float)) and self.restart_spread >= 0
                and math.isfinite(self.restart_spread)):  # fmt: skip
            raise ValueError(f"restart_spread must be a finite number >= 0, got "
                             f"{self.restart_spread!r}")  # fmt: skip
        if self.steps is not None and (
            isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1
        ):
            raise ValueError(f"steps must be None or an integer >= 1, got {self.steps!r}")

    def _search(self, ev: CostEvaluator, rng: np.random.Generator) -> None:
        self._taken = 0
        if ev.sharding is not None:
            # the greedy placement's costs, each table's margin its load over the mean load:
            # a perturbation moves light tables before hot ones
            loads = ev.sharding.loads
            margin = loads / (float(np.mean(loads)) or 1.0)
            start = ev.default_costs * np.repeat(margin, ev.sharding.n_devices)
            while self._descend(ev, np.maximum(start, self.min_cost), 1.0) and (
                self.restart_spread > 0
            ):
                best = ev.best_costs if ev.best_costs is not None else start
                start = best * np.exp(self.restart_spread * rng.standard_normal(len(best)))
            return
        means = np.asarray(ev.route.means, dtype=np.float64)
        unit = float(np.mean(means)) or 1.0
        first = self._route_start(ev, unit)
        start = first
        while self._descend(ev, np.maximum(start, self.min_cost), unit) and (
            self.restart_spread > 0
        ):
            start = first * np.exp(self.restart_spread * rng.standard_normal(len(means)))

    def _route_start(self, ev: CostEvaluator, unit: float) -> np.ndarray:
        """The costs a route's descent starts (and restarts) from, in units of ``unit`` (the
        mean edge mean): the means."""
        return np.asarray(ev.route.means, dtype=np.float64) / unit

    def _gradient(self, ev: CostEvaluator, solution: list[int]) -> np.ndarray:
        """``dL/dy`` at ``solution`` (a route's path, a sharding instance's placement)."""
        if ev.sharding is not None:
            return sharding_loss_gradient(ev.sharding, solution, self.temperature)
        route = ev.route
        return loss_gradient(np.asarray(route.means), np.asarray(route.variances),
                             route.deadline, solution)  # fmt: skip

    @staticmethod
    def _indicator(ev: CostEvaluator, solution: list[int], size: int) -> np.ndarray:
        """``y``: 1 on a path's edges, or on each table's device (index ``i * D + d``)."""
        y = np.zeros(size)
        if ev.sharding is not None:
            y[np.arange(len(solution)) * ev.sharding.n_devices + np.asarray(solution)] = 1.0
        else:
            y[solution] = 1.0
        return y

    def _descend(self, ev: CostEvaluator, w: np.ndarray, unit: float) -> bool:
        """Adam from the costs ``w`` until the budget or ``steps`` run out (False) or the
        descent stalls (True)."""
        m1, m2 = np.zeros_like(w), np.zeros_like(w)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        growth, taken = 1.0, 0
        path: list[int] | None = None
        while self.steps is None or self._taken < self.steps:
            if path is None:
                if ev.remaining <= 0:
                    return False
                path = ev.evaluate(w * unit)[0]
            g = self._gradient(ev, path)
            top = float(np.max(np.abs(g)))
            if not top > 0:
                return True  # no direction left
            if ev.remaining <= 0:
                return False
            lam = self.lam * growth
            other = ev.evaluate(np.maximum(w + lam * g / top, 0.0) * unit)[0]
            same = other == path if ev.sharding is not None else set(other) == set(path)
            if same:  # the perturbation moved nothing: push harder
                if growth >= self.MAX_GROWTH:
                    return True
                growth *= 2.0
                continue
            y = self._indicator(ev, path, len(w))
            y_lam = self._indicator(ev, other, len(w))
            grad = -(y - y_lam) / lam
            taken += 1
            self._taken += 1
            m1 = beta1 * m1 + (1 - beta1) * grad
            m2 = beta2 * m2 + (1 - beta2) * grad * grad
            step = (m1 / (1 - beta1**taken)) / (np.sqrt(m2 / (1 - beta2**taken)) + eps)
            w = np.maximum(w - self.lr * step, self.min_cost)
            growth, path = 1.0, None
        return False
