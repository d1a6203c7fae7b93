"""The loop every LNS agent shares: reset, score variables, step, until the budget is spent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget

# (env.unwrapped, rng) -> one score per variable
Scorer = Callable[[Any, np.random.Generator], np.ndarray]


@contextmanager
def _agent_controls(
    env: Any, neighborhood_size: int | None, subproblem_time: float | None
) -> Iterator[None]:
    """Set the env's agent controls for one episode and restore them after: the env is
    shared by every agent of a run. None leaves a control as the env has it."""
    values: dict[str, Any] = {}
    if neighborhood_size is not None:
        if neighborhood_size < 1:
            raise ValueError(f"neighborhood_size must be >= 1, got {neighborhood_size!r}")
        values["neighborhood_size"] = neighborhood_size
    if subproblem_time is not None:
        if not subproblem_time > 0:
            raise ValueError(f"subproblem_time must be > 0 CPU seconds, got {subproblem_time!r}")
        values["subproblem_time"] = subproblem_time
    old = {k: getattr(env, k) for k in values}
    for k, v in values.items():
        setattr(env, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(env, k, v)


def run_lns(
    env: gym.Env,
    benchmark: str,
    budget: Budget,
    seed: int | None,
    scorer: Scorer,
    neighborhood_size: int | None = None,
    subproblem_time: float | None = None,
) -> Result:
    """One LNS episode on ``benchmark``: score the variables, step, until the episode ends
    (the env's ``time_budget`` of CPU seconds, or an optimal full sub-MIP) or the budget
    meter has no room (its sub-MIP solves, steps or wall seconds).

    ``neighborhood_size`` (variables freed per step) and ``subproblem_time`` (CPU seconds
    per sub-MIP) override the env's agent controls for this episode; None keeps the env's
    (its adaptive ``k`` and its configured time)."""
    base = env.unwrapped
    rng = np.random.default_rng(seed)
    with (
        _agent_controls(base, neighborhood_size, subproblem_time),
        metered(env, budget, benchmark=benchmark, seed=seed) as meter,
    ):
        while meter.room() > 0:
            scores = scorer(base, rng)
            if meter.room() == 0:  # scoring (a local-branching solve) may spend the seconds
                break
            _, _, terminated, truncated, info = base.step(scores)
            if "error" in info:
                raise RuntimeError(info["error"])
            if terminated or truncated:
                break
        return solved(env, meter)
