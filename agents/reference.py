"""Reference agents: an env's own reference (LLVM's -Oz, -O3, a Halide autoscheduler)."""

from __future__ import annotations

import gymnasium as gym

from optgym.agents.protocol import Result
from optgym.budget import Budget, BudgetMeter


class ReferenceAgent:
    """Applies the env's reference once (``env.apply_reference(name)``: ``"Oz"``, ``"O3"``,
    ``"O0"`` for pass ordering, an autoscheduler for schedule search)."""

    def __init__(self, reference: str):
        self.reference = reference
        self.name = reference.lower()

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        meter = BudgetMeter(budget)
        base = env.unwrapped
        base.reset(seed=seed, options={"benchmark": benchmark})
        info = base.apply_reference(self.reference)[4]
        if "error" in info:
            raise RuntimeError(info["error"])
        meter.charge(calls=1, steps=1)
        return Result(state=base.state, budget_used=meter.used())
