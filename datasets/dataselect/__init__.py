"""Data-selection tasks (DESIGN 2.5): training pools with corrupted examples, a clean
validation split and a test split. ``generator://digits-noisy-v0/<seed>``: scikit-learn's
digits with 10% of the pool labels flipped (:mod:`~optgym.datasets.dataselect.digits`)."""

from __future__ import annotations

from optgym.datasets.dataselect.digits import (
    N_CLASSES,
    N_FEATURES,
    NAME,
    DigitsNoisyDataset,
    DigitsTask,
    load_digits_task,
    make_digits_task,
    task_to_npz,
)
from optgym.datasets.dataset import Dataset

__all__ = [
    "NAME",
    "N_CLASSES",
    "N_FEATURES",
    "DigitsNoisyDataset",
    "DigitsTask",
    "dataselect_datasets",
    "load_digits_task",
    "make_digits_task",
    "task_to_npz",
]


def dataselect_datasets() -> list[Dataset]:
    """Every data-selection dataset."""
    return [DigitsNoisyDataset()]
