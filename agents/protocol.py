"""The one protocol every OptGym policy follows, and the record it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym

from optgym.budget import Budget
from optgym.state import EpisodeState


@dataclass
class Result:
    """The best solution an agent found: a replayable state, its reward, the budget used."""

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
    """``agent.solve(env, benchmark, budget)`` -> :class:`Result`.

    ``env`` is an OptGym env (unwrapped or not; agents reach ``env.unwrapped`` for
    ``fork``/``state``). Agents use only the public env API.
    """

    name: str

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result: ...
