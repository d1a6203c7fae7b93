"""Leaderboard tasks: one per problem, with a fixed env, dataset split, budget and score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from optgym.bench import AGGREGATES
from optgym.budget import Budget


def _instruction_count_vs_oz(env: gym.Env) -> float:
    """-Oz's instruction count divided by the episode's: > 1 beats -Oz."""
    obs = env.unwrapped.observation
    return float(obs["IrInstructionCountOz"][0]) / max(float(obs["IrInstructionCount"][0]), 1.0)


def _objective_vs_best_known(env: gym.Env) -> float:
    """The incumbent's objective relative to the best-known one: 1.0 matches it, < 1 is
    worse (for minimization best/objective, for maximization objective/best)."""
    return env.unwrapped.score_vs_best_known()


def _speedup_vs_adams2019(env: gym.Env) -> float:
    """Adams2019's (beam 32) time divided by the schedule's: > 1 beats the autoscheduler."""
    return env.unwrapped.score_vs_baseline()


def _plan_reward(env: gym.Env) -> float:
    """The replayed plan's reward: ``payoff * (1 - 0.2 t / T)`` on reaching a goal at step
    ``t`` of ``T`` (> 0), else minus the final distance to the nearest goal (<= 0)."""
    return float(env.unwrapped.state.reward)


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
    # How far a replayed score may be from the claim (relative): measured run times only
    # reproduce within their noise.
    score_rtol: float = 1e-6
    # How scores are averaged over episodes: "geomean" for ratios (> 0), "mean" for scores
    # that can be zero or negative.
    aggregate: str = "geomean"

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES:
            raise ValueError(
                f"unknown aggregate {self.aggregate!r} for task {self.name!r}; "
                f"allowed: {', '.join(AGGREGATES)}"
            )


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

# LNS: one task per family, S instances of the test split, 60 CPU seconds per instance.
for _family in ("vertex-cover", "independent-set", "set-cover", "auction"):
    TASKS[f"lns-{_family}"] = Task(
        name=f"lns-{_family}",
        env_id="optgym/ILPNeighborhood-v0",
        env_kwargs={"time_budget": 60.0},
        datasets=((f"generator://{_family}-s-v0", "test"),),
        budget=Budget(seconds=60.0),
        score=_objective_vs_best_known,
        score_name="objective vs best known (geomean; 1 = best known)",
        reference_agents=("scip",),
    )


# Schedule search: the test split of the operator pipelines, 30 s of search per pipeline,
# measurements kept in the env's SQLite cache (so the runner's replay reads them back).
TASKS["schedule-search"] = Task(
    name="schedule-search",
    env_id="optgym/ScheduleSearch-v0",
    env_kwargs={"mode": "cache"},
    datasets=(("benchmark://halide-ops-v0", "test"),),
    budget=Budget(calls=32, seconds=30.0),
    score=_speedup_vs_adams2019,
    score_name="speedup over Halide's Adams2019 autoscheduler, beam 32 (geomean)",
    reference_agents=("adams2019-b32",),
    score_rtol=0.2,
)


# Path planning: every hand-made map, 2000 plan evaluations per episode (the planners keep
# one of them back for the final step that commits the best plan).
TASKS["path-planning"] = Task(
    name="path-planning",
    env_id="optgym/PathPlanning2D-v0",
    env_kwargs={},
    datasets=(("benchmark://nav2d-v0", "test"),),
    budget=Budget(calls=2000),
    score=_plan_reward,
    score_name="plan reward (mean; > 0: goal reached, 1 - 0.2 t/T; else minus the distance left)",
    reference_agents=("cem", "cmaes"),
    aggregate="mean",
)


def _test_accuracy(env: gym.Env) -> float:
    """Test accuracy of the model retrained on the examples the episode kept."""
    return float(env.unwrapped.test_metrics()["test_accuracy"])


# Data selection: remove 100 of the 1000 pool examples (10 a step), score the retrained
# model on the held-out test split.
TASKS["data-selection-digits"] = Task(
    name="data-selection-digits",
    env_id="optgym/DataSelection-v0",
    env_kwargs={"batch": 10, "budget": 100, "mode": "remove"},
    datasets=(("generator://digits-noisy-v0", "test"),),
    budget=Budget(steps=10),
    score=_test_accuracy,
    score_name="test accuracy after removing 100 pool examples (mean)",
    reference_agents=("random-select", "oracle"),
    aggregate="mean",
)


def _minus_test_loss(env: gym.Env) -> float:
    """Minus the test loss (nats per character) of the model fine-tuned on the kept pool."""
    return -float(env.unwrapped.test_metrics()["test_loss"])


# The text task: remove 100 of the 500 pool sequences (10 a step), fine-tune the cached
# base model on the rest, score the test loss.
TASKS["data-selection-text"] = Task(
    name="data-selection-text",
    env_id="optgym/DataSelection-v0",
    env_kwargs={"batch": 10, "budget": 100, "mode": "remove"},
    datasets=(("generator://pydoc-text-v0", "test"),),
    budget=Budget(steps=10),
    score=_minus_test_loss,
    score_name="minus test loss, nats per character, after removing 100 sequences (mean)",
    reference_agents=("random-select", "oracle"),
    aggregate="mean",
)


def get_task(name: str) -> Task:
    """The task called ``name``; ``ValueError`` lists the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}") from None
