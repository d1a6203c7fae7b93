"""Leaderboard tasks: each problem's record lists its own (:mod:`optgym.problem`); this module
looks them up by name.

>>> get_task("pass-ordering").budget
Budget(calls=2000, steps=None, seconds=None)
"""

from __future__ import annotations

from functools import cache

from optgym.problem import Task


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


def get_task(name: str) -> Task:
    """The task called ``name``; ``ValueError`` lists the known ones."""
    tasks = all_tasks()
    if not isinstance(name, str) or name not in tasks:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(tasks)}")
    return tasks[name]


__all__ = ["Task", "all_tasks", "get_task"]
