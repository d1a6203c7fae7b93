"""Reference agents: an env's own reference (LLVM's -Oz, -O3, a Halide autoscheduler)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget


@dataclass
class ReferenceAgent:
    """Applies one of the env's references once (``env.apply_reference``)."""

    stochastic: ClassVar[bool] = False  # the seed changes nothing

    reference: str = "Oz"
    """the reference to apply: Oz, O3, O0 (pass ordering); a Halide autoscheduler"""

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            info = base.apply_reference(self.reference)[4]
            if "error" in info:
                raise RuntimeError(info["error"])
            return solved(env, meter)
