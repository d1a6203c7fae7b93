"""Baselines for ``ScheduleSearch-v0``: Halide's autoschedulers and random schedule search.

For this env one budget call is one measurement of a complete schedule (a compile and its
timing).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result
from optgym.agents.reference import ReferenceAgent
from optgym.budget import Budget, BudgetMeter
from optgym.envs.schedule.actions import sample_action

#: env reference name -> agent name
AUTOSCHEDULER_NAMES = {
    "naive": "naive",
    "Adams2019-beam1": "adams2019-b1",
    "Adams2019-beam32": "adams2019-b32",
    "Mullapudi2016": "mullapudi2016",
    "Li2018": "li2018",
}


class HalideAutoscheduler(ReferenceAgent):
    """Schedules the whole pipeline with one of Halide's autoschedulers (``REFERENCES`` of
    the env: ``"Adams2019-beam1"``, ``"Adams2019-beam32"``, ``"Mullapudi2016"``,
    ``"Li2018"``, or ``"naive"``) and measures it once."""

    def __init__(self, reference: str):
        super().__init__(reference)
        self.name = AUTOSCHEDULER_NAMES.get(reference, reference.lower())


class ScheduleRandomSearch:
    """Schedules every stage with a uniformly random legal action (each component uniform
    over its legal values), measures the schedule, repeats until the budget (calls or
    seconds) is spent, and returns the fastest schedule. Failed schedules are skipped."""

    name = "schedule-random"

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        budget.require_limit("schedule random search")
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        meter = BudgetMeter(budget)
        best, error = None, None
        while not meter.exhausted:
            base.reset(seed=seed, options={"benchmark": benchmark})
            done, info = False, {}
            while not done:
                _, _, done, _, info = base.step(sample_action(base.masks(), rng))
                meter.charge(steps=1)
            meter.charge(calls=1)
            if "error" in info:
                error = info["error"]
                continue
            if best is None or base.state.reward > best.reward:
                best = base.state
        if best is None:
            raise RuntimeError(f"no random schedule of {benchmark} could be measured: {error}")
        return Result(state=best, budget_used=meter.used())


__all__ = ["AUTOSCHEDULER_NAMES", "HalideAutoscheduler", "ScheduleRandomSearch"]
