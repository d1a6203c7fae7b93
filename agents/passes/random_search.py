"""Random search: random action sequences from the start state, keep the best prefix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget


@dataclass
class RandomSearchAgent:
    """Plays episodes of uniformly random actions until the budget is spent and returns
    the best state seen along any of them (a prefix of an episode)."""

    budget_units: ClassVar[tuple[str, ...]] = ("calls", "steps", "seconds")  # searches until spent

    episode_length: int = 32
    """actions per random episode"""

    def __post_init__(self) -> None:
        if self.episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {self.episode_length}")

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            best = base.state
            while meter.room() > 0:
                base.reset(options={"benchmark": benchmark})
                for _ in range(self.episode_length):
                    info = base.step(int(rng.integers(base.action_space.n)))[4]
                    if "error" in info:
                        break
                    if base.episode_reward > best.reward + 1e-12:
                        best = base.state
                    if meter.room() == 0:
                        break
            return solved(env, meter, best)
