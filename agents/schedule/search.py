"""Baselines for ``ScheduleSearch-v0``: Halide's autoschedulers and random schedule search.

For this env one budget call is one measurement of a complete schedule (a compile and its
timing, or a cache hit), counted by the env.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, solved
from optgym.agents.reference import ReferenceAgent
from optgym.budget import Budget
from optgym.envs.schedule.actions import sample_action
from optgym.envs.schedule.env import REFERENCES


@dataclass
class HalideAutoscheduler(ReferenceAgent):
    """Schedules the whole pipeline with one of Halide's autoschedulers (the env's
    references) and measures it once."""

    reference: str = "Adams2019-beam32"
    """the env's reference: Adams2019-beam1, Adams2019-beam32, Mullapudi2016, Li2018, naive"""

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ValueError(
                f"unknown reference {self.reference!r}; allowed: {', '.join(REFERENCES)}"
            )


@dataclass
class ScheduleRandomSearch:
    """Schedules every stage with a uniformly random legal action (each component uniform
    over its legal values), measures the schedule, repeats until the budget (calls or
    seconds) has no room for another episode, and returns the fastest schedule. Failed
    schedules are skipped."""

    budget_units: ClassVar[tuple[str, ...]] = ("calls", "steps", "seconds")  # searches until spent

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        best, error = None, None
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            while meter.calls_left(steps=len(base.stage_names)) > 0:
                base.reset(seed=seed, options={"benchmark": benchmark})
                done, info = False, {}
                while not done:
                    _, _, terminated, truncated, info = base.step(sample_action(base.masks(), rng))
                    done = terminated or truncated
                if "error" in info:
                    error = info["error"]
                    continue
                if best is None or base.state.reward > best.reward:
                    best = base.state
            if best is None:
                raise RuntimeError(f"no random schedule of {benchmark} could be measured: {error}")
            return solved(env, meter, best)


__all__ = ["HalideAutoscheduler", "ScheduleRandomSearch"]
