"""What every agent of ``optgym/SurrogateOptimization-v0`` shares: trying surrogate cost
vectors within the budget and committing the best.

An agent tries cost vectors one env step each (one solver call the env charges), keeps the
best on-time probability seen, and returns the episode of that one cost vector: a reset and
one step that replays it, so a result line holds one action, however long the search. One
solver call is kept back for that step (none is spent on it when the search's only step was
the best one). With no call to spare for a search, the agent commits the means: the path of
least expected time.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget, BudgetMeter


class CostEvaluator:
    """Steps the env (``env.unwrapped``) with cost vectors while the budget allows one more
    call after them, and remembers the best; the env charges the calls."""

    def __init__(self, base: Any, meter: BudgetMeter):
        self.base = base
        self.meter = meter
        self.route = base.route
        self.best_costs: np.ndarray | None = None
        self.best_probability = -math.inf
        self.evaluations = 0

    @property
    def remaining(self) -> int:
        """Cost vectors the search may still try, one call kept back for the commit."""
        return self.meter.room(reserve=1)

    def evaluate(self, costs: np.ndarray) -> tuple[list[int], float]:
        """The shortest path under ``costs`` and its on-time probability (one solver call)."""
        costs = np.asarray(costs, dtype=np.float64)
        info = self.base.step(costs)[4]
        self.evaluations += 1
        probability = float(info["probability"])
        if probability > self.best_probability:
            self.best_probability = probability
            self.best_costs = costs.copy()
        return list(info["path"]), probability


class CostSearch:
    """Shared ``solve``: reset, run ``_search``, commit the best cost vector."""

    def _search(self, ev: CostEvaluator, rng: np.random.Generator) -> None:
        """Try cost vectors with ``ev`` while ``ev.remaining`` (subclasses)."""

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        """Search surrogate costs on ``benchmark`` within ``budget``; the best one's episode."""
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            ev = CostEvaluator(base, meter)
            self._search(ev, rng)
            if ev.evaluations != 1 or ev.best_costs is None:  # else the episode is the best
                base.reset(seed=seed, options={"benchmark": benchmark})
                best = ev.best_costs if ev.best_costs is not None else ev.route.means
                base.step(best)
            return solved(env, meter)


def clip_costs(costs: np.ndarray) -> np.ndarray:
    """``costs`` with every negative entry raised to 0 (the solver needs costs >= 0)."""
    return np.maximum(np.asarray(costs, dtype=np.float64), 0.0)


def positive(name: str, value: float) -> None:
    """``ValueError`` unless ``value`` is a finite number > 0."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


#: Budget units of which a search that runs until the budget is spent needs one limited.
SEARCH_UNITS = ("calls", "steps", "seconds")
