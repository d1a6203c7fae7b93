"""Influence-guided data selection (docs/architecture.md#problems): ``optgym/DataSelection-v0``
removes or adds pool examples, retrains a small model for real and rewards the drop in validation
loss, on the tasks of :mod:`optgym.datasets.dataselect`.

The env and model helpers (``DataSelectionEnv``, ``make_mlp``, ``train_mlp``...) load torch:
they are imported from :mod:`optgym.envs.dataselect.env` and ``.models`` on first use."""

from __future__ import annotations

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


def _datasets() -> list[Any]:
    from optgym.datasets.dataselect import dataselect_datasets

    return dataselect_datasets()


def test_accuracy(env: Any) -> float:
    """Test accuracy of the model retrained on the examples the episode kept."""
    return float(env.unwrapped.test_metrics()["test_accuracy"])


def minus_test_loss(env: Any) -> float:
    """Minus the test loss (nats per character) of the model fine-tuned on the kept pool."""
    return -float(env.unwrapped.test_metrics()["test_loss"])


_SELECT = "optgym.agents.dataselect.selection"
_SELECTION_ENV = {"batch": 10, "budget": 100, "mode": "remove"}
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
    datasets=_datasets,
    tasks=(
        # Remove 100 of the 1000 pool examples (10 a step), score the retrained model on the
        # held-out test split.
        Task(
            name="data-selection-digits",
            env_id=ENV_ID,
            env_kwargs=dict(_SELECTION_ENV),
            datasets=(("generator://digits-noisy-v0", "test"),),
            budget=Budget(calls=10),
            score=test_accuracy,
            score_name="test accuracy after removing 100 pool examples (mean)",
            reference_agents=("random-select", "oracle"),
            aggregate="mean",
            board_size=2,
        ),
        # Remove 100 of the 500 pool sequences (10 a step), fine-tune the cached base model
        # on the rest, score the test loss.
        Task(
            name="data-selection-text",
            env_id=ENV_ID,
            env_kwargs=dict(_SELECTION_ENV),
            datasets=(("generator://pydoc-text-v0", "test"),),
            budget=Budget(calls=10),
            score=minus_test_loss,
            score_name="minus test loss, nats per character, after removing 100 sequences (mean)",
            reference_agents=("random-select", "oracle"),
            aggregate="mean",
            board_size=2,
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
