"""Greedy search: each step try every action on a fork, keep the best, stop at no gain."""

from __future__ import annotations

import gymnasium as gym

from optgym.agents.protocol import Result
from optgym.budget import Budget, BudgetMeter


class GreedySearchAgent:
    """At each step, runs every action on a ``fork()`` of the env, takes the one with the
    largest reward, and stops when no action gives a positive reward or the budget is
    spent. Ties go to the lowest action number, so the search is deterministic."""

    name = "greedy"

    def __init__(self, min_gain: float = 1e-12):
        self.min_gain = min_gain

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        meter = BudgetMeter(budget)
        base.reset(seed=seed, options={"benchmark": benchmark})
        while not meter.exhausted:
            best_action, best_reward = None, self.min_gain
            for action in range(base.action_space.n):
                trial = base.fork()
                try:
                    _, reward, _, _, info = trial.step(action)
                finally:
                    trial.close()
                meter.charge(calls=int(info.get("compilation_calls", 1)))
                if "error" not in info and reward > best_reward:
                    best_action, best_reward = action, reward
                if meter.exhausted:
                    break
            if best_action is None or meter.exhausted:
                break
            info = base.step(best_action)[4]
            meter.charge(calls=int(info.get("compilation_calls", 1)), steps=1)
            if "error" in info:
                raise RuntimeError(info["error"])
        return Result(state=base.state, budget_used=meter.used())
