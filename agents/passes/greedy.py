"""Greedy search: each step try every action on a fork, keep the best, stop at no gain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget


@dataclass
class GreedySearchAgent:
    """At each step, runs every action on a ``fork()`` of the env, takes the one with the
    largest reward, and stops when no action gains or the budget is spent. Ties go to the
    lowest action number, so the search is deterministic."""

    stochastic: ClassVar[bool] = False  # the seed changes nothing

    min_gain: float = 1e-12
    """the smallest reward a step must earn to be taken"""

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            while meter.room() > 0:
                best_action, best_reward = None, self.min_gain
                for action in range(base.action_space.n):
                    if meter.room(reserve=1) == 0:  # keep one for the step itself
                        break
                    trial = base.fork()
                    try:
                        _, reward, _, _, info = trial.step(action)
                    finally:
                        trial.close()
                    if "error" not in info and reward > best_reward:
                        best_action, best_reward = action, reward
                if best_action is None:
                    break
                info = base.step(best_action)[4]
                if "error" in info:
                    raise RuntimeError(info["error"])
                if meter.exhausted:
                    break
            return solved(env, meter)
