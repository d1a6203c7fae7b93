"""Influence-guided data selection (docs/architecture.md#problems): ``optgym/DataSelection-v0``
removes or adds pool examples, retrains a small model for real and rewards the drop in validation
loss, on the tasks of :mod:`optgym.datasets.dataselect`.

The env and model helpers (``DataSelectionEnv``, ``make_mlp``, ``train_mlp``...) load torch:
they are imported from :mod:`optgym.envs.dataselect.env` and ``.models`` on first use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optgym.budget import Budget
from optgym.problem import EnvEntry, EnvExample, Problem, Resources, Task, lazy_exports

ENV_ID = "optgym/DataSelection-v0"
MODES = ("remove", "add")

__getattr__ = lazy_exports(
    __name__,
    {
        "DataSelectionEnv": "env",
        "evaluate": "models",
        "example_features": "models",
        "make_mlp": "models",
        "single_thread": "models",
        "train_mlp": "models",
    },
)


def test_accuracy(env: Any) -> float:
    """Test accuracy of the model retrained on the examples the episode kept."""
    return float(env.unwrapped.test_metrics()["test_accuracy"])


def minus_test_loss(env: Any) -> float:
    """Minus the test loss (nats per character) of the model fine-tuned on the kept pool."""
    return -float(env.unwrapped.test_metrics()["test_loss"])


def _selection_task(
    name: str, generator: str, score: Callable[[Any], float], score_name: str
) -> Task:
    """A task on the test split of ``generator``'s benchmarks: remove 100 pool examples, 10
    a step (10 retrainings), and score the retrained model with ``score`` (the mean over
    benchmarks)."""
    return Task(
        name=name,
        env_id=ENV_ID,
        env_kwargs={"batch": 10, "budget": 100, "mode": "remove"},
        datasets=((generator, "test"),),
        budget=Budget(calls=10),
        score=score,
        score_name=score_name,
        reference_agents=("random-select", "oracle"),
        aggregate="mean",
        board_size=2,
    )


_SELECT = "optgym.agents.dataselect.selection"
_DATA = "optgym.datasets.dataselect"
PROBLEM = Problem(
    name="data-selection",
    title="Influence-guided training-data selection (EK-FAC influence functions)",
    envs=(
        EnvEntry(
            ENV_ID,
            "optgym.envs.dataselect.env:DataSelectionEnv",
            EnvExample("generator://digits-noisy-v0/3", {"batch": 20, "budget": 40}, steps=2),
            # an episode ends after ceil(budget / batch) <= pool size steps
            max_episode_steps=1000,
        ),
    ),
    datasets=(f"{_DATA}:DigitsNoisyDataset", f"{_DATA}:PydocTextDataset"),
    tasks=(
        # Remove 100 of the 1000 pool examples, score the retrained model on the held-out
        # test split.
        _selection_task(
            "data-selection-digits",
            "generator://digits-noisy-v0",
            test_accuracy,
            "test accuracy after removing 100 pool examples (mean)",
        ),
        # Remove 100 of the 500 pool sequences, fine-tune the cached base model on the rest,
        # score the test loss.
        _selection_task(
            "data-selection-text",
            "generator://pydoc-text-v0",
            minus_test_loss,
            "minus test loss, nats per character, after removing 100 sequences (mean)",
        ),
    ),
    agents={
        "random-select": (f"{_SELECT}:RandomSelection", ""),
        "tfidf": (f"{_SELECT}:TfidfSelection", ""),
        "grad-dot": (f"{_SELECT}:InfluenceSelection:method=grad-dot", "gradient dot product"),
        "kfac": (f"{_SELECT}:InfluenceSelection:method=kfac", "K-FAC influence"),
        "ekfac": (f"{_SELECT}:InfluenceSelection:method=ekfac", "EK-FAC influence"),
        "tfidf-ekfac": (f"{_SELECT}:TfidfInfluenceSelection", ""),
        "self-influence": (f"{_SELECT}:SelfInfluenceSelection", ""),
        "oracle": (f"{_SELECT}:OracleSelection", ""),
    },
    # What one episode asks a Ray cluster for: peak 665 MiB measured on a pydoc-text benchmark.
    resources=Resources(cpus=1, memory_mb=1024),
)
