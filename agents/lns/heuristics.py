"""LNS baselines without learning: SCIP alone, Random-LNS and graph-induced LNS."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from optgym.agents.lns.loop import run_lns
from optgym.agents.protocol import Result, metered
from optgym.budget import Budget


@dataclass
class ScipAlone:
    """SCIP on the whole problem from the same initial incumbent for the same CPU budget:
    one 'neighborhood' that frees every variable, solved for the CPU seconds the env's
    ``time_budget`` leaves after the initial solve, and no more than the wall seconds the
    budget leaves then (less 5%, for the step's own work)."""

    stochastic: ClassVar[bool] = False  # the seed changes nothing

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        configured = base.subproblem_time
        with metered(env, budget, self) as meter:

            def everything(e: Any, rng: np.random.Generator) -> np.ndarray:
                # one sub-MIP cannot be stopped by the meter: size it when it starts
                left = e.time_budget - e.elapsed
                if meter.budget.seconds is not None:
                    left = min(left, 0.95 * (meter.budget.seconds - meter.seconds) - 0.5)
                e.subproblem_time = max(left, 0.01)
                return np.ones(e.problem.n)

            try:
                return run_lns(env, benchmark, budget, seed, everything, neighborhood_size=10**12)
            finally:
                base.subproblem_time = configured  # the env's control, as it was


@dataclass
class RandomLns:
    """Random-LNS: a uniformly random neighborhood of the env's adaptive size."""

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        return run_lns(env, benchmark, budget, seed, lambda e, rng: rng.random(e.problem.n))


def bfs_order(problem: Any, start: int, k: int, rng: np.random.Generator) -> list[int]:
    """Integer variables in breadth-first order over the bipartite graph from ``start``
    (variable -> its constraints -> their variables), until ``k`` are found."""
    by_cons = problem.A.tocsr()
    by_var = problem.A.tocsc()
    seen_vars = {start}
    seen_cons: set[int] = set()
    order = [start]
    queue = deque([start])
    while queue and len(order) < k:
        j = queue.popleft()
        cons = by_var.indices[by_var.indptr[j] : by_var.indptr[j + 1]]
        for i in rng.permutation(cons):
            if i in seen_cons:
                continue
            seen_cons.add(int(i))
            for v in by_cons.indices[by_cons.indptr[i] : by_cons.indptr[i + 1]]:
                if v not in seen_vars and problem.integer[v]:
                    seen_vars.add(int(v))
                    order.append(int(v))
                    queue.append(int(v))
            if len(order) >= k:
                break
    return order[:k]


@dataclass
class GraphInducedLns:
    """Graph-induced LNS: a breadth-first ball on the variable-constraint graph around a
    random integer variable; restarts from another random variable if the ball is small."""

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        def scorer(e: Any, rng: np.random.Generator) -> np.ndarray:
            p, k = e.problem, e.k
            scores = np.full(p.n, -np.inf)
            ints = p.int_indices
            chosen: list[int] = []
            while len(chosen) < k:
                start = int(rng.choice(ints))
                new = [v for v in bfs_order(p, start, k - len(chosen), rng) if scores[v] == -np.inf]
                for v in new:
                    scores[v] = k - len(chosen)
                    chosen.append(v)
                if not new:
                    break
            return scores

        return run_lns(env, benchmark, budget, seed, scorer)
