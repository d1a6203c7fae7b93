"""Greedy search: each step try every action on a fork, keep the best, stop at no gain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget


@dataclass
class GreedySearchAgent:
    """At each step, tries every action from the current state (``try_actions``: each on a
    ``fork()`` of the LLVM worker, all in one request), takes the one with the largest
    reward, and stops when no action gains or the budget is spent. Ties go to the lowest
    action number, so the search is deterministic."""

    stochastic: ClassVar[bool] = False  # the seed changes nothing

    min_gain: float = 1e-12
    """the smallest reward a step must earn to be taken"""

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            while meter.room() > 0:
                room = meter.room(reserve=1)  # keep one for the step itself
                # Tries stop when the budget's seconds do; the step may use their grace.
                b = meter.budget
                limit = None if b.seconds is None else b.seconds - meter.seconds
                tried = base.try_actions(list(range(min(base.action_space.n, room))), limit)
                gains = np.where(np.isnan(tried), -np.inf, tried)
                if not len(gains) or gains.max() <= self.min_gain:
                    break
                info = base.step(int(np.argmax(gains)))[4]  # the first of the best
                if "error" in info:
                    raise RuntimeError(info["error"])
                if meter.exhausted:
                    break
            return solved(env, meter)
