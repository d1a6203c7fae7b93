"""Problem and task records: what each problem package declares once (the core layer of
docs/architecture.md).

Every ``envs/<problem>/__init__.py`` defines ``PROBLEM``, a :class:`Problem`: its env ids,
datasets, leaderboard tasks, reference lines for plots, report hook and the agents that
work on it. Registration, ``optgym datasets``, the tasks, the CLI, the reports and the
leaderboard read these records; the core names no env id.

>>> from optgym.envs import problems
>>> [t.name for t in problems()["pass-ordering"].tasks]
['pass-ordering']
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from optgym.budget import Budget

if TYPE_CHECKING:
    import gymnasium as gym

    from optgym.datasets.dataset import Benchmark, Dataset, DatasetRegistry

#: How a task averages its scores over episodes.
AGGREGATES = ("geomean", "mean")


def check_scores(
    values: Iterable[float], how: str = "geomean", names: Sequence[str] | None = None
) -> list[float]:
    """``values`` as floats, checked for the task aggregate ``how``: ``ValueError`` for an
    unknown aggregate, and for a geomean (of ratios) over a score <= 0, naming it
    (``names[i]`` says what ``values[i]`` is: a results line, a benchmark). A geomean has no
    value there, and dropping the score would hide it."""
    if how not in AGGREGATES:
        raise ValueError(f"unknown aggregate {how!r}; allowed: {', '.join(AGGREGATES)}")
    values = [float(v) for v in values]
    if how == "geomean":
        for i, value in enumerate(values):
            if value <= 0:
                what = names[i] if names is not None and i < len(names) else f"score {i + 1}"
                raise ValueError(f"a geomean needs scores > 0 (ratios): {what} scored {value!r}")
    return values


def aggregate(
    values: Iterable[float], how: str = "geomean", names: Sequence[str] | None = None
) -> float:
    """The task aggregate of ``values``: their geometric (``"geomean"``, for ratios) or
    arithmetic (``"mean"``) mean; nan when there are none (or one is nan). The one
    aggregate of the runner, the reports and the leaderboard: a geomean over a score <= 0
    is a ``ValueError`` naming it (:func:`check_scores`), never dropped.

    >>> aggregate([0.5, 2.0]), aggregate([-1.0, 3.0], "mean")
    (1.0, 1.0)
    """
    values = check_scores(values, how, names)
    if not values:
        return float("nan")
    if how == "geomean":
        return math.exp(math.fsum(math.log(v) for v in values) / len(values))
    return math.fsum(values) / len(values)


#: An episode's default memory limit, as a multiple of its problem's memory request.
LIMIT_OVER_REQUEST = 4


@dataclass(frozen=True)
class Resources:
    """What one episode of a problem asks a cluster for: ``cpus`` and ``memory_mb``. Its
    default memory limit (``limit_mb``) is :data:`LIMIT_OVER_REQUEST` times the request."""

    cpus: float = 1.0
    memory_mb: int = 2048

    @property
    def limit_mb(self) -> int:
        return LIMIT_OVER_REQUEST * int(self.memory_mb)

    def ray_options(self) -> dict[str, Any]:
        return {"num_cpus": self.cpus, "memory": int(self.memory_mb) * 2**20}


def load_object(target: str) -> Any:
    """The object named by ``"package.module:attribute"``; ``ValueError`` saying what is
    missing."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected 'package.module:Name', got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"cannot import module {module_name!r} (from {target!r}): {e}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no {attribute!r} (from {target!r})") from None


def _lazy_datasets(targets: str | tuple[str, ...]) -> Callable[[], list[Dataset]]:
    """A function that imports each of ``targets`` (``"package.module:Name"``, as
    :func:`load_object` reads it: a ``Dataset`` class, or a function that returns datasets)
    when called, calls it without arguments, and returns the datasets, in order."""
    targets = (targets,) if isinstance(targets, str) else tuple(targets)

    def call() -> list[Dataset]:
        from optgym.datasets.dataset import Dataset

        out: list[Dataset] = []
        for target in targets:
            made = load_object(target)()
            out.extend([made] if isinstance(made, Dataset) else made)
        return out

    call.__qualname__ = call.__name__ = "datasets"
    return call


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a problem package: ``names`` maps each exported name to
    the submodule that defines it, imported on first use (so that listing problems does not
    import torch or a backend)."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


@dataclass(frozen=True)
class EnvExample:
    """A small, quick episode of an env: ``steps`` steps on ``benchmark`` in an env made with
    ``config`` (a setting other than the default). The contract test suite runs every
    registered id on its example."""

    benchmark: str
    config: dict[str, Any]
    steps: int = 1


@dataclass(frozen=True)
class EnvEntry:
    """One registered env id: ``gymnasium.register(id, entry_point, ...)``, and its example."""

    id: str
    entry_point: str  # "optgym.envs.passes.env:PassOrderingEnv"
    example: EnvExample
    max_episode_steps: int | None = None
    nondeterministic: bool = False  # the reward is measured (times), not computed

    def env_class(self) -> type:
        """The env class (imports its module)."""
        return load_object(self.entry_point)


@dataclass(frozen=True)
class Task:
    """A benchmarkable task: a fixed env config, dataset split, budget and score.

    ``score(env)`` reads the score of the env's current (replayed) state. ``reference``
    is the dashed line of the bench plot: ``(score, label)``.
    """

    name: str
    env_id: str
    env_kwargs: dict[str, Any]
    datasets: tuple[tuple[str, str], ...]  # (dataset URI, split)
    budget: Budget
    score: Callable[[gym.Env], float]
    score_name: str
    # The agents of the task's initial leaderboard entries, references first, then baselines
    # (scripts/initial_board.py runs them); ``optgym tasks`` lists them.
    reference_agents: tuple[str, ...] = field(default=())
    # How far a replayed score may be from the claim (relative): measured run times only
    # reproduce within their noise.
    score_rtol: float = 1e-6
    # How scores are averaged over episodes: "geomean" for ratios (> 0), "mean" for scores
    # that can be zero or negative.
    aggregate: str = "geomean"
    reference: tuple[float, str] | None = None
    # The leaderboard's test set: the first ``board_size`` benchmarks of each dataset's
    # split (a stored split with fewer gives all it has). Episodes are minutes long, so the
    # set is small; hidden rounds draw further benchmarks of the same splits.
    board_size: int = 3
    # The CPU time one leaderboard rerun episode may spend, its processes together (the
    # sandboxed agent, the env and its backends), in seconds: it bounds what an agent can do
    # off the meter (a simulator of its own, say) where its budget counts work.
    cpu_seconds: float = 1800.0
    # How far the score of a leaderboard rerun of an episode may be from its line's, relative,
    # where the task counts time (a seconds budget, measured run times); where it counts
    # work, a rerun must give the line back exactly.
    rerun_rtol: float = 0.25
    problem: str = ""  # filled in by the Problem that lists the task

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES:
            raise ValueError(
                f"unknown aggregate {self.aggregate!r} for task {self.name!r}; "
                f"allowed: {', '.join(AGGREGATES)}"
            )
        if isinstance(self.board_size, bool) or not isinstance(self.board_size, int):
            raise ValueError(f"board_size of task {self.name!r} must be an int")
        if self.board_size < 1:
            raise ValueError(f"board_size of task {self.name!r} must be >= 1")
        if not (isinstance(self.cpu_seconds, (int, float)) and self.cpu_seconds > 0):
            raise ValueError(f"cpu_seconds of task {self.name!r} must be a positive number")

    def splits(self) -> dict[str, str]:
        """Dataset URI -> the split whose benchmarks the task scores."""
        return dict(self.datasets)


class AgentRecord(NamedTuple):
    """A built-in agent of a problem, as its record lists it: the only place its name (the
    record's key), its class, its problem and the env ids it fits are said.

    ``target`` is ``"package.module:Class[:key=value,...]"`` (preset settings),
    ``description`` a line for ``optgym agents`` (empty: the class docstring's first
    sentence), and ``envs`` the env ids of the problem the agent fits where it does not fit
    them all (a planner of whole plans fits the open-loop env only)."""

    target: str
    description: str = ""
    envs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """Everything the core needs to know about one problem.

    ``datasets`` is called on use (it may build nothing, but its modules can be heavy): a
    record names its dataset classes (or functions that return datasets) as
    ``"package.module:Name"``, like its envs and agents, imported on the first call;
    :meth:`dataset_registry` is what the problem's envs resolve benchmarks with;
    ``agents`` maps agent names to ``(target, description)`` or ``(target, description,
    envs)`` (an :class:`AgentRecord`; ``envs`` restricts the agent to some of the problem's
    env ids): the only record of the built-in agents' names and what they fit;
    ``report(rows, plot_path)`` prints the problem's own tables and plots after a bench run
    and returns the paths it wrote; ``board_table(rows)`` makes the header and rows of a
    table the leaderboard's task page shows under its entries, from every entry's result
    lines together (each line's ``agent`` is its entry's name): figures measured after the
    fact across entries, such as gaps to the best any entry found. ``resources`` is what one
    episode
    asks a Ray cluster for (CPUs, memory). ``backends`` is what a sandboxed agent must not
    reach, so that it cannot build an unmetered env of its own (:mod:`optgym.sandbox`):
    ``"module:NAME"`` (an installed package's folder), ``"site:NAME"`` (a folder in
    site-packages) or an absolute glob. ``check_benchmark(benchmark)`` raises
    ``ValueError`` (naming what is wrong) for a benchmark no episode can be run on, such as
    a map with no path; ``optgym bench`` calls it on every benchmark before any episode
    starts.
    """

    name: str  # "pass-ordering"
    title: str
    envs: tuple[EnvEntry, ...]
    datasets: Callable[[], Iterable[Dataset]] | str | tuple[str, ...]  # names: made a function
    tasks: tuple[Task, ...] = ()
    agents: Mapping[str, AgentRecord | tuple[Any, ...]] = field(default_factory=dict)
    report: Callable[[list[dict], Path], list[Path]] | None = None
    board_table: Callable[[list[dict]], tuple[tuple[str, ...], list[tuple]]] | None = None
    resources: Resources = Resources()
    backends: tuple[str, ...] = ()
    check_benchmark: Callable[[Benchmark], None] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.datasets, (str, tuple)):
            object.__setattr__(self, "datasets", _lazy_datasets(self.datasets))
        ids = {e.id for e in self.envs}
        tasks = []
        for task in self.tasks:
            if task.env_id not in ids:
                raise ValueError(
                    f"task {task.name!r} of problem {self.name!r} uses {task.env_id!r}, "
                    f"which the problem does not register ({', '.join(sorted(ids))})"
                )
            if task.problem != self.name:
                task = replace(task, problem=self.name)
            tasks.append(task)
        object.__setattr__(self, "tasks", tuple(tasks))
        agents = {}
        for name, entry in self.agents.items():
            record = AgentRecord(*entry)
            outside = [e for e in record.envs if e not in ids]
            if outside:
                raise ValueError(
                    f"agent {name!r} of problem {self.name!r} is restricted to "
                    f"{', '.join(outside)}, which the problem does not register "
                    f"({', '.join(sorted(ids))})"
                )
            agents[name] = AgentRecord(record.target, record.description, tuple(record.envs))
        object.__setattr__(self, "agents", agents)

    @property
    def env_ids(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.envs)

    def dataset_registry(self) -> DatasetRegistry:
        """A new registry of the problem's datasets (``datasets`` called once): what its envs
        resolve benchmark URIs with (``env.datasets``) and ``optgym datasets`` lists."""
        from optgym.datasets.dataset import DatasetRegistry

        return DatasetRegistry(self.datasets())
