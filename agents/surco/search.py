"""What every agent of ``optgym/SurrogateOptimization-v0`` shares: trying surrogate cost
vectors within the budget and committing the best.

An agent tries cost vectors one env step each (one solver call the env charges), keeps the
best score seen (the on-time probability of a route's path, the speedup of a sharding
placement), and returns the episode of that one cost vector: a reset and one step that
replays it, so a result line holds one action, however long the search. One solver call is
kept back for that step (none is spent on it when the search's only step was the best one).
With no call to spare for a search, the agent commits the kind's default costs
(:attr:`CostEvaluator.default_costs`): a route's means (the path of least expected time), a
sharding instance's greedy placement.

An agent names the kinds of instance it solves (``kinds``); on another kind its ``solve``
raises ``ValueError`` saying which it solves.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget, BudgetMeter
from optgym.datasets.surco.sharding import greedy_placement, placement_costs


class CostEvaluator:
    """Steps the env (``env.unwrapped``) with cost vectors while the budget allows one more
    call after them, and remembers the best; the env charges the calls."""

    def __init__(self, base: Any, meter: BudgetMeter):
        self.base = base
        self.meter = meter
        self.kind: str = base.kind
        self.route = base.route  # None on a sharding instance
        self.sharding = base.sharding  # None on a route
        self.best_costs: np.ndarray | None = None
        self.best_score = -math.inf
        self.evaluations = 0

    @property
    def default_costs(self) -> np.ndarray:
        """What an agent commits without a search: a route's means; on a sharding instance,
        the costs that give the greedy placement (the env's reference placement when the
        greedy one does not fit)."""
        if self.route is not None:
            return np.asarray(self.route.means, dtype=np.float64)
        placement = greedy_placement(self.sharding)
        if placement is None:
            placement = self.base.reference_placement
        return placement_costs(placement, self.sharding.n_devices)

    @property
    def remaining(self) -> int:
        """Cost vectors the search may still try, one call kept back for the commit."""
        return self.meter.room(reserve=1)

    def evaluate(self, costs: np.ndarray) -> tuple[list[int], float]:
        """The solution under ``costs`` and its score, higher better (one solver call): a
        route's shortest path (edge indices) and its on-time probability, or a sharding
        instance's placement (a device per table) and its speedup over the reference."""
        costs = np.asarray(costs, dtype=np.float64)
        info = self.base.step(costs)[4]
        if "error" in info:  # the solver failed: the episode is over
            raise RuntimeError(f"the env's solver failed: {info['error']}")
        self.evaluations += 1
        if self.kind == "route":
            solution, score = list(info["path"]), float(info["probability"])
        else:
            solution, score = list(info["placement"]), float(info["speedup"])
        if score > self.best_score:
            self.best_score = score
            self.best_costs = costs.copy()
        return solution, score


class CostSearch:
    """Shared ``solve``: reset, check the instance's kind, run ``_search``, commit the best
    cost vector."""

    #: The kinds of instance the agent solves.
    kinds: ClassVar[tuple[str, ...]] = ("route", "sharding")

    def _search(self, ev: CostEvaluator, rng: np.random.Generator) -> None:
        """Try cost vectors with ``ev`` while ``ev.remaining`` (subclasses)."""

    def _unsearched(self, ev: CostEvaluator) -> np.ndarray:
        """What the agent commits when its search tried nothing (a budget of one call):
        ``ev.default_costs`` unless the agent knows better without a solve."""
        return ev.default_costs

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        """Search surrogate costs on ``benchmark`` within ``budget``; the best one's episode."""
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            if base.kind not in self.kinds:
                raise ValueError(
                    f"{type(self).__name__} solves {' and '.join(self.kinds)} instances only; "
                    f"{benchmark} is a {base.kind} instance"
                )
            ev = CostEvaluator(base, meter)
            self._search(ev, rng)
            if ev.evaluations != 1 or ev.best_costs is None:  # else the episode is the best
                base.reset(seed=seed, options={"benchmark": benchmark})
                best = ev.best_costs if ev.best_costs is not None else self._unsearched(ev)
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
