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


#: LB-RELAX's first neighborhood per family, as a share of the integer variables (then the
#: env's rule: times ``k_growth`` after a step without improvement, at most ``k_max``).
#: Chosen on validation seeds ``generator://independent-set-s-v0/1000`` to ``/1003`` (60 CPU
#: s, agent seed 0, one run each; mean primal integral against the best objective of all
#: runs): the env's 0.2 3.265, 0.05 4.461, 0.1 4.178 (both restarting at that share after
#: each improving step), 0.3 2.908, **0.4 2.428**; random-lns 3.400. A family not here
#: starts at the env's ``k_start``.
K_START = {"independent-set": 0.4}


def family_k_start(benchmark: str) -> float | None:
    """The :data:`K_START` share of a ``generator://<family>-...`` benchmark, else None."""
    for family, share in K_START.items():
        if benchmark.startswith(f"generator://{family}-"):
            return share
    return None


@dataclass
class LbRelax:
    """LB-RELAX: solve the LP relaxation of the local-branching problem around the
    incumbent; free the variables that are fractional or changed (largest change first),
    fill to k at random. ``sample=True`` is LB-RELAX-S: draw the k variables at random with
    probability proportional to the change instead of taking the largest."""

    sample: bool = False
    """draw the k variables with probability proportional to their change (LB-RELAX-S)"""
    k_start: float | None = None
    """share of the integer variables the first neighborhood frees, growing as the env's
    ``k`` does (default: the family's in :data:`K_START`, else the env's ``k_start``)"""

    def __post_init__(self) -> None:
        if self.k_start is not None and not (
            isinstance(self.k_start, (int, float))
            and not isinstance(self.k_start, bool)
            and 0 < self.k_start <= 1
        ):
            raise ValueError(f"k_start must be a share in (0, 1], got {self.k_start!r}")

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        share = self.k_start if self.k_start is not None else family_k_start(benchmark)
        last: list[Any] = [None, share]  # the objective at the last step, the share now

        def scorer(e: Any, rng: np.random.Generator) -> np.ndarray:
            if share is not None:  # the env's adaptive rule, from this share
                if last[0] is not None and e.objective == last[0]:
                    last[1] = min(last[1] * e.k_growth, max(e.k_max, share))
                last[0] = e.objective
                e.neighborhood_size = max(1, round(last[1] * len(e.problem.int_indices)))
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

        size = None if share is None else 1  # restored after the episode when set
        return run_lns(env, benchmark, budget, seed, scorer, neighborhood_size=size)
