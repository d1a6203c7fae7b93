"""Leaderboard tasks: one per problem, with a fixed env, dataset split, budget and score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from optgym.budget import Budget


def _instruction_count_vs_oz(env: gym.Env) -> float:
    """-Oz's instruction count divided by the episode's: > 1 beats -Oz."""
    obs = env.unwrapped.observation
    return float(obs["IrInstructionCountOz"][0]) / max(float(obs["IrInstructionCount"][0]), 1.0)


@dataclass(frozen=True)
class Task:
    """A benchmarkable task; ``score(env)`` reads the score of the env's current state."""

    name: str
    env_id: str
    env_kwargs: dict[str, Any]
    datasets: tuple[tuple[str, str], ...]  # (dataset URI, split)
    budget: Budget
    score: Callable[[gym.Env], float]
    score_name: str
    reference_agents: tuple[str, ...] = field(default=())


TASKS: dict[str, Task] = {
    "pass-ordering": Task(
        name="pass-ordering",
        env_id="optgym/PassOrdering-v0",
        env_kwargs={"observation_space": "Autophase", "reward_space": "IrInstructionCountOz"},
        datasets=(("generator://csmith-v0", "test"), ("benchmark://debian-v0", "test")),
        budget=Budget(calls=2000),
        score=_instruction_count_vs_oz,
        score_name="IR instruction count reduction vs -Oz (geomean)",
        reference_agents=("oz", "o3"),
    ),
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}") from None
