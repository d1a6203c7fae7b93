"""OptGym's problems, one package per folder, each declaring a ``PROBLEM`` record.

``PROBLEM_PACKAGES`` is the one line that lists them; a problem installed from another
distribution adds itself through the ``optgym.problems`` entry-point group
(``name = "package.module:PROBLEM"``). Importing this package registers every env id of
every problem with gymnasium.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from gymnasium.envs.registration import register, registry

from optgym.problem import Problem

#: The problem packages of ``optgym.envs``, in the order the listings show them.
PROBLEM_PACKAGES = ("passes", "lns", "schedule", "planning", "dataselect", "surco")


@cache
def problems() -> dict[str, Problem]:
    """Every problem by name: the packages above, then the ``optgym.problems`` entry points.
    ``ValueError`` for a package without a ``PROBLEM`` or two problems with one name."""
    found: list[Problem] = []
    for package in PROBLEM_PACKAGES:
        module = importlib.import_module(f"optgym.envs.{package}")
        found.append(_check(getattr(module, "PROBLEM", None), f"optgym.envs.{package}"))
    for ep in entry_points(group="optgym.problems"):
        found.append(_check(ep.load(), f"entry point {ep.name} = {ep.value}"))
    out: dict[str, Problem] = {}
    for problem in found:
        if problem.name in out:
            raise ValueError(f"two problems are named {problem.name!r}")
        out[problem.name] = problem
    return out


def _check(problem: object, where: str) -> Problem:
    if not isinstance(problem, Problem):
        raise ValueError(f"{where} defines no PROBLEM (an optgym.problem.Problem record)")
    return problem


def problem_of_env(env_id: str) -> Problem:
    """The problem that registers ``env_id``; ``ValueError`` listing the ids there are."""
    for problem in problems().values():
        if env_id in problem.env_ids:
            return problem
    raise ValueError(f"unknown environment id {env_id!r}; OptGym has: {', '.join(ENV_IDS)}")


def _register_all() -> tuple[str, ...]:
    ids = []
    for problem in problems().values():
        for entry in problem.envs:
            ids.append(entry.id)
            if entry.id not in registry:
                register(
                    id=entry.id,
                    entry_point=entry.entry_point,
                    max_episode_steps=entry.max_episode_steps,
                    nondeterministic=entry.nondeterministic,
                    # gymnasium's passive checker keeps a failed first reset's None and
                    # breaks the next step; every id passes check_env in the tests instead.
                    disable_env_checker=True,
                )
    return tuple(ids)


ENV_IDS = _register_all()

__all__ = ["ENV_IDS", "PROBLEM_PACKAGES", "problem_of_env", "problems"]
