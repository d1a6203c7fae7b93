"""The protocol every OptGym policy follows, the record it returns, and its budget meter.

An agent is a class with

* ``problems``: the problems (``"pass-ordering"``) or env ids it works on; the runner
  refuses a task outside them before anything runs;
* typed settings: its constructor's keyword arguments, with defaults (shipped agents are
  dataclasses with one attribute docstring per field), passed on the command line as
  ``--agent NAME:key=value,...``;
* ``solve(env, benchmark, budget, seed) -> Result``.

Learned agents add ``train(env, benchmarks, budget, seed)``, ``save(path)`` and
``load(path)`` (:class:`LearnedAgent`), and may name env settings to train with
(``train_env_kwargs``, on top of the task's); ``optgym train`` trains and saves one, and
``--agent NAME:path=FILE`` benchmarks the saved one.

The budget is the env's to count: inside ``solve``, ``with metered(env, budget) as meter``
gives the meter the env charges (the runner's, when the runner wrapped the env), so an agent
reads ``meter.exhausted`` and ``meter.room()`` but never reports its own spending.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import gymnasium as gym

from optgym.budget import Budget, BudgetMeter
from optgym.state import EpisodeState


@dataclass
class Result:
    """The best solution an agent found: a replayable state, its reward, the budget used
    (as the env's meter counted it)."""

    state: EpisodeState
    budget_used: dict[str, float] = field(default_factory=dict)

    @property
    def reward(self) -> float:
        return self.state.reward

    @property
    def actions(self) -> list[Any]:
        return self.state.actions


@runtime_checkable
class Agent(Protocol):
    """``agent.solve(env, benchmark, budget, seed)`` -> :class:`Result`.

    ``env`` is an OptGym env, wrapped or not; agents reach ``env.unwrapped`` for the env's
    own methods (``fork``, ``state``, ``evaluate_batch``) and use only its public API.

    An agent whose result does not depend on its seed says so with the class attribute
    ``stochastic = False``; any other is taken to be stochastic, and the leaderboard wants
    at least :data:`optgym.leaderboard.submission.MIN_SEEDS` seeds of it per benchmark.
    """

    problems: ClassVar[tuple[str, ...]]

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result: ...


@runtime_checkable
class LearnedAgent(Agent, Protocol):
    """An agent with a model: ``train`` it on benchmarks of a training split, ``save`` it,
    ``load`` it back (the ``path`` setting loads on construction)."""

    def train(
        self,
        env: gym.Env,
        benchmarks: list[str],
        budget: Budget,
        seed: int = 0,
        progress: bool = False,
    ) -> dict[str, Any]: ...

    def save(self, path: str | Path) -> None: ...

    def load(self, path: str | Path) -> None: ...


@contextmanager
def metered(env: gym.Env, budget: Budget) -> Iterator[BudgetMeter]:
    """The meter ``env`` charges while an agent solves: the one already attached (the
    runner's budget wrapper), else a new one for ``budget``, detached on exit."""
    base = env.unwrapped
    attached = getattr(base, "meter", None)
    if attached is not None:
        yield attached
        return
    meter = BudgetMeter(budget)
    base.attach_meter(meter)
    try:
        yield meter
    finally:
        base.attach_meter(None)


def solved(env: gym.Env, meter: BudgetMeter, state: EpisodeState | None = None) -> Result:
    """The :class:`Result` of a solve: ``state`` (default: the env's current one) and what
    ``meter`` counted."""
    if state is None:
        state = env.unwrapped.state
    return Result(state=state, budget_used=meter.used())
