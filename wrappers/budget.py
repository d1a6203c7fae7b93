"""Enforce a budget on any OptGym env and record what was spent in ``info["budget"]``."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from optgym.budget import Budget, BudgetMeter


class BudgetWrapper(gym.Wrapper):
    """Truncate the episode once the budget is spent.

    Counts steps, wall time since ``reset`` and the env's own unit of work, which the env
    reports per step in ``info["compilation_calls"]`` (or ``info["calls"]``); a step without
    it counts as one call.

    >>> env = BudgetWrapper(gym.make("optgym/PassOrdering-v0"), Budget(calls=100))
    """

    def __init__(self, env: gym.Env, budget: Budget):
        super().__init__(env)
        self.budget = budget
        self.meter = BudgetMeter(budget)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.meter = BudgetMeter(self.budget)
        obs, info = self.env.reset(**kwargs)
        info["budget"] = self.meter.used()
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self.meter.exhausted:
            raise RuntimeError(f"budget {self.budget} is spent ({self.meter.used()}); call reset()")
        obs, reward, terminated, truncated, info = self.env.step(action)
        calls = info.get("compilation_calls", info.get("calls", 1))
        self.meter.charge(calls=int(calls), steps=1)
        info["budget"] = self.meter.used()
        if self.meter.exhausted and not terminated:
            truncated = True
        return obs, reward, terminated, truncated, info
