"""The env contract every OptGym problem shares (the core of docs/architecture.md):
:class:`OptGymEnv`.

The base owns what is the same for every problem: the env id, the benchmark named by
``reset(options={"benchmark": uri})`` or set for the next reset (``env.benchmark = uri``),
the datasets (``env.datasets["csmith-v0"]``), ``multistep(actions)``, the episode's
bookkeeping (seed, actions, reward, work spent), ``state``, ``apply``, ``validate``,
``fork``, the budget meter the runner attaches, the policy that a backend crash ends only
the episode (``info["error"]``; the env recovers on reset), and ``config``: the
constructor's keyword arguments, recorded in every state and used by ``validate`` to
rebuild the env exactly as it was run.

A problem's env subclasses it and supplies small hooks:

* ``_reset(benchmark) -> (obs, info)``: load the benchmark (if it changed) and start an
  episode on it;
* ``_check_action(action)`` (``ValueError`` naming the bad value and what is allowed) and
  ``_step(action) -> (obs, reward, terminated, truncated, info)``;
* optionally ``_reference_step(name)`` (a reference pipeline applied as the first step),
  ``_exact_episode_reward()`` (the episode's reward from the env's own exact record, e.g.
  integer costs, instead of the float sum of its steps), ``_replay(state)``, ``_extras()``,
  ``_versions()``, ``_record_action(action, info)``, ``_fork_into(new)`` and ``_on_crash()``;
* ``_named_observations() -> {name: NamedSpace(space, compute)}``: the env's named
  observation spaces (its own observation under a name, and any other view), which
  ``env.observation[name]`` computes on request;
* class attributes: ``record`` (the problem's record, whose datasets the env resolves
  benchmarks with), ``env_id``, ``default_benchmark``, ``work_unit`` (the problem's unit of
  work: compilations, measurements, sub-MIP solves, plan evaluations, retrainings, counted in
  every ``info`` under that name), ``reward_tolerance``, ``reward_spaces``,
  ``observation_spaces`` (the names ``_named_observations`` gives, the default first) and
  ``references``.

Wherever the env does a unit of work it calls ``self._spend(n)``, which charges the attached
budget meter (and refuses work past the budget with :class:`BudgetExceeded`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import math
import time
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import gymnasium as gym
import numpy as np

from optgym.budget import BudgetExceeded, BudgetMeter
from optgym.datasets.dataset import Benchmark, DatasetRegistry
from optgym.state import EpisodeState, ValidationResult, check_benchmark_unchanged

if TYPE_CHECKING:
    from optgym.problem import Problem

ObsType = TypeVar("ObsType")
ActType = TypeVar("ActType")
EnvType = TypeVar("EnvType", bound="OptGymEnv")
StepResult = tuple[Any, float, bool, bool, dict[str, Any]]

__all__ = [
    "BackendCrash",
    "BudgetExceeded",
    "NamedSpace",
    "ObservationView",
    "OptGymEnv",
    "RewardTolerance",
    "UnknownObservationSpace",
    "jsonable",
]


class BackendCrash(RuntimeError):
    """A backend (LLVM, Halide's JIT code, SCIP, a training run) died or failed inside a
    step. It ends only that episode: the step returns ``truncated=True`` with the message in
    ``info["error"]`` and the next ``reset`` starts afresh."""


@dataclass(frozen=True)
class RewardTolerance:
    """How far a replayed reward may be from the claimed one.

    ``kind``: ``"exact"`` (deterministic rewards), ``"relative"`` (``value`` is a relative
    tolerance), ``"absolute"`` (``value`` is an absolute one, e.g. a log speedup for measured
    times) or ``"unchecked"`` (the reward is not replayed; ``why`` says what is checked
    instead).
    """

    kind: str = "exact"
    value: float = 0.0
    why: str = ""

    KINDS: ClassVar[tuple[str, ...]] = ("exact", "relative", "absolute", "unchecked")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown tolerance kind {self.kind!r}; allowed: {self.KINDS}")
        if not (self.value >= 0 and math.isfinite(self.value)):
            raise ValueError(f"a tolerance must be finite and >= 0, got {self.value!r}")

    def matches(self, claimed: float, replayed: float) -> bool:
        """Whether ``replayed`` reproduces ``claimed`` within this tolerance (never for NaN)."""
        if self.kind == "unchecked":
            return True
        if not (math.isfinite(claimed) and math.isfinite(replayed)):
            return claimed == replayed and not math.isnan(claimed)
        if self.kind == "exact":
            return claimed == replayed
        if self.kind == "relative":
            return abs(claimed - replayed) <= self.value * max(1.0, abs(claimed))
        return abs(claimed - replayed) <= self.value

    def __str__(self) -> str:
        if self.kind == "exact":
            return "exact"
        if self.kind == "unchecked":
            return f"not replayed ({self.why})" if self.why else "not replayed"
        return f"{self.kind} {self.value:.3g}"


@dataclass(frozen=True)
class NamedSpace:
    """One named observation space of an env: its gymnasium ``space`` and ``compute``, which
    gives the observation of the episode as it stands (no work unit is charged)."""

    space: gym.Space
    compute: Callable[[], Any]


class UnknownObservationSpace(KeyError, ValueError):
    """An observation space name the env does not have (a ``KeyError`` for lookups, a
    ``ValueError`` for arguments); its message names the allowed ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _unknown(name: object, allowed: Iterable[str]) -> UnknownObservationSpace:
    return UnknownObservationSpace(
        f"unknown observation space {name!r}; allowed: {', '.join(allowed) or 'none'}"
    )


class _Spaces(dict[str, gym.Space]):
    """Names to spaces, whose missing keys raise :class:`UnknownObservationSpace`."""

    def __missing__(self, name: str) -> gym.Space:
        raise _unknown(name, self)


class ObservationView(Mapping[str, Any]):
    """``env.observation``: the env's named observation spaces, each computed on request
    (``env.observation["Autophase"]``), after CompilerGym's ``env.observation``.

    Its keys are the names (``list(env.observation)``, ``"Ir" in env.observation``);
    ``spaces`` maps each to its gymnasium space. An unknown name raises
    :class:`UnknownObservationSpace` (a ``KeyError``) naming the allowed ones; computing
    one before ``reset()`` or after ``close()`` is a ``RuntimeError``.
    """

    def __init__(self, env: OptGymEnv) -> None:
        self._env = env

    def __getitem__(self, name: str) -> Any:
        named = self._env._named_space(name)
        self._env._need_open(f"observation[{name!r}]")
        self._env._need_reset(f"observation[{name!r}]")
        return named.compute()

    def __iter__(self) -> Iterator[str]:
        return iter(self._env._named_observations())

    def __len__(self) -> int:
        return len(self._env._named_observations())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._env._named_observations()

    @property
    def spaces(self) -> dict[str, gym.Space]:
        """Each name's gymnasium space (an unknown name raises
        :class:`UnknownObservationSpace`, as ``env.observation[name]`` does)."""
        return _Spaces(
            {name: named.space for name, named in self._env._named_observations().items()}
        )

    def __repr__(self) -> str:
        return f"ObservationView({', '.join(self)})"


def _same(a: Any, b: Any, rtol: float) -> bool:
    """JSON values equal, numbers within ``rtol`` (relative; at least 1e-9)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=max(rtol, 1e-9), abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], rtol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, rtol) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: paths as strings, tuples as lists, NumPy scalars and
    arrays as Python numbers and lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def as_numbers(value: Any, what: str, allowed: str, booleans: str = "booleans") -> np.ndarray:
    """``value`` (an action, a plan) as a float64 array; ``ValueError`` naming ``what`` is
    wrong and ``allowed`` when it is not an array of real numbers (strings, booleans,
    objects, complex numbers, ragged lists) instead of NumPy's conversion error. The shape
    and the values are the caller's to check; ``booleans`` names what booleans would be
    taken for (a mask, say)."""
    try:
        raw = np.asarray(value)
    except Exception:  # a ragged list or an object NumPy cannot hold
        raise ValueError(f"{what} must be an array of numbers; {allowed}") from None
    if raw.dtype.kind == "b":
        raise ValueError(f"{what} must hold numbers, not {booleans}; {allowed}")
    if raw.dtype.kind not in "iuf":
        raise ValueError(
            f"{what} must hold numbers, got an array of dtype {raw.dtype} "
            f"({type(value).__name__}); {allowed}"
        )
    return raw.astype(np.float64)


def _marking_closed(close: Any) -> Any:
    """A problem's ``close`` that also marks its env closed (even when it fails)."""

    @functools.wraps(close)
    def closing(self: OptGymEnv, *args: Any, **kwargs: Any) -> Any:
        try:
            return close(self, *args, **kwargs)
        finally:
            self._closed = True

    return closing


class OptGymEnv(gym.Env[ObsType, ActType], Generic[ObsType, ActType], metaclass=ABCMeta):
    """The base of every OptGym env; see the module docstring for the hooks it calls.

    Subclasses call ``super().__init__(benchmark=..., reward_space=..., render_mode=...)``
    from their own ``__init__`` (the base checks the reward space against ``reward_spaces``
    and the render mode against ``metadata``, and takes the datasets from ``record`` unless
    given ``datasets=...``). The constructor's
    arguments are captured before ``__init__`` runs (in ``__new__``), so ``config`` always
    holds every keyword argument with its default filled in, less those in
    ``config_ignore`` (the first benchmark and the render mode, which do not change what a
    state replays to) and those in ``config_added`` left at their default (arguments a
    version gained later: states made before it still match).
    """

    #: The problem's record (``envs/<problem>/__init__.py``'s ``PROBLEM``): ``env.datasets``
    #: is a registry of its datasets (``record.dataset_registry()``) unless the env passes
    #: its own.
    record: ClassVar[Problem | None] = None
    #: The registered id, e.g. ``"optgym/PassOrdering-v0"``.
    env_id: ClassVar[str] = ""
    #: The benchmark of the first reset when none is given.
    default_benchmark: ClassVar[str] = ""
    #: The problem's unit of work, counted in every ``info`` under this name.
    work_unit: ClassVar[str] = "steps"
    #: How a replayed reward is compared with the claimed one.
    reward_tolerance: ClassVar[RewardTolerance] = RewardTolerance("exact")
    #: Reward space names, the default first.
    reward_spaces: ClassVar[tuple[str, ...]] = ()
    #: Names of the observation spaces ``env.observation`` offers, the default first (what
    #: ``optgym envs`` lists without making the env).
    observation_spaces: ClassVar[tuple[str, ...]] = ()
    #: Reference pipelines ``apply_reference`` takes (e.g. ``"Oz"``); empty when none.
    references: ClassVar[tuple[str, ...]] = ()
    #: Constructor arguments left out of ``config``.
    config_ignore: ClassVar[tuple[str, ...]] = ("benchmark", "render_mode")
    #: Constructor arguments added after states were published: left out of ``config``
    #: while at their default, so that those states still match an env made today.
    config_added: ClassVar[tuple[str, ...]] = ()
    #: Keys of ``state.extras`` that hold measurements a replay cannot repeat (times); the
    #: env's ``_replay`` checks that they hold together, ``check_extras`` does not compare them.
    measured_extras: ClassVar[frozenset[str]] = frozenset()
    #: Measured extras a version added after states were published: a state without them
    #: still validates (the env's ``_replay`` reads them as optional). They came together, so
    #: a state holds all of them or none: one that holds some is from no version.
    extras_added: ClassVar[frozenset[str]] = frozenset()
    #: Keys of ``state.extras`` that agents may add (e.g. a search's trace), checked by
    #: ``_check_agent_extras``.
    agent_extras: ClassVar[frozenset[str]] = frozenset()

    reward_space_name: str
    #: Set by ``close()`` (of this class or any subclass), cleared by a successful ``reset()``.
    _closed: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A problem's close() ends its backends and need not call super().close(): wrap it,
        # so that every env knows it was closed and says so instead of failing on a backend.
        close = cls.__dict__.get("close")
        if close is not None:
            cls.close = _marking_closed(close)  # type: ignore[method-assign]

    def __new__(cls, *args: Any, **kwargs: Any) -> OptGymEnv:
        self = super().__new__(cls)
        try:
            bound = inspect.signature(cls.__init__).bind(self, *args, **kwargs)
        except TypeError:  # __init__ raises the same error with its own message
            self._config = {}
            return self
        bound.apply_defaults()
        config: dict[str, Any] = {}
        for name, param in inspect.signature(cls.__init__).parameters.items():
            if name == "self" or name in cls.config_ignore:
                continue
            if name in cls.config_added and bound.arguments[name] == param.default:
                continue
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                config.update(jsonable(bound.arguments.get(name, {})))
            elif param.kind is not inspect.Parameter.VAR_POSITIONAL:
                config[name] = jsonable(bound.arguments[name])
        self._config = config
        return self

    def __init__(
        self,
        *,
        benchmark: str | None,
        reward_space: str,
        render_mode: str | None = None,
        datasets: DatasetRegistry | None = None,
    ):
        if reward_space not in self.reward_spaces:
            allowed = ", ".join(self.reward_spaces)
            raise ValueError(f"unknown reward space {reward_space!r}; allowed: {allowed}")
        modes = self.metadata.get("render_modes", [])
        if render_mode is not None and render_mode not in modes:
            allowed = ", ".join(["None", *map(repr, modes)])
            raise ValueError(f"unknown render_mode {render_mode!r}; allowed: {allowed}")
        self.reward_space_name = reward_space
        self.render_mode = render_mode
        if datasets is None:
            if self.record is None:
                raise TypeError(f"{type(self).__name__} needs a problem record or datasets")
            datasets = self.record.dataset_registry()
        self.datasets = datasets
        self._benchmark_uri = benchmark or self.default_benchmark
        self._next_benchmark: str | None = None  # set by ``env.benchmark = uri``
        self._benchmark: Benchmark | None = None
        self._meter: BudgetMeter | None = None
        self._started = False
        self._new_episode(None)

    # ---- what the base owns ------------------------------------------------------------------
    @property
    def observation(self) -> ObservationView:
        """The named observation spaces, each computed on request:
        ``env.unwrapped.observation["Name"]``; ``env.unwrapped.observation.spaces`` maps the
        names to their gymnasium spaces. Computing one charges no work unit."""
        return ObservationView(self)

    def _named_space(self, name: str) -> NamedSpace:
        """The named observation space ``name``; :class:`UnknownObservationSpace` naming the
        allowed ones."""
        named = self._named_observations()
        if not isinstance(name, str) or name not in named:
            raise _unknown(name, named)
        return named[name]

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments (JSON values), as every state records them."""
        return copy.deepcopy(self._config)

    @property
    def benchmark(self) -> str:
        """URI of the current episode's benchmark; while no episode runs (before the first
        reset, after a failed one), of the benchmark the next reset takes.

        Setting it names the benchmark of the next ``reset()`` (as CompilerGym's
        ``env.benchmark = uri``); the episode under way keeps its own. The URI is checked at
        once, as ``reset`` checks its option: a malformed URI, an unknown dataset or a
        missing file is a ``ValueError`` and nothing changes. Only the next reset sees it,
        whether it succeeds or not, and one that names a benchmark in its options (as
        ``apply`` and ``validate`` do) takes that one instead; later resets keep the
        benchmark they loaded.

        >>> env.unwrapped.benchmark = "generator://csmith-v0/7"
        >>> obs, info = env.reset()   # on generator://csmith-v0/7
        """
        if not self._started and self._next_benchmark is not None:
            return self._next_benchmark
        return self._benchmark_uri

    @benchmark.setter
    def benchmark(self, uri: str) -> None:
        if not isinstance(uri, str):
            raise ValueError(f"the benchmark must be a URI string, got {type(uri).__name__}")
        self.datasets.benchmark(uri)  # ValueError for a bad or unknown URI, as reset gives
        self._next_benchmark = uri

    @property
    def benchmark_sha256(self) -> str:
        """The sha256 of the current benchmark's file ("" before the first reset)."""
        return self._benchmark.sha256 if self._benchmark is not None else ""

    @property
    def episode_reward(self) -> float:
        """The episode's reward so far: what ``state.reward`` records and ``apply`` returns.
        The sum of its step rewards, unless the env computes it exactly
        (``_exact_episode_reward``): then it depends only on where the episode stands, not
        on how its steps were grouped (forks, a reference, a replay), so that a replay
        either gives the very same float or a truly different episode."""
        exact = self._exact_episode_reward() if self._started else None
        return self._total if exact is None else exact

    @property
    def episode_work(self) -> int:
        """Units of work (``work_unit``) this env spent since the last reset (a fork counts
        its own; an attached meter counts both)."""
        return self._work

    @property
    def meter(self) -> BudgetMeter | None:
        """The budget meter charged for this env's work (the runner's), or None."""
        return self._meter

    #: CPU seconds the agent spends outside this process (see :meth:`attach_agent_clock`).
    _agent_clock: Callable[[], float] | None = None

    def attach_agent_clock(self, clock: Callable[[], float] | None) -> None:
        """Count ``clock()``, the CPU seconds of an agent that runs in another process (a
        sandboxed agent), in :meth:`cpu_clock`, as an agent in this process counts in it;
        None: stop. Forks made afterwards share it."""
        self._agent_clock = clock

    def cpu_clock(self) -> float:
        """CPU seconds of this process and of the agent's process where it runs elsewhere:
        the clock of envs whose budget is computing time (the agent's included)."""
        clock = self._agent_clock
        return time.process_time() + (clock() if clock is not None else 0.0)

    def attach_meter(self, meter: BudgetMeter | None) -> None:
        """Charge every unit of work and every step from now on to ``meter`` (None: stop).
        Forks made afterwards share it, so work done on a fork counts too."""
        self._meter = meter

    def warm_up(self) -> None:
        """Do now the work the env does for its own bookkeeping of the current benchmark (a
        reference it times to score or to bound a step), which every agent would otherwise
        pay inside its first step. The runner calls it after its reset, before an agent's
        budget starts, as it loads the benchmark there. Nothing by default."""
        self._need_reset("warm_up()")

    def _new_episode(self, seed: int | None) -> None:
        self._seed = seed
        self._actions: list[Any] = []
        self._reference: str | None = None
        self._total = 0.0
        self._work = 0
        self._step_work = 0
        self._done = False
        self._error: str | None = None
        self._last_obs: Any = None
        self._start_time = time.time()

    def _need_reset(self, what: str) -> None:
        if not self._started:
            raise RuntimeError(f"call reset() before {what}")

    def _need_open(self, what: str) -> None:
        if self._closed:
            raise RuntimeError(
                f"the env is closed: {what} needs an open env (reset() starts it again, or make "
                "a new one)"
            )

    def _spend(self, units: int = 1) -> None:
        """Count ``units`` of work about to be done; ``BudgetExceeded`` (nothing is done)
        when the attached budget has no room for them."""
        if units < 0:
            raise ValueError(f"work units must be >= 0, got {units}")
        if self._meter is not None:
            self._meter.spend(calls=units, unit=self.work_unit)
        self._work += units
        self._step_work += units

    # ---- gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        uri = options.pop("benchmark", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; allowed: 'benchmark'")
        if not (uri is None or isinstance(uri, str)):
            raise ValueError(f"the benchmark option must be a URI string, got {type(uri).__name__}")
        if uri is None:
            uri = self._next_benchmark or self._benchmark_uri
        self._next_benchmark = None  # a benchmark set for the next reset is used once
        self._started = False  # a failed reset ends the episode: step() asks for a reset
        benchmark = self.datasets.benchmark(uri)  # ValueError for a bad or unknown URI
        self._new_episode(seed)
        previous = self._benchmark, self._benchmark_uri
        self._benchmark, self._benchmark_uri = benchmark, uri
        try:
            obs, info = self._reset(benchmark)
        except BaseException:
            self._benchmark, self._benchmark_uri = previous  # the next reset can go back
            raise
        self._started = True
        self._closed = False  # a reset after close() starts the backends again
        self._last_obs = obs
        info.setdefault("benchmark", uri)
        info[self.work_unit] = self._step_work
        return obs, info

    def _need_episode(self, what: str) -> None:
        """``RuntimeError`` naming ``what`` unless the env is open, reset and its episode
        still running (not ended by an error or by the episode's end)."""
        self._need_open(what)
        self._need_reset(what)
        if self._error is not None:
            raise RuntimeError(f"the episode ended with an error ({self._error}); call reset()")
        if self._done:
            raise RuntimeError("the episode is over; call reset()")

    def step(self, action: ActType) -> StepResult:
        self._need_episode("step()")
        checked = self._check_action(action)

        def record(info: dict[str, Any]) -> Any:
            return self._record_action(checked, info)

        return self._run(lambda: self._step(checked), record)

    def multistep(self, actions: Iterable[ActType]) -> StepResult:
        """Take several actions in one call, as CompilerGym's ``env.multistep``:
        ``(obs, reward, terminated, truncated, info)`` with the observation after the last
        action taken, the rewards summed, and that action's ``info``, in which the work unit
        (``info[work_unit]``) counts the work of every action taken and ``info["steps"]``
        how many were taken.

        The actions are taken one by one, each a ``step`` of its own: each is checked (a bad
        one raises ``ValueError`` as ``step`` does, the actions before it staying taken),
        recorded in the state, and counted by an attached budget (a step and its work). It
        stops early, with the remaining actions not taken, when the episode ends
        (``terminated`` or ``truncated``), when a step fails (``info["error"]``), or when
        the attached budget is spent: the step that spends it comes back ``truncated``, as
        ``BudgetWrapper`` truncates it. At least one action is needed.

        Wrappers' ``step`` is not called (reach it with ``env.unwrapped.multistep``): a
        registered ``max_episode_steps`` does not cut it short; a budget does.
        """
        if isinstance(actions, (str, bytes)) or not isinstance(actions, Iterable):
            raise ValueError(
                f"multistep takes an iterable of actions (a list), got {type(actions).__name__}"
            )
        self._need_open("multistep()")
        self._need_reset("multistep()")
        total, work, taken = 0.0, 0, 0
        result: StepResult | None = None
        for action in actions:
            obs, reward, terminated, truncated, info = self.step(action)
            taken += 1
            total += reward
            work += info.get(self.work_unit, 0)
            meter = self._meter
            if meter is not None and meter.exhausted and not terminated:
                truncated = True
            result = obs, reward, terminated, truncated, info
            if terminated or truncated or "error" in info:
                break
        if result is None:
            raise ValueError("multistep needs at least one action, got none")
        obs, _, terminated, truncated, info = result
        info[self.work_unit] = work
        info["steps"] = taken
        return obs, total, terminated, truncated, info

    def apply_reference(self, name: str) -> StepResult:
        """Run a reference (``references``: LLVM's -Oz pipeline, a Halide autoscheduler) as
        the episode's first step, so that the state replays as reference + actions."""
        self._need_open("apply_reference()")
        self._need_reset("apply_reference()")
        if name not in self.references:
            allowed = ", ".join(self.references) or "none (this env has no references)"
            raise ValueError(f"unknown reference {name!r}; allowed: {allowed}")
        if self._actions or self._reference is not None:
            raise RuntimeError("a reference can only be applied right after reset()")
        if self._done or self._error is not None:
            raise RuntimeError("the episode is over; call reset()")

        def record(info: dict[str, Any]) -> None:
            self._reference = name

        return self._run(lambda: self._reference_step(name), record, action=False)

    def _run(self, do: Any, record: Any, action: bool = True) -> StepResult:
        """One step: charge it, run ``do``, turn a backend crash into the end of the episode,
        then book the reward, the work and the action (``record``) unless it failed."""
        meter = self._meter
        if meter is not None:
            meter.check(steps=1, unit=self.work_unit)
        self._step_work = 0
        try:
            obs, reward, terminated, truncated, info = do()
        except BackendCrash as e:
            self._error = f"{type(e).__name__}: {e}"
            self._on_crash()
            obs, reward, terminated, truncated = self._last_obs, 0.0, False, True
            info = {"error": self._error}
        if meter is not None:
            meter.charge(steps=1)  # after the work: a step refused for its work is not counted
        reward = float(reward)
        if "error" in info:
            self._error = self._error or str(info["error"])
        else:
            result = record(info)
            if action:
                self._actions.append(result)
        self._total += reward
        self._done = bool(terminated or truncated) or self._done
        self._last_obs = obs
        info[self.work_unit] = self._step_work
        return obs, reward, bool(terminated), bool(truncated), info

    # ---- states ------------------------------------------------------------------------------
    @property
    def state(self) -> EpisodeState:
        """The episode so far as a replayable, JSON-serializable record."""
        self._need_reset("reading the state")
        import optgym

        versions = {"optgym": optgym.__version__, **self._versions()}
        versions["benchmark_sha256"] = self.benchmark_sha256
        return EpisodeState(
            env_id=self.spec.id if self.spec is not None else self.env_id,
            benchmark=self._benchmark_uri,
            reward_space=self.reward_space_name,
            actions=copy.deepcopy(self._actions),
            reward=self.episode_reward,
            seed=self._seed,
            reference=self._reference,
            walltime=time.time() - self._start_time,
            versions=versions,
            extras=jsonable(self._extras()),
            config=self.config,
        )

    def _check_state(self, state: EpisodeState) -> None:
        """``ValueError`` unless ``state`` belongs to this env as it is configured."""
        if not isinstance(state, EpisodeState):
            raise ValueError(f"expected an EpisodeState, got {type(state).__name__}")
        ids = {self.env_id} | ({self.spec.id} if self.spec is not None else set())
        if state.env_id not in ids:
            raise ValueError(f"state is for {state.env_id!r}, not {self.env_id!r}")
        if state.reward_space != self.reward_space_name:
            raise ValueError(
                f"state was scored with {state.reward_space!r}, this env uses "
                f"{self.reward_space_name!r}"
            )
        if state.config and state.config != self._config:
            diff = sorted(
                k
                for k in set(state.config) | set(self._config)
                if state.config.get(k, "<unset>") != self._config.get(k, "<unset>")
            )
            raise ValueError(
                f"state was made with another config (differs in {', '.join(diff)}); "
                "validate() rebuilds the env with the state's config"
            )

    def apply(self, state: EpisodeState) -> float:
        """Reset to ``state.benchmark`` and replay the state; the reward it earns now.
        ``ValueError`` (or ``RuntimeError`` for a failed replay) if it cannot be replayed;
        ``RuntimeError`` after ``close()``."""
        self._need_open("apply()")
        self._check_state(state)
        self.reset(seed=state.seed, options={"benchmark": state.benchmark})
        check_benchmark_unchanged(state, self.benchmark_sha256)
        self._replay(state)
        return self.episode_reward

    def validate(self, state: EpisodeState | None = None) -> ValidationResult:
        """Replay ``state`` (default: this episode's) from a fresh reset, in an env built with
        the state's config when it differs from this one's (a state without a config, read
        from a CompilerGym CSV, replays here); ``ok`` when the reward reproduces within
        ``reward_tolerance``. ``work`` is what the replay spent. ``RuntimeError`` after
        ``close()``."""
        self._need_open("validate()")
        state = state if state is not None else self.state
        if isinstance(state, EpisodeState) and state.config and state.config != self._config:
            try:
                other = type(self)(**state.config)
            except (TypeError, ValueError) as e:
                return ValidationResult(state, False, None, f"bad config in the state: {e}")
            try:
                if other._config != state.config:
                    return ValidationResult(
                        state, False, None, "the state's config is not one this env records"
                    )
                other.spec = self.spec
                return other.validate(state)
            finally:
                other.close()
        try:
            reward = self.apply(state)
        except (ValueError, RuntimeError) as e:
            return ValidationResult(state, False, None, str(e), work=self._work)
        if not self.reward_tolerance.matches(state.reward, reward):
            return ValidationResult(
                state,
                False,
                reward,
                f"claimed reward {state.reward!r}, replay gave {reward!r} "
                f"(tolerance: {self.reward_tolerance})",
                work=self._work,
            )
        return ValidationResult(state, True, reward, work=self._work)

    def check_extras(self, claimed: Any, used: dict[str, Any]) -> str | None:
        """Why the extras a state claims differ from those this env holds after replaying
        it, or None. Every key the env records must be there and (unless measured) equal
        the replay's within the reward tolerance; any other key must be one an agent may add
        and pass ``_check_agent_extras``. ``used`` is the line's ``budget_used``."""
        from optgym.result_line import names

        if not isinstance(claimed, dict):
            return "extras must be a JSON object"
        replayed = json.loads(json.dumps(jsonable(self._extras())))  # as a line holds them
        missing = sorted(set(replayed) - set(claimed) - self.extras_added)
        if missing:
            return f"extras lack {', '.join(missing)}"
        added = self.extras_added & set(replayed)
        if added & set(claimed) and not added <= set(claimed):
            return (
                f"extras lack {', '.join(sorted(added - set(claimed)))}; allowed: all of "
                f"{', '.join(sorted(added))} (as this version records them) or none (as "
                "states made before it)"
            )
        unknown = sorted(set(claimed) - set(replayed) - self.agent_extras)
        if unknown:
            allowed = ", ".join(sorted(set(replayed) | self.agent_extras)) or "none"
            return f"unknown extras {names(unknown)}; allowed: {allowed}"
        rtol = self.reward_tolerance.value if self.reward_tolerance.kind == "relative" else 0.0
        for key in sorted(replayed):
            if key not in self.measured_extras and not _same(claimed[key], replayed[key], rtol):
                return f"extras {key!r} differ from what the replay gives"
        try:
            self._check_agent_extras({k: v for k, v in claimed.items() if k not in replayed}, used)
        except ValueError as e:
            return str(e)
        return None

    def restate(self, state: EpisodeState) -> EpisodeState:
        """The state the runner writes for an episode it has just replayed
        (``apply(state)``): ``state`` itself, unless the env's reward is a measurement that
        a search may have repeated and kept the best of (a timing). Such an env measures the
        final state again, independently of every measurement the search made, and returns
        ``state`` with that reward and its measured extras (the env then holds them too)."""
        return state

    def fork(self: EnvType) -> EnvType:
        """An independent copy at the same point of the episode, of the same class. It shares
        the budget meter (work on a fork counts) and whatever the env documents as shared
        (its class docstring says what)."""
        self._need_open("fork()")
        self._need_reset("fork()")
        new = copy.copy(self)
        new._actions = copy.deepcopy(self._actions)
        new._np_random = copy.deepcopy(self._np_random)
        self._fork_into(new)
        return new

    def close(self) -> None:
        """End the env's backends. Afterwards ``step``, ``fork``, ``apply`` and ``validate``
        refuse with ``RuntimeError`` (the env is closed); ``reset()`` starts it again."""
        super().close()
        self._closed = True

    # ---- hooks -------------------------------------------------------------------------------
    def _named_observations(self) -> dict[str, NamedSpace]:
        """The env's named observation spaces, the keys ``observation_spaces`` in order (the
        default first): each space and how to compute it from the episode as it stands."""
        return {}

    @abstractmethod
    def _reset(self, benchmark: Benchmark) -> tuple[ObsType, dict[str, Any]]:
        """Load ``benchmark`` (when it is not the one loaded) and start an episode on it.
        ``self.benchmark`` and ``self.benchmark_sha256`` already name it; on an exception
        they go back to the previous benchmark."""

    def _check_action(self, action: Any) -> Any:
        """The action in the env's own form; ``ValueError`` naming the bad value and what is
        allowed."""
        return action

    @abstractmethod
    def _step(self, action: Any) -> StepResult:
        """One step with a checked action."""

    def _reference_step(self, name: str) -> StepResult:
        """Apply the reference ``name`` as one step (envs with ``references``)."""
        raise ValueError(f"{self.env_id} has no references")

    def _exact_episode_reward(self) -> float | None:
        """The episode's reward computed at once from the env's exact record of where the
        episode stands (e.g. ``(cost_initial - cost_now) / norm`` from integer costs), or
        None to sum the step rewards (the default). Floats summed step by step depend on
        the order and grouping of the additions; an env whose reward is a difference of
        exact costs gives it here, so that every path to the same point (one episode, a
        fork, a reference step, a replay) reads the same float. Called only after a
        successful ``reset()``."""
        return None

    def _record_action(self, action: Any, info: dict[str, Any]) -> Any:
        """What the state records for a successful step with ``action`` (JSON data)."""
        return jsonable(action)

    def _replay(self, state: EpisodeState) -> None:
        """Replay ``state`` after the reset ``apply`` made: its reference, then its actions;
        ``RuntimeError`` when a step fails, ``ValueError`` for actions past the end."""
        if state.reference is not None:
            info = self.apply_reference(state.reference)[4]
            if "error" in info:
                raise RuntimeError(f"replay failed: {info['error']}")
        for action in state.actions:
            if self._done:
                raise ValueError("the state has actions after the end of its episode")
            info = self.step(action)[4]
            if "error" in info:
                raise RuntimeError(f"replay failed: {info['error']}")

    def _extras(self) -> dict[str, Any]:
        """What the state keeps beyond its actions (JSON data)."""
        return {}

    def _check_agent_extras(self, extras: dict[str, Any], used: dict[str, Any]) -> None:
        """``ValueError`` unless the extras an agent added (keys of ``agent_extras``) hold
        together with the state and ``used`` (the line's ``budget_used``)."""

    def _versions(self) -> dict[str, str]:
        """Versions of the backend (e.g. ``{"llvm": "19.1.7"}``) recorded in every state."""
        return {}

    def _fork_into(self, new: OptGymEnv) -> None:
        """Give the shallow copy ``new`` its own copies of what changes during an episode."""

    def _on_crash(self) -> None:
        """Clean up after a backend crash (kill the worker); the next reset recovers."""
