"""Data-selection tasks (DESIGN 2.5): training pools with corrupted examples, a clean
validation split and a test split. ``generator://digits-noisy-v0/<seed>``: scikit-learn's
digits with 10% of the pool labels flipped (:mod:`~optgym.datasets.dataselect.digits`);
``generator://pydoc-text-v0/<seed>``: CPython's pydoc text as character sequences with 20% of
the pool shuffled or off-domain (:mod:`~optgym.datasets.dataselect.text`)."""

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
from optgym.datasets.dataselect.text import (
    SEQ_LEN,
    VOCAB,
    VOCAB_SIZE,
    PydocTextDataset,
    TextTask,
    is_text_task,
    load_text_task,
    make_text_task,
    text_task_to_npz,
)
from optgym.datasets.dataset import Dataset

__all__ = [
    "NAME",
    "N_CLASSES",
    "N_FEATURES",
    "SEQ_LEN",
    "VOCAB",
    "VOCAB_SIZE",
    "DigitsNoisyDataset",
    "DigitsTask",
    "PydocTextDataset",
    "TextTask",
    "dataselect_datasets",
    "is_text_task",
    "load_digits_task",
    "load_text_task",
    "make_digits_task",
    "make_text_task",
    "task_to_npz",
    "text_task_to_npz",
]


def dataselect_datasets() -> list[Dataset]:
    """Every data-selection dataset."""
    return [DigitsNoisyDataset(), PydocTextDataset()]
