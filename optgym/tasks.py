"""Tasks by name: each problem's record lists its own (:attr:`optgym.problem.Problem.tasks`);
this module looks them up across the one list of problems (:func:`optgym.envs.problems`)
and answers what the runner, the validator and the leaderboard ask of a task.

>>> get_task("pass-ordering").budget
Budget(calls=2000, steps=None, seconds=None)
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from optgym.problem import EnvEntry, Problem, Task

if TYPE_CHECKING:
    from optgym.datasets.dataset import DatasetRegistry


@cache
def all_tasks() -> dict[str, Task]:
    """Every task of every problem, by name; ``ValueError`` when two share a name."""
    from optgym.envs import problems

    out: dict[str, Task] = {}
    for problem in problems().values():
        for task in problem.tasks:
            if task.name in out:
                raise ValueError(f"two tasks are named {task.name!r}")
            out[task.name] = task
    return out


def board_benchmarks(task: Task) -> list[str]:
    """The task's leaderboard test set: the first ``task.board_size`` benchmark URIs of each
    of its datasets' splits, in the task's dataset order (names only: a stored dataset need
    not be built)."""
    registry = task_datasets(task)
    uris: list[str] = []
    for uri, split in task.datasets:
        uris.extend(registry.dataset(uri).take(split, task.board_size))
    return uris


def task_datasets(task: Task) -> DatasetRegistry:
    """The datasets of the task's problem (its record lists them; no env is made)."""
    from optgym.envs import problems

    return problems()[task.problem].dataset_registry()


def problem_of_task(task: Task) -> Problem:
    """The record of the problem that lists ``task``."""
    from optgym.envs import problems

    return problems()[task.problem]


def env_entry(task: Task) -> EnvEntry:
    """The registration record of the task's env (its problem lists it)."""
    from optgym.envs import problems

    return next(e for e in problems()[task.problem].envs if e.id == task.env_id)


def hardware_dependent(task: Task) -> bool:
    """Whether the task's scores depend on the machine: its budget counts seconds or its env
    measures its reward (run times). Such tasks are ranked within a hardware class."""
    return task.budget.seconds is not None or env_entry(task).nondeterministic


def get_task(name: str) -> Task:
    """The task called ``name``; ``ValueError`` lists the known ones."""
    tasks = all_tasks()
    if not isinstance(name, str) or name not in tasks:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(tasks)}")
    return tasks[name]


__all__ = [
    "Task", "all_tasks", "board_benchmarks", "env_entry", "get_task", "hardware_dependent",
    "problem_of_task", "task_datasets",
]  # fmt: skip
