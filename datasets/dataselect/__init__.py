"""Data-selection tasks (docs/architecture.md#problems): training pools with corrupted examples, a
clean validation split and a test split. ``generator://digits-noisy-v0/<seed>``: scikit-learn's
digits with 10% of the pool labels flipped (:mod:`~optgym.datasets.dataselect.digits`);
``generator://pydoc-text-v0/<seed>``: CPython's pydoc text as character sequences with 20% of the
pool shuffled or off-domain (:mod:`~optgym.datasets.dataselect.text`)."""

from __future__ import annotations

from pathlib import Path

from optgym.datasets.dataselect import digits, text
from optgym.datasets.dataselect.digits import (
    N_CLASSES,
    N_FEATURES,
    NAME,
    DigitsNoisyDataset,
    DigitsTask,
    digits_task_from_arrays,
    load_digits_task,
    make_digits_task,
    task_to_npz,
)
from optgym.datasets.dataselect.npz import LIMITS, NpzLimits, read_npz
from optgym.datasets.dataselect.text import (
    SEQ_LEN,
    VOCAB,
    VOCAB_SIZE,
    PydocTextDataset,
    TextTask,
    is_text_task,
    load_text_task,
    make_text_task,
    text_task_from_arrays,
    text_task_to_npz,
)
from optgym.datasets.dataset import Benchmark

__all__ = [
    "NAME",
    "N_CLASSES",
    "N_FEATURES",
    "SEQ_LEN",
    "VOCAB",
    "VOCAB_SIZE",
    "DigitsNoisyDataset",
    "LIMITS",
    "DigitsTask",
    "NpzLimits",
    "PydocTextDataset",
    "TextTask",
    "is_text_task",
    "load_digits_task",
    "load_task",
    "load_text_task",
    "make_digits_task",
    "make_text_task",
    "task_to_npz",
    "text_task_to_npz",
]



TASK_ARRAYS = tuple(dict.fromkeys((*digits.ARRAYS, *text.ARRAYS)))
"""Every array a task file may hold (a digits task's, then a text task's)."""


def load_task(source: Benchmark | str | Path) -> DigitsTask | TextTask:
    """The task a file holds, read once within :data:`LIMITS` and checked array by array:
    a text task when it has ``base`` and ``pool``, else a digits task. ``ValueError``
    naming the path and the array at fault (never the file's contents)."""
    path = source.path if isinstance(source, Benchmark) else Path(source)
    arrays = read_npz(source, "data-selection task", TASK_ARRAYS)
    if "base" in arrays and "pool" in arrays:
        return text_task_from_arrays(arrays, f"text task {path}")
    return digits_task_from_arrays(arrays, f"digits task {path}")
