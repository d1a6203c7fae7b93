"""Local search in ``ScheduleSearch-v1`` that starts from an autoscheduler's schedule.

The optional, autoscheduler-seeded variant of issue 28's search (reported apart from the
learned agents): ``env.reference_actions(start)`` gives Halide's schedule (by default
Adams2019 at beam 1, a fraction of a second to find) as v1 stage actions; the search then
changes one component of one stage at a time, drawn from v1's proposal prior, keeps the
change when the measured schedule is faster, and stops when the budget has no room for
another episode. A change can make a later stage's action illegal (its mask follows the
stages before it); each illegal component is then drawn again from the prior. Nothing
here was tuned: one component per change, the prior as ``actions_v1`` defines it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget
from optgym.envs.schedule.actions_v1 import COMPONENTS, PRIOR, prior_value


def changed_action(
    masks: list[np.ndarray],
    planned: np.ndarray,
    prior: tuple[np.ndarray, ...],
    rng: np.random.Generator,
    change: int | None = None,
) -> np.ndarray:
    """``planned`` (one stage's action) with component ``change`` drawn anew from its
    ``prior`` row (another value while one is legal) and every component ``masks`` refuse
    drawn again from the prior: a legal action that differs from ``planned`` in as little
    as the masks allow."""
    a = np.array(planned, dtype=np.int64)
    for j, (mask, row) in enumerate(zip(masks, prior, strict=True)):
        if j == change:
            a[j] = prior_value(mask, row, rng, avoid=int(a[j]))
        elif not mask[a[j]]:
            a[j] = prior_value(mask, row, rng)
    return a


@dataclass
class ScheduleLocalSearch:
    """Hill climbing over v1 stage actions from an autoscheduler's schedule: one prior draw
    of one component per change, kept when the measured schedule is faster."""

    start: str = "Adams2019-beam1"
    """the autoscheduler whose schedule the search starts from (``env.references``)"""

    budget_units: ClassVar[tuple[str, ...]] = ("calls", "steps", "seconds")  # searches until spent

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            base.reset(seed=seed, options={"benchmark": benchmark})
            n = len(base.stage_names)
            current = [np.asarray(a) for a in base.reference_actions(self.start)]
            best, error = None, None
            change: tuple[int, int] | None = None  # the start itself first
            while meter.calls_left(steps=n) > 0:
                state, actions, info = self._episode(base, benchmark, seed, current, change, rng)
                if "error" in info:
                    error = info["error"]
                elif best is None or state.reward > best.reward:
                    best, current = state, actions
                change = (int(rng.integers(n)), int(rng.integers(len(COMPONENTS))))
            if best is None:
                raise RuntimeError(f"no schedule of {benchmark} could be measured: {error}")
            return solved(env, meter, best)

    @staticmethod
    def _episode(
        base: Any,
        benchmark: str,
        seed: int | None,
        actions: list[np.ndarray],
        change: tuple[int, int] | None,
        rng: np.random.Generator,
    ) -> tuple[Any, list[np.ndarray], dict[str, Any]]:
        """One episode of ``actions`` with ``change`` (stage, component) drawn anew and
        every component the masks refuse drawn again; its state, actions and last info."""
        base.reset(seed=seed, options={"benchmark": benchmark})
        taken: list[np.ndarray] = []
        info: dict[str, Any] = {}
        for k, planned in enumerate(actions):
            j = change[1] if change is not None and change[0] == k else None
            a = changed_action(base.masks(), planned, PRIOR, rng, j)
            taken.append(a)
            _, _, terminated, truncated, info = base.step(a)
            if terminated or truncated:
                break
        return base.state, taken, info


__all__ = ["ScheduleLocalSearch", "changed_action"]
