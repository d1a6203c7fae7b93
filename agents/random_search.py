"""Random search: random action sequences from the start state, keep the best prefix."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result
from optgym.budget import Budget, BudgetMeter


class RandomSearchAgent:
    """Plays episodes of ``episode_length`` uniformly random actions until the budget is
    spent and returns the best state seen along any of them (a prefix of an episode)."""

    name = "random"

    def __init__(self, episode_length: int = 32):
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.episode_length = episode_length

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        budget.require_limit("random search")
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        meter = BudgetMeter(budget)
        base.reset(seed=seed, options={"benchmark": benchmark})
        best = base.state
        while not meter.exhausted:
            base.reset(options={"benchmark": benchmark})
            for _ in range(self.episode_length):
                action = int(rng.integers(base.action_space.n))
                info = base.step(action)[4]
                meter.charge(calls=int(info.get("compilation_calls", 1)), steps=1)
                if "error" in info:
                    break
                if base.episode_reward > best.reward + 1e-12:
                    best = base.state
                if meter.exhausted:
                    break
        return Result(state=best, budget_used=meter.used())
