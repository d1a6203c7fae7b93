"""Black-box planners for ``optgym/PathPlanning2D-v0``: one budget call is one plan evaluation.

Every planner searches the open-loop plan (a vector in [-1, 1]^(2T)) with batched
``env.unwrapped.evaluate_batch`` calls, keeps the best plan seen, and commits it with one final
``step`` so the returned state replays the best plan. The env charges every evaluation (the
batches and the final step) to the budget meter; the planners keep one evaluation back for
that step. A budget needs plan evaluations (``calls``) or seconds: ``evaluate_batch`` takes no
env steps, so a steps budget alone does not bound the search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget, BudgetMeter
from optgym.state import EpisodeState

OPEN_LOOP_ID = "optgym/PathPlanning2D-v0"


class _PlanEvaluator:
    """Evaluates batches of plans within the budget and remembers the best plan. The env
    charges the evaluations; this only keeps within what is left."""

    def __init__(self, base: Any, meter: BudgetMeter, dim: int):
        self.base = base
        self.meter = meter
        self.dim = dim
        self.best_plan = np.zeros(dim)
        self.best_reward = -math.inf
        self.points: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self.trace = BestTrace()

    @property
    def remaining(self) -> int:
        """Evaluations still allowed, one kept back for the final step."""
        return self.meter.calls_left(reserve=1, steps=1)

    def evaluate(self, plans: np.ndarray) -> np.ndarray:
        """Rewards of ``plans`` (N, 2T), clipped to [-1, 1], truncated to the budget left."""
        plans = np.clip(np.asarray(plans, dtype=np.float64), -1.0, 1.0)[: self.remaining]
        if len(plans) == 0:
            return np.empty(0)
        rewards = np.asarray(self.base.evaluate_batch(plans), dtype=np.float64)
        self.points.append(plans)
        self.rewards.append(rewards)
        best = int(np.argmax(rewards))
        if rewards[best] > self.best_reward:
            self.best_reward = float(rewards[best])
            self.best_plan = plans[best].copy()
        self.trace.add(rewards)
        return rewards


class _PlanSearch:
    """Shared ``solve``: reset, run ``_search``, replay the best plan with one ``step``."""

    requires: ClassVar[tuple[str, ...]] = ("evaluate_batch",)
    # evaluate_batch takes no env steps: steps alone do not bound the search
    budget_units: ClassVar[tuple[str, ...]] = ("calls", "seconds")

    def _search(self, ev: _PlanEvaluator, rng: np.random.Generator, seed: int) -> None:
        """Spend the evaluator's budget (subclasses)."""

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        """Search plans on ``benchmark`` within ``budget``; the best plan's episode."""
        base = env.unwrapped
        seed_value = 0 if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            ev = _PlanEvaluator(base, meter, 2 * int(base.nav.horizon))
            self._search(ev, rng, seed_value)
            return solved(env, meter, replay_plan(base, benchmark, seed, ev.best_plan, ev.trace))


class BestTrace:
    """Best reward against evaluations: ``points`` holds ``[evaluations, best reward]`` each
    time a batch improves the best (what the runner plots)."""

    def __init__(self) -> None:
        self.evaluations = 0
        self.best = -math.inf
        self.points: list[list[float]] = []

    def add(self, rewards: np.ndarray) -> None:
        """Count a batch of evaluated rewards."""
        self.evaluations += len(rewards)
        top = float(np.max(rewards)) if len(rewards) else -math.inf
        if top > self.best:
            self.best = top
            self.points.append([self.evaluations, top])


def replay_plan(
    base: Any,
    benchmark: str,
    seed: int | None,
    plan: np.ndarray,
    trace: BestTrace | None = None,
) -> EpisodeState:
    """The episode of ``plan`` (its one ``step``, one evaluation the env charges): what a
    plan search returns. The state's extras hold the search's ``trace`` and ``evaluations``
    when given."""
    base.reset(seed=seed, options={"benchmark": benchmark})
    base.step(plan)
    state = base.state
    if trace is not None:
        state.extras["trace"] = trace.points
        state.extras["evaluations"] = trace.evaluations
    return state


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")


@dataclass
class RandomShooting(_PlanSearch):
    """Uniformly random plans in [-1, 1]^(2T), ``batch`` at a time; keeps the best."""

    batch: int = 100
    """plans evaluated per batch"""

    def __post_init__(self) -> None:
        _positive("batch", self.batch)
        self.batch = int(self.batch)

    def _search(self, ev: _PlanEvaluator, rng: np.random.Generator, seed: int) -> None:
        while ev.remaining > 0:
            n = min(self.batch, ev.remaining)
            ev.evaluate(rng.uniform(-1.0, 1.0, (n, ev.dim)))


@dataclass
class CrossEntropyMethod(_PlanSearch):
    """Diagonal-Gaussian CEM: sample ``population`` clipped plans, refit mean and std to the
    best ``elite_frac``; the new parameters are ``smoothing * refit + (1 - smoothing) * old``."""

    MIN_STD: ClassVar[float] = 1e-3

    population: int = 100
    """plans sampled per generation"""
    elite_frac: float = 0.1
    """fraction of a generation (the best) the Gaussian is refit to, in (0, 1]"""
    init_std: float = 0.5
    """initial standard deviation of every coordinate (action units)"""
    smoothing: float = 0.7
    """weight of the refit against the old mean and std, in (0, 1]"""

    def __post_init__(self) -> None:
        _positive("population", self.population)
        _positive("init_std", self.init_std)
        if not 0 < self.elite_frac <= 1:
            raise ValueError(f"elite_frac must be in (0, 1], got {self.elite_frac}")
        if not 0 < self.smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing}")
        self.population = int(self.population)

    def _search(self, ev: _PlanEvaluator, rng: np.random.Generator, seed: int) -> None:
        mean = np.zeros(ev.dim)
        std = np.full(ev.dim, self.init_std)
        while ev.remaining > 0:
            n = min(self.population, ev.remaining)
            plans = np.clip(mean + std * rng.standard_normal((n, ev.dim)), -1.0, 1.0)
            rewards = ev.evaluate(plans)
            k = max(1, int(round(self.elite_frac * n)))
            elites = plans[np.argsort(-rewards, kind="stable")[:k]]
            a = self.smoothing
            mean = a * elites.mean(axis=0) + (1 - a) * mean
            std = np.maximum(a * elites.std(axis=0) + (1 - a) * std, self.MIN_STD)


@dataclass
class CmaEs(_PlanSearch):
    """CMA-ES (the ``cma`` package) on minus the reward; samples are clipped to [-1, 1] for
    evaluation and told with a small penalty for the distance clipped away."""

    PENALTY: ClassVar[float] = 1e-2

    sigma0: float = 0.5
    """initial step size (action units)"""
    popsize: int | None = None
    """plans per generation (>= 2); None: CMA-ES's default, 4 + 3 ln(2T)"""

    def __post_init__(self) -> None:
        _positive("sigma0", self.sigma0)
        if self.popsize is not None and self.popsize < 2:
            raise ValueError(f"popsize must be >= 2 or None, got {self.popsize}")

    def _search(self, ev: _PlanEvaluator, rng: np.random.Generator, seed: int) -> None:
        import cma  # slow to import (it loads matplotlib): only when used

        options: dict[str, Any] = {"verbose": -9, "seed": seed + 1}
        if self.popsize is not None:
            options["popsize"] = self.popsize
        es = cma.CMAEvolutionStrategy(np.zeros(ev.dim), self.sigma0, options)
        while ev.remaining >= es.popsize:
            xs = np.array(es.ask())
            clipped = np.clip(xs, -1.0, 1.0)
            rewards = ev.evaluate(clipped)
            excess = ((xs - clipped) ** 2).sum(axis=1)
            es.tell(list(xs), list(-rewards + self.PENALTY * excess))
            if es.stop():
                es = cma.CMAEvolutionStrategy(ev.best_plan, self.sigma0, options)
        if ev.remaining > 0:  # too few calls left for a generation: sample the last ones
            x = np.clip(np.array(es.ask(ev.remaining)), -1.0, 1.0)
            ev.evaluate(x)


@dataclass
class Mppi(_PlanSearch):
    """Model-predictive path integral on the open-loop plan: perturb the nominal plan with
    Gaussian noise, average the perturbations weighted by ``exp((r - max r) / temperature)``."""

    population: int = 100
    """perturbed plans per iteration"""
    noise_std: float = 0.5
    """standard deviation of the perturbations (action units)"""
    temperature: float = 0.1
    """temperature of the exponential weights (reward units)"""

    def __post_init__(self) -> None:
        _positive("population", self.population)
        _positive("noise_std", self.noise_std)
        _positive("temperature", self.temperature)
        self.population = int(self.population)

    def _search(self, ev: _PlanEvaluator, rng: np.random.Generator, seed: int) -> None:
        nominal = np.zeros(ev.dim)
        while ev.remaining > 0:
            n = min(self.population, ev.remaining)
            noise = self.noise_std * rng.standard_normal((n, ev.dim))
            plans = np.clip(nominal + noise, -1.0, 1.0)
            rewards = ev.evaluate(plans)
            weights = np.exp((rewards - rewards.max()) / self.temperature)
            weights /= weights.sum()
            nominal = np.clip(weights @ plans, -1.0, 1.0)


@dataclass
class Voo(_PlanSearch):
    """Voronoi Optimistic Optimization (Kim et al. 2020): with probability ``exploit_prob`` a
    sample from the Voronoi cell of the best plan so far (Gaussian around it, accepted when the
    best plan is its nearest evaluated plan; the spread halves on each rejection), else a
    uniform one; ``batch`` samples at a time."""

    MAX_TRIES: ClassVar[int] = 12

    batch: int = 50
    """plans evaluated per batch"""
    exploit_prob: float = 0.5
    """probability that a sample comes from the best plan's Voronoi cell, in [0, 1]"""

    def __post_init__(self) -> None:
        _positive("batch", self.batch)
        if not 0 <= self.exploit_prob <= 1:
            raise ValueError(f"exploit_prob must be in [0, 1], got {self.exploit_prob}")
        self.batch = int(self.batch)

    def _cell_samples(self, ev: _PlanEvaluator, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` plans in (or, after ``MAX_TRIES`` rejections, next to) the best plan's
        Voronoi cell."""
        points = np.concatenate(ev.points)
        best = ev.best_plan
        sq_points = (points**2).sum(axis=1)
        dist_best = np.sqrt(((points - best) ** 2).sum(axis=1))
        others = dist_best[dist_best > 0]
        radius = float(others.min()) if len(others) else 2.0 * math.sqrt(ev.dim)
        std = np.full(count, radius / math.sqrt(ev.dim))
        out = np.empty((count, ev.dim))
        todo = np.arange(count)
        for _ in range(self.MAX_TRIES):
            cand = np.clip(best + std[todo, None] * rng.standard_normal((len(todo), ev.dim)), -1, 1)
            sq = sq_points[None, :] - 2.0 * cand @ points.T
            to_best = ((cand - best) ** 2).sum(axis=1) - (cand**2).sum(axis=1)
            ok = to_best <= sq.min(axis=1) + 1e-12
            out[todo] = cand
            std[todo[~ok]] *= 0.5
            todo = todo[~ok]
            if len(todo) == 0:
                break
        return out

    def _search(self, ev: _PlanEvaluator, rng: np.random.Generator, seed: int) -> None:
        while ev.remaining > 0:
            n = min(self.batch, ev.remaining)
            plans = rng.uniform(-1.0, 1.0, (n, ev.dim))
            if ev.points:
                exploit = rng.random(n) < self.exploit_prob
                if exploit.any():
                    plans[exploit] = self._cell_samples(ev, rng, int(exploit.sum()))
            ev.evaluate(plans)
