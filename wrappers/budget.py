"""Enforce a budget on any OptGym env and record what was spent in ``info["budget"]``."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from optgym.budget import Budget, BudgetMeter


class BudgetWrapper(gym.Wrapper):
    """Meter an OptGym env against a budget: its work units (the env's ``work_unit``:
    compilations, measurements, ...), its steps and wall time.

    The meter is attached to ``env.unwrapped``, so the env charges it wherever it works:
    steps of this wrapper, steps of ``env.unwrapped`` and of its forks, batched evaluations.
    A step that spends the budget is truncated; work asked for past it raises
    :class:`optgym.budget.BudgetExceeded` and is not done. By default the budget covers
    everything from the wrapper's creation (the runner's use: one budget for a whole solve,
    across resets); ``per_episode=True`` starts a new budget at each reset.

    >>> env = BudgetWrapper(gym.make("optgym/PassOrdering-v0"), Budget(calls=100))
    """

    def __init__(self, env: gym.Env, budget: Budget, per_episode: bool = False):
        super().__init__(env)
        if not hasattr(env.unwrapped, "attach_meter"):
            raise ValueError(f"BudgetWrapper needs an OptGym env, got {type(env.unwrapped)}")
        self.budget = budget
        self.per_episode = per_episode
        self.meter = BudgetMeter(budget)
        env.unwrapped.attach_meter(self.meter)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if self.per_episode:
            self.meter = BudgetMeter(self.budget)
            self.env.unwrapped.attach_meter(self.meter)
        obs, info = self.env.reset(**kwargs)
        info["budget"] = self.meter.used()
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["budget"] = self.meter.used()
        if self.meter.exhausted and not terminated:
            truncated = True
        return obs, reward, terminated, truncated, info

    def detach(self) -> None:
        """Stop metering the env (it can be wrapped again); the counts stay in ``meter``."""
        if self.env.unwrapped.meter is self.meter:
            self.env.unwrapped.attach_meter(None)

    def close(self) -> None:
        self.detach()
        super().close()
