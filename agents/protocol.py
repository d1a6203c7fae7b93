"""The protocol every OptGym policy follows, the record it returns, and its budget meter.

An agent is a class with

* a name and the problem it works on: a problem's own agent has them in its problem's
  record (``envs/<problem>/__init__.py``, ``PROBLEM.agents``: the name, the class, a line of
  description, and the env ids it fits where not all of the problem's); a plug-in (an
  ``optgym.agents`` entry point, or ``--agent package.module:Class``) declares the class
  attribute ``problems``: the problems (``"pass-ordering"``) or env ids it works on. The
  runner refuses a task outside them before anything runs;
* typed settings: its constructor's keyword arguments, with defaults (shipped agents are
  dataclasses with one attribute docstring per field), passed on the command line as
  ``--agent NAME:key=value,...``;
* ``solve(env, benchmark, budget, seed) -> Result``.

Learned agents add ``train(env, benchmarks, budget, seed)``, ``save(path)`` and
``load(path)`` (:class:`LearnedAgent`), and may name env settings to train with
(``train_env_kwargs``, on top of the task's); ``optgym train`` trains and saves one, and
``--agent NAME:path=FILE`` benchmarks the saved one.

The budget is the env's to count: inside ``solve``, ``with metered(env, budget, self,
benchmark=benchmark, seed=seed) as meter`` gives the meter the env charges (the runner's,
when the runner wrapped the env), with the env reset on the benchmark, so an agent reads
``meter.exhausted`` and ``meter.room()`` but never reports its own spending.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym

from optgym.budget import Budget, BudgetMeter
from optgym.state import EpisodeState


@dataclass
class Result:
    """The best solution an agent found: a replayable state, its reward, the budget used
    (as the env's meter counted it)."""

    state: EpisodeState
    budget_used: dict[str, float] = field(default_factory=dict)

    @property
    def reward(self) -> float:
        return self.state.reward

    @property
    def actions(self) -> list[Any]:
        return self.state.actions


@runtime_checkable
class Agent(Protocol):
    """``agent.solve(env, benchmark, budget, seed)`` -> :class:`Result`.

    ``env`` is an OptGym env, wrapped or not; agents reach ``env.unwrapped`` for the env's
    own methods (``fork``, ``state``, ``evaluate_batch``) and use only its public API.

    An agent whose result does not depend on its seed says so with the class attribute
    ``stochastic = False``; any other is taken to be stochastic, and the leaderboard wants
    at least :data:`optgym.leaderboard.submission.MIN_SEEDS` seeds of it per benchmark.

    What an agent needs, it declares, and the runner checks before anything runs
    (:func:`check_fit`; ``metered(env, budget, agent=self)`` checks it too):

    * what it works on: a problem's own agent, in its problem's record (the problem, or the
      env ids the record restricts it to); a plug-in, in its class attribute ``problems``
      (the problems, ``"path-planning"``, or env ids; ``"*"``: any);
    * ``requires`` (optional): the env methods it uses (``("evaluate_batch",)``): a
      problem with several envs may lack them in one (the runner checks the env's class);
    * ``budget_units`` (optional): the budget units of which it needs one limited
      (``("calls", "seconds")`` for a search that takes no env steps).
    """

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result: ...


@runtime_checkable
class LearnedAgent(Agent, Protocol):
    """An agent with a model: ``train`` it on benchmarks of a training split, ``save`` it,
    ``load`` it back (the ``path`` setting loads on construction)."""

    def train(
        self,
        env: gym.Env,
        benchmarks: list[str],
        budget: Budget,
        seed: int = 0,
        progress: bool = False,
    ) -> dict[str, Any]: ...

    def save(self, path: str | Path) -> None: ...

    def load(self, path: str | Path) -> None: ...


@contextmanager
def reading_weights(path: str | Path, name: str, how: str) -> Iterator[None]:
    """Turn a failure to read ``name``'s weights file ``path`` inside the block into one
    ``ValueError`` line: no such file, or not such a file (the error's type and at most 200
    characters of its message, never the file's bytes), each saying how to make one."""
    import re

    try:
        yield
    except FileNotFoundError:
        raise ValueError(f"{path}: no such {name} weights file; make one with: {how}") from None
    except Exception as e:  # noqa: BLE001  any malformed file: one clear error
        what = re.sub(r"\s+", " ", str(e))[:200]
        raise ValueError(
            f"{path} is not a {name} weights file ({type(e).__name__}: {what}); "
            f"make one with: {how}"
        ) from None


def saving_weights(path: str | Path, name: str, net: Any, fmt: str, meta: dict) -> None:
    """Write ``name``'s network ``net`` to ``path`` as :func:`reading_weights`' readers
    expect: its ``format`` tag ``fmt``, its ``state_dict`` and ``meta`` (tensors, numbers and
    strings only); ``ValueError`` when there is no network yet."""
    if net is None:
        raise ValueError(f"{name} has no network to save: train it first")
    import torch

    torch.save({"format": fmt, "state_dict": net.state_dict(), **meta}, path)


def _env_problem(env_id: str) -> str | None:
    from optgym.envs import problems

    return next((p.name for p in problems().values() if env_id in p.env_ids), None)


def fit_problem(agent: Any, budget: Budget | None = None, env: Any = None) -> str | None:
    """Why ``agent`` (an instance or its class) cannot run with ``budget`` on ``env`` (an
    env, wrapped or not, or an env class), or None: what it works on (its problem's record
    says, or a plug-in's ``problems``) does not include the env's id or problem, the env
    lacks a method it ``requires``, or the budget limits none of its ``budget_units``.
    Either of ``budget`` and ``env`` may be left out."""
    from optgym.agents.registry import record_fit

    cls = agent if isinstance(agent, type) else type(agent)
    names, recorded = record_fit(cls)
    name = names[0] if len(names) == 1 else cls.__name__
    units = tuple(getattr(cls, "budget_units", ()) or ())
    if budget is not None and units and all(getattr(budget, u) is None for u in units):
        return (f"{name} needs a budget that limits {' or '.join(units)}, got {budget} "
                "(e.g. calls=2000)")  # fmt: skip
    if env is None:
        return None
    # an env class, or the env itself (a proxy's attributes are the env's: not its class's)
    target = env if isinstance(env, type) else getattr(env, "unwrapped", env)
    env_id = getattr(target, "env_id", "") or ""
    # a plug-in's own (an instance may narrow its class's), else its record's
    works_on = tuple(getattr(agent, "problems", None) or recorded)
    if works_on and "*" not in works_on and env_id:
        if env_id not in works_on and _env_problem(env_id) not in works_on:
            return f"{name} works on {', '.join(works_on)}, not on {env_id}"
    missing = [n for n in getattr(cls, "requires", ()) or () if not hasattr(target, n)]
    if missing:
        return (f"{name} uses the env's {', '.join(missing)}, which "
                f"{env_id or type(target).__name__} does not have")  # fmt: skip
    return None


def check_fit(agent: Any, budget: Budget | None = None, env: Any = None) -> None:
    """``ValueError`` saying why ``agent`` cannot run with ``budget`` on ``env``
    (:func:`fit_problem`)."""
    why = fit_problem(agent, budget, env)
    if why is not None:
        raise ValueError(why)


@contextmanager
def metered(
    env: gym.Env,
    budget: Budget,
    agent: Any = None,
    *,
    benchmark: str | None = None,
    seed: int | None = None,
) -> Iterator[BudgetMeter]:
    """The meter ``env`` charges while an agent solves: the one already attached (the
    runner's budget wrapper), else a new one for ``budget``, detached on exit. Given the
    ``agent``, it first checks that the agent fits the env and the budget
    (:func:`check_fit`): an agent called on the wrong env fails with the reason, not an
    ``AttributeError`` halfway through. Given a ``benchmark``, it then resets the env on it
    with ``seed`` (``env.unwrapped.reset(seed=seed, options={"benchmark": benchmark})``),
    the first thing most agents do."""
    if agent is not None:
        check_fit(agent, budget, env)
    base = env.unwrapped
    attached = getattr(base, "meter", None)
    meter = attached if attached is not None else BudgetMeter(budget)
    if attached is None:
        base.attach_meter(meter)
    try:
        if benchmark is not None:
            base.reset(seed=seed, options={"benchmark": benchmark})
        yield meter
    finally:
        if attached is None:
            base.attach_meter(None)


def solved(env: gym.Env, meter: BudgetMeter, state: EpisodeState | None = None) -> Result:
    """The :class:`Result` of a solve: ``state`` (default: the env's current one) and what
    ``meter`` counted."""
    if state is None:
        state = env.unwrapped.state
    return Result(state=state, budget_used=meter.used())
