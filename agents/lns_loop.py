"""The loop every LNS agent shares: reset, score variables, step, until the budget is spent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result
from optgym.budget import Budget, BudgetMeter

# (env.unwrapped, rng) -> one score per variable
Scorer = Callable[[Any, np.random.Generator], np.ndarray]


@contextmanager
def _settings(env: Any, **values: Any) -> Iterator[None]:
    """Set env attributes for one episode and restore them after: the env is shared."""
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
    **settings: Any,
) -> Result:
    """One LNS episode: ``budget.seconds`` is the env's CPU-time budget (initial solve
    included), ``budget.calls`` caps the number of sub-MIPs."""
    base = env.unwrapped
    rng = np.random.default_rng(seed)
    meter = BudgetMeter(budget)
    if budget.seconds is not None:
        settings.setdefault("time_budget", budget.seconds)
    with _settings(base, **settings):
        base.reset(seed=seed, options={"benchmark": benchmark})
        done = False
        while not done and not (budget.calls is not None and meter.calls >= budget.calls):
            scores = scorer(base, rng)
            _, _, terminated, truncated, info = base.step(scores)
            meter.charge(calls=int(info.get("calls", 1)), steps=1)
            done = terminated or truncated
        return Result(state=base.state, budget_used={**meter.used(), "cpu_seconds": base.elapsed})
