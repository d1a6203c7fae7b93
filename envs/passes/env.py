"""LLVM pass ordering: pick optimization passes one at a time to shrink a program."""

from __future__ import annotations

import copy
import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import optgym
from optgym.datasets.dataset import Benchmark, DatasetRegistry
from optgym.envs.passes import actions as pass_actions
from optgym.envs.passes.backend import BackendCrash, BackendError, LlvmSession
from optgym.envs.passes.spaces import OBSERVATION_SPACES, REFERENCES, REWARD_SPACES
from optgym.state import EpisodeState, ValidationResult, check_state_for

ENV_ID = "optgym/PassOrdering-v0"
BITCODE_MAGIC = (b"BC\xc0\xde", b"\xde\xc0\x17\x0b")

# (benchmark sha256, reference, cost) -> cost; references are deterministic per benchmark.
_REFERENCE_CACHE: dict[tuple[str, str, str], int] = {}


def llvm_datasets() -> DatasetRegistry:
    from optgym.datasets.llvm import llvm_datasets as make

    return DatasetRegistry(make())


class ObservationView:
    """``env.observation["Autophase"]``: any observation space, computed on request."""

    def __init__(self, env: PassOrderingEnv):
        self._env = env

    def __getitem__(self, name: str) -> Any:
        return self._env._observe((name,))[name]

    def keys(self) -> list[str]:
        return list(OBSERVATION_SPACES)


class PassOrderingEnv(gym.Env[Any, np.int64]):
    """
    ## Description

    Phase ordering for LLVM 19, after CompilerGym's ``llvm-v0``: each step runs one
    optimization pass on a program's LLVM IR, and the reward tracks how much smaller the
    program got, usually relative to what LLVM's own ``-Oz`` pipeline achieves. The passes
    run in-process in a worker (LLVM's C API, ``LLVMRunPasses``), about 0.1 ms each on small
    programs; a crash in LLVM ends the episode with ``info["error"]``, never the caller.

    ## Action Space

    ``Discrete(124)``: CompilerGym's 124 pass flags, in its order
    (``optgym.envs.passes.actions.FLAGS``). A few flags no longer exist in LLVM 19 and run a
    documented substitute (``actions.SUBSTITUTIONS``); ``-barrier`` and ``-loop-reroll`` are
    no-ops.

    ## Observation Space

    Chosen at ``make`` time with ``observation_space=``: ``Autophase`` (56 integer features,
    default), ``InstCount`` (70 counts), ``Ir`` (IR text), ``Programl`` (a torch-geometric
    ``Data`` program graph: instruction, variable and constant nodes; control, data and call
    edges), ``IrInstructionCount``, ``ObjectTextSizeBytes`` and their ``Oz``/``O3``/``O0``
    reference values. Every space is also available on request: ``env.observation["Ir"]``.

    ## Rewards

    Chosen with ``reward_space=``: ``IrInstructionCountOz`` (default: instruction-count
    reduction divided by the reduction ``-Oz`` achieves, so an episode that matches ``-Oz``
    sums to 1.0), ``IrInstructionCountO3``, ``IrInstructionCount`` (raw reduction),
    ``ObjectTextSizeBytes`` and ``ObjectTextSizeOz``/``ObjectTextSizeO3`` (``.text`` bytes
    of the object code, emitted in-process at llc's default -O2).

    ## Starting State

    The unoptimized program named by ``reset(options={"benchmark": uri})``: a
    ``generator://csmith-v0/<seed>`` or ``generator://llvm-stress-v0/<seed>`` program, a
    built ``benchmark://debian-v0/<package>`` program, or ``file:///path/to/x.bc``. Without
    options the last benchmark is kept; the first reset takes ``generator://csmith-v0/0``.

    ## Episode End

    Never terminates: stop when you like (register a ``max_episode_steps``, or wrap with
    ``optgym.wrappers.BudgetWrapper``). An LLVM crash truncates the episode and puts the
    message in ``info["error"]``; the next reset starts a new worker.

    ## Arguments

    ``observation_space`` and ``reward_space`` (names above), ``benchmark`` (the URI of the
    first reset), ``timeout`` (seconds a single LLVM call may take before the worker is
    killed), ``render_mode`` (``"ansi"``: the command line and instruction count).

    ## Version History

    * v0: LLVM 19.1, CompilerGym's 124 flags, csmith-v0, llvm-stress-v0, debian-v0.

    ## Example

    >>> import gymnasium as gym, optgym
    >>> env = gym.make("optgym/PassOrdering-v0", observation_space="Autophase",
    ...                reward_space="IrInstructionCountOz")
    >>> obs, info = env.reset(options={"benchmark": "generator://csmith-v0/1"})
    >>> obs, reward, terminated, truncated, info = env.step(env.unwrapped.action_index("-sroa"))
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        observation_space: str = "Autophase",
        reward_space: str = "IrInstructionCountOz",
        benchmark: str | None = None,
        timeout: float = 600.0,
        render_mode: str | None = None,
    ):
        if observation_space not in OBSERVATION_SPACES:
            raise ValueError(
                f"unknown observation space {observation_space!r}; "
                f"allowed: {', '.join(OBSERVATION_SPACES)}"
            )
        if reward_space not in REWARD_SPACES:
            raise ValueError(
                f"unknown reward space {reward_space!r}; allowed: {', '.join(REWARD_SPACES)}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; allowed: None, 'ansi'")
        self.observation_space_name = observation_space
        self.reward_space_name = reward_space
        self.observation_space = OBSERVATION_SPACES[observation_space][0]
        self.action_space = spaces.Discrete(len(pass_actions.FLAGS))
        self.reward_range = (-np.inf, np.inf)
        self.render_mode = render_mode
        self.timeout = timeout
        self.datasets = llvm_datasets()
        self.observation = ObservationView(self)
        self._reward = REWARD_SPACES[reward_space]
        self._benchmark_uri = benchmark or "generator://csmith-v0/0"
        self._benchmark: Benchmark | None = None
        self._session: LlvmSession | None = None
        self._llvm_version: str | None = None
        self._reset_episode()

    # ---- episode bookkeeping -------------------------------------------------------------
    def _reset_episode(self) -> None:
        self._actions: list[int] = []
        self._reference: str | None = None
        self._total = 0.0
        self._cost_prev = 0
        self._cost_init = 0
        self._norm = 1.0
        self._last_obs: Any = None
        self._error: str | None = None
        self._seed: int | None = None
        self._start = time.time()

    @property
    def benchmark(self) -> str:
        """URI of the current (or next) benchmark."""
        return self._benchmark_uri

    @staticmethod
    def action_index(flag: str) -> int:
        """Action number of a CompilerGym flag such as ``-sroa``."""
        return pass_actions.action_index(flag)

    @property
    def action_names(self) -> tuple[str, ...]:
        return pass_actions.FLAGS

    # ---- worker plumbing ------------------------------------------------------------------
    def _need_session(self) -> LlvmSession:
        if self._session is None or self._session.closed:
            self._session = LlvmSession.start(timeout=self.timeout)
        return self._session

    def _worker_names(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(OBSERVATION_SPACES[n][1] for n in names))

    def _convert(self, name: str, raw: dict[str, Any]) -> Any:
        _, key, ref = OBSERVATION_SPACES[name]
        if ref is not None:
            return np.array([self._reference_cost(ref, key)], dtype=np.int64)
        value = raw[key]
        if key in ("InstCount", "Autophase"):
            return np.frombuffer(value, dtype=np.int64).copy()
        if key in ("IrInstructionCount", "ObjectTextSizeBytes"):
            return np.array([value], dtype=np.int64)
        if key == "Programl":
            from optgym.envs.passes.programl import to_data

            return to_data(*value)
        return value

    def _observe(self, names: tuple[str, ...]) -> dict[str, Any]:
        for n in names:
            if n not in OBSERVATION_SPACES:
                raise KeyError(
                    f"unknown observation space {n!r}; allowed: {', '.join(OBSERVATION_SPACES)}"
                )
        if self._benchmark is None or self._session is None:
            raise RuntimeError("call reset() before asking for observations")
        want = tuple(n for n in names if OBSERVATION_SPACES[n][2] is None)
        raw = self._session.request("observe", self._worker_names(want)) if want else {}
        return {n: self._convert(n, raw) for n in names}

    def _reference_cost(self, reference: str, cost: str) -> int:
        assert self._benchmark is not None and self._session is not None
        key = (self._benchmark.sha256, reference, cost)
        if key not in _REFERENCE_CACHE:
            pipeline = REFERENCES[reference]
            if pipeline:
                raw = self._session.request("reference", pipeline, (cost,))
            else:
                raw = self._session.request("reference", "function(no-op-function)", (cost,))
            _REFERENCE_CACHE[key] = int(raw[cost])
        return _REFERENCE_CACHE[key]

    def _load(self, benchmark: Benchmark) -> None:
        data = benchmark.read_bytes()
        is_text = not data.startswith(BITCODE_MAGIC)
        session = self._need_session()
        try:
            session.request("load", data, is_text)
        except BackendError as e:
            kind = "textual LLVM IR" if is_text else "LLVM bitcode"
            raise ValueError(
                f"cannot load benchmark {benchmark.uri} as {kind} (expected LLVM bitcode or IR "
                f"text): {e}"
            ) from None

    # ---- gymnasium API --------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        uri = options.pop("benchmark", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; allowed: 'benchmark'")
        uri = str(uri) if uri is not None else self._benchmark_uri
        benchmark = self.datasets.benchmark(uri)  # ValueError for bad or unknown URIs
        try:
            self._load(benchmark)
        except BackendCrash:
            self._session = None  # a worker killed between episodes: start afresh once
            self._load(benchmark)
        self._benchmark, self._benchmark_uri = benchmark, uri
        self._reset_episode()
        self._seed = seed
        cost = self._reward.cost
        names = (self.observation_space_name,)
        raw = self._session.request("observe", self._worker_names(names) + (cost,))
        self._cost_init = self._cost_prev = int(raw[cost])
        if self._reward.reference:
            ref = self._reference_cost(self._reward.reference, cost)
            self._norm = float(max(self._cost_init - ref, 1))
        self._last_obs = self._convert(self.observation_space_name, raw)
        return self._last_obs, {"benchmark": uri}

    def _apply(self, pipeline: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._error is not None:
            raise RuntimeError(f"the episode ended with an error ({self._error}); call reset()")
        if self._session is None or self._benchmark is None:
            raise RuntimeError("call reset() before step()")
        cost = self._reward.cost
        names = self._worker_names((self.observation_space_name,)) + (cost,)
        info: dict[str, Any] = {"compilation_calls": 1}
        try:
            if pipeline:
                raw = self._session.request("run", pipeline, names)
            else:
                raw = self._session.request("observe", names)
        except (BackendCrash, BackendError) as e:
            self._error = f"{type(e).__name__}: {e}"
            self._session.kill()
            self._session = None
            info["error"] = self._error
            return self._last_obs, 0.0, False, True, info
        value = int(raw[cost])
        reward = (self._cost_prev - value) / self._norm
        self._cost_prev = value
        self._total += reward
        self._last_obs = self._convert(self.observation_space_name, raw)
        return self._last_obs, reward, False, False, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        index = self._check_action(action)
        result = self._apply(pass_actions.PIPELINES[index])
        if "error" not in result[4]:
            self._actions.append(index)
        result[4]["action"] = pass_actions.FLAGS[index]
        return result

    def _check_action(self, action: Any) -> int:
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            if isinstance(action, np.ndarray) and action.shape == () and action.dtype.kind in "iu":
                action = int(action)
            else:
                raise ValueError(
                    f"action must be an integer in [0, {self.action_space.n}), got {action!r}"
                )
        if not 0 <= int(action) < self.action_space.n:
            raise ValueError(
                f"action {int(action)} is out of range; allowed: 0 <= action < "
                f"{self.action_space.n} (the {self.action_space.n} pass flags)"
            )
        return int(action)

    def apply_reference(self, name: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Run a reference pipeline (``"Oz"``, ``"O3"``, ``"O0"``) as one step; only at the
        start of an episode, so that the state replays as reference + actions."""
        if name not in REFERENCES:
            raise ValueError(f"unknown reference {name!r}; allowed: {', '.join(REFERENCES)}")
        if self._actions or self._reference:
            raise RuntimeError("a reference can only be applied right after reset()")
        result = self._apply(REFERENCES[name])
        if "error" not in result[4]:
            self._reference = name
        return result

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        count = self._cost_prev if self._reward.cost == "IrInstructionCount" else "?"
        return f"{self.commandline()}\n# {self._reward.cost}: {count}"

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # ---- CompilerGym-style extras ------------------------------------------------------------
    def commandline(self) -> str:
        """The episode as an ``opt`` command line with CompilerGym's flag names."""
        from optgym.envs.passes.compilergym_csv import commandline

        return commandline(self._actions, self._reference)

    @property
    def episode_reward(self) -> float:
        return self._total

    @property
    def state(self) -> EpisodeState:
        """The episode so far as a replayable, JSON-serializable record."""
        if self._benchmark is None:
            raise RuntimeError("call reset() before reading the state")
        if self._llvm_version is None and self._session is not None:
            self._llvm_version = self._session.request("version")
        return EpisodeState(
            env_id=self.spec.id if self.spec else ENV_ID,
            benchmark=self._benchmark_uri,
            reward_space=self.reward_space_name,
            actions=list(self._actions),
            reward=self._total,
            seed=self._seed,
            reference=self._reference,
            walltime=time.time() - self._start,
            versions={
                "optgym": optgym.__version__,
                "llvm": self._llvm_version or "",
                "benchmark_sha256": self._benchmark.sha256,
            },
        )

    def apply(self, state: EpisodeState) -> float:
        """Reset to ``state.benchmark`` and replay its reference and actions; the reward."""
        check_state_for(state, ENV_ID, self.reward_space_name)
        self.reset(seed=state.seed, options={"benchmark": state.benchmark})
        if state.reference:
            info = self.apply_reference(state.reference)[4]
            if "error" in info:
                raise RuntimeError(info["error"])
        for a in state.actions:
            info = self.step(pass_actions.action_index(a) if isinstance(a, str) else a)[4]
            if "error" in info:
                raise RuntimeError(info["error"])
        return self._total

    def validate(self, state: EpisodeState | None = None) -> ValidationResult:
        """Replay ``state`` (default: this episode's) from a fresh reset; ``ok`` when the
        reward reproduces. Rewards here are deterministic: the tolerance is 1e-9."""
        state = state if state is not None else self.state
        try:
            reward = self.apply(state)
        except (ValueError, RuntimeError) as e:
            return ValidationResult(state, False, None, str(e))
        ok = abs(reward - state.reward) <= 1e-9 * max(1.0, abs(state.reward))
        return ValidationResult(state, ok, reward)

    def fork(self) -> PassOrderingEnv:
        """An independent copy at the same state: same module in memory, same episode."""
        if self._session is None or self._benchmark is None:
            raise RuntimeError("call reset() before fork()")
        new = copy.copy(self)
        new._session = self._session.fork()
        new._actions = list(self._actions)
        new._np_random = copy.deepcopy(self._np_random)
        new.observation = ObservationView(new)
        return new

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
