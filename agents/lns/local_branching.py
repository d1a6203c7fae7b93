"""Local-branching neighborhoods: LB-LNS (the local-branching MIP) and LB-RELAX (its LP
relaxation, Huang et al. 2023), with LB-RELAX's sampling variant."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from optgym.agents.lns.loop import run_lns
from optgym.agents.protocol import Result
from optgym.budget import Budget


def _fill(scores: np.ndarray, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Candidates first (by their score, ties broken at random), the rest at random after.

    Random tie-breaking matters: the local-branching LP of vertex cover is half-integral,
    so hundreds of variables tie at a change of 0.5; breaking ties by index frees the same
    variables every step and the search stalls."""
    out = rng.random(len(scores))  # in [0, 1): below every candidate
    out[candidates] = 2.0 + scores[candidates] + 1e-6 * rng.random(len(candidates))
    return out


@dataclass
class LocalBranchingLns:
    """LB-LNS: solve the local-branching MIP (the problem plus sum |x - x*| <= k) for a
    short time; the variables it changes, filled to k at random, are the neighborhood."""

    lb_time: float = 2.0
    """CPU seconds for each local-branching MIP (capped by the env's time left)"""

    def __post_init__(self) -> None:
        if not (self.lb_time > 0 and math.isfinite(self.lb_time)):
            raise ValueError(f"lb_time must be a positive number of seconds, got {self.lb_time!r}")

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        def scorer(e: Any, rng: np.random.Generator) -> np.ndarray:
            left = max(e.time_budget - e.elapsed, 0.01)
            x = e.problem.local_branching(
                e.incumbent, e.k, relax=False, time_limit=min(self.lb_time, left)
            )
            diff = np.abs(x - e.incumbent)
            return _fill(diff, np.flatnonzero(diff > 0.5), rng)

        return run_lns(env, benchmark, budget, seed, scorer)


@dataclass
class LbRelax:
    """LB-RELAX: solve the LP relaxation of the local-branching problem around the
    incumbent; free the variables that are fractional or changed (largest change first),
    fill to k at random. ``sample=True`` is LB-RELAX-S: draw the k variables at random with
    probability proportional to the change instead of taking the largest."""

    sample: bool = False
    """draw the k variables with probability proportional to their change (LB-RELAX-S)"""

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        def scorer(e: Any, rng: np.random.Generator) -> np.ndarray:
            x = e.problem.local_branching(e.incumbent, e.k, relax=True)
            diff = np.abs(x - e.incumbent)
            changed = np.flatnonzero((diff > 1e-6) & e.problem.integer)
            if self.sample and len(changed) > e.k:
                p = diff[changed] / diff[changed].sum()
                picked = rng.choice(changed, size=e.k, replace=False, p=p)
                scores = np.zeros(len(x))
                scores[picked] = 1.0
                return _fill(scores, picked, rng)
            return _fill(diff, changed, rng)

        return run_lns(env, benchmark, budget, seed, scorer)
