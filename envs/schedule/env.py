"""Tensor-program schedule search on Halide: schedule one stage per step, then time it."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from optgym.datasets.cache import cache_dir
from optgym.datasets.dataset import Benchmark
from optgym.env import BackendCrash, NamedSpace, OptGymEnv, RewardTolerance, StepResult
from optgym.envs.schedule import ENV_ID, ENV_ID_V1, PROBLEM, actions, actions_v1
from optgym.envs.schedule.actions import (
    COMPONENTS,
    INLINE,
    check_action,
    component_masks,
    enclosing_loops,
    resolve,
)
from optgym.envs.schedule.features import MAX_STAGES, N_FEATURES, LoopNestFeatures
from optgym.envs.schedule.measure import (
    MeasureError,
    Measurement,
    Timer,
    WorkerCrash,
    WorkerTimeout,
    halide_version,
)
from optgym.envs.schedule.spaces import MaskedMultiDiscrete
from optgym.state import EpisodeState, ValidationResult

DEFAULT_BENCHMARK = "benchmark://halide-ops-v0/matmul-192"
REWARD_SPACE = "LogSpeedupOverNaive"
MODES = ("measure", "cache", "model")
# Halide's CPU autoschedulers, run by the same timing protocol (one thread: parallelism 1).
REFERENCES: dict[str, tuple[str, dict[str, str]] | None] = {
    "naive": None,
    "Adams2019-beam1": ("Adams2019", {"beam_size": "1", "parallelism": "1"}),
    "Adams2019-beam32": ("Adams2019", {"beam_size": "32", "parallelism": "1"}),
    "Mullapudi2016": ("Mullapudi2016", {"parallelism": "1"}),
    "Li2018": ("Li2018", {"parallelism": "1"}),
}
BASELINE = "Adams2019-beam32"
# A replayed measurement matches its claim when the log speedups differ by at most this
# (about 20% in time): more than the 2% noise of one thread on a quiet machine, less than
# what any schedule change worth keeping gains.
REWARD_TOLERANCE = math.log(1.2)
# A measured replay that misses the claimed reward is measured again (the schedule and the
# naive reference back to back, bypassing every cache) up to this many times before the
# state fails: a real 20% slowdown of a whole process (a neighbour on the shared machine) is
# far likelier than one that repeats, and a forged reward misses every time.
VALIDATE_RETRIES = 3
# A replay's own tolerance (``replay_tolerance``) is this many standard errors of the
# difference between two paired measurements, each as precise as the replay's rounds say,
# never above REWARD_TOLERANCE and never below REPLAY_TOLERANCE_MIN: what moves a whole
# measurement alike (another process, another hour of the shared machine) its rounds
# cannot show. On this project's VM the committed board lines replayed on a fresh cache
# up to 0.13 from their claims in lines that passed before (up to 0.22 in one that did
# not), while 39 of 40 replays in one session came within 0.03 of theirs (one 0.12 off).
REPLAY_TOLERANCE_SES = 3.0
REPLAY_TOLERANCE_MIN = math.log(1.15)
# Seconds of a seconds budget's grace kept back from a measurement that would run to its
# end: the agent still returns its best schedule after the measurement is stopped.
WRAP_UP_S = 1.0


def replay_tolerance(ratios: list[float] | None) -> float:
    """How far (in log speedup) a claim may be from a paired measurement whose rounds gave
    ``ratios``: ``REPLAY_TOLERANCE_SES`` standard errors of the difference of two such
    medians (each about 1.25 * 1.48 * MAD / sqrt(rounds) of the rounds' log ratios), within
    [``REPLAY_TOLERANCE_MIN``, ``REWARD_TOLERANCE``]; ``REWARD_TOLERANCE`` when there are
    fewer than 3 rounds (an early stop, a row cached without them)."""
    logs = np.log([r for r in ratios or [] if r > 0 and math.isfinite(r)])
    if len(logs) < 3:
        return REWARD_TOLERANCE
    mad = float(np.median(np.abs(logs - np.median(logs))))
    se = 1.2533 * 1.4826 * mad / math.sqrt(len(logs))
    spread = REPLAY_TOLERANCE_SES * math.sqrt(2.0) * se
    return min(REWARD_TOLERANCE, max(REPLAY_TOLERANCE_MIN, spread))


def _replays_text(replays: list[tuple[float, float]]) -> str:
    """``3.3127 (tolerance 0.0953), ...``: each replayed reward with its tolerance."""
    return ", ".join(f"{r:.4f} (tolerance {t:.4f})" for r, t in replays)


def reference_schedule(name: str) -> Any:
    """What the worker runs for a reference: ``"naive"`` or ``("autoscheduler", ...)``."""
    ref = REFERENCES[name]
    return "naive" if ref is None else ("autoscheduler", ref[0], tuple(ref[1].items()))


def default_cache_path() -> Path:
    """The ``cache`` mode's SQLite file when none is given: under the OptGym cache dir."""
    return cache_dir() / "schedule" / "measurements-v1.sqlite"


class ScheduleSearchEnv(OptGymEnv[np.ndarray, np.ndarray]):
    """
    ## Description

    Schedule a Halide pipeline (a small DAG of tensor operators) one stage per step, in
    reverse topological order (the MDP of Steiner et al., "Value learning for throughput
    optimization of deep neural networks", MLSys 2021). After the last stage the env
    JIT-compiles the pipeline with Halide in a worker process and times it.

    ## Action Space

    ``MultiDiscrete([4, 7, 7, 7, 6, 4, 4, 2, 2])``: compute location (root, inline, at the
    consumer's outer loop, at the consumer's tile loop), split factor of x, y and c (1-64),
    order of the outer loops, vector width of x (none, 4, 8, 16), unroll factor of y
    (none, 2, 4, 8), parallel outer loop, store at root (see ``actions.py``). Values illegal
    for the stage are false in ``info["action_mask"]`` (one boolean per value, component
    after component) and raise ``ValueError``.

    ## Observation Space

    ``StageFeatures``, the env's one named observation space
    (``env.unwrapped.observation["StageFeatures"]`` computes it on request),
    ``Box(0, inf, (32, N_FEATURES), float32)``: one row per stage in scheduling order,
    padded with zeros: intrinsic features (op type, extents, op counts, access widths) and
    acquired features of the loop nest chosen so far (zero while unscheduled), see
    ``features.py``. ``peek(action)`` gives the observation a step would give, for free.
    The upper bound stays ``inf`` although every feature is bounded (flags, fractions,
    ``log2`` of extents, operation counts, all limited by the pipeline limits): the shipped
    ``maskable-ppo`` model was trained with this space, and SB3 refuses to load a model
    with an env whose space differs (``Observation spaces do not match``).

    ## Rewards

    ``LogSpeedupOverNaive``: 0 until the last step, then ``log(t_naive / t)``, timed
    paired: the schedule and the naive one (every stage computed at root with no other
    directive) are compiled in the same worker, warmed up in turn, then timed in 15
    alternating rounds, each a burst of back-to-back runs of about 10 ms per side whose
    minimum is the round's time; ``t_naive / t`` is the median over rounds of the naive
    time over the schedule's, so that a slow spell of the machine falls on both. ``t``
    (``runtime_s``) is the schedule's minimum over all its runs and ``naive_s`` is ``t``
    times that ratio. Runs are on ``threads`` (1) Halide threads, timed in CPU time with one
    thread (other processes on the machine do not count) and wall time with more. The
    output is checked against the NumPy reference once per schedule; a wrong output or a
    compile error earns 0 and ends the episode with ``info["error"]``.
    A schedule whose warm-up takes over ``slow_factor`` times the naive time (timed alone,
    the minimum of at least ``samples`` runs, once per pipeline) gets one round of single
    runs. The line the runner writes holds a new measurement of the final schedule
    (``restate``), not the one a search kept as its best. A replay reproduces a reward
    within ``log(1.2)`` (measured times are noisy); ``validate`` measures a replay that
    misses again, up to three times, before it fails the state.

    ## Starting State

    ``reset(options={"benchmark": uri})``, or a reset after ``env.unwrapped.benchmark =
    uri``: ``benchmark://halide-ops-v0/<name>`` (operator pipelines) or
    ``generator://halide-random-v0/<seed>`` (random networks of 1 to 30 operators); the
    datasets are ``env.unwrapped.datasets``, indexed by name or URI
    (``datasets["halide-ops-v0"].benchmark_uris()``).

    ## Episode End

    Terminates after the last stage, or at ``apply_reference(name)`` (the naive schedule
    or a Halide autoscheduler's, ``references``). A crash of the Halide worker (a signal
    in JIT code) truncates the episode with ``info["error"]``; the next measurement starts
    a fresh worker. Every ``info`` counts the step's ``measurements`` (the work unit: one
    per complete schedule evaluated, in every mode: a cache hit or a model prediction
    counts as one, so a budget means the same in each mode; ``peek`` is free).

    ## Arguments

    ``mode``: ``"measure"`` (always time), ``"cache"`` (look up and store measurements in
    the SQLite file ``cache_path``, keyed by pipeline, schedule, host, Halide version,
    threads and timing protocol, each row with an integrity tag: an edited row is measured
    again; default under the OptGym cache dir), ``"model"`` (the reward is a learned cost
    model's prediction: no compile, for fast training; ``model_path`` names the weights,
    default the shipped ones). ``threads`` and ``samples``: the timing protocol.
    ``slow_factor``: see Rewards. ``baseline_info``: also give the Adams2019 (beam 32)
    time and the ratio to it in ``info`` at the end (measured once per pipeline).
    ``timeout_s``: seconds one measurement may take before the worker is killed.
    ``render_mode``: ``"ansi"``, ``render()`` returns the schedule as text: the loop nest
    of the stages scheduled so far (tile loops, reduction, unrolled and vectorized loops
    with their trip counts, stages nested where they are computed), then the inlined and
    unscheduled stages.

    ## Version History

    * v0: Halide 21, halide-ops-v0 and halide-random-v0, nine-component stage actions.
    * v1 (``ScheduleSearchEnvV1``): the same pipelines, rewards and observations with the
      expressive fifteen-component stage action of ``actions_v1.py`` (two tiling levels,
      ``compute_at`` and ``store_at`` any consumer loop, tiles of 3 x 2^k, unrolled register
      tiles, the reduction's place, autoscheduler tail strategies).

    ## Example

    >>> import gymnasium as gym, optgym
    >>> env = gym.make("optgym/ScheduleSearch-v0", mode="cache")
    >>> obs, info = env.reset(options={"benchmark": "benchmark://halide-ops-v0/matmul-192"})
    >>> obs, reward, terminated, truncated, info = env.step([0] * 9)
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    record = PROBLEM
    env_id = ENV_ID
    #: the stage action's codec: ``actions`` (v0) or ``actions_v1``
    _space: Any = actions
    default_benchmark = DEFAULT_BENCHMARK
    work_unit = "measurements"
    reward_tolerance = RewardTolerance("absolute", REWARD_TOLERANCE)
    reward_spaces = (REWARD_SPACE,)
    observation_spaces = ("StageFeatures",)
    references = tuple(REFERENCES)
    # Timed on the machine that ran the episode: a replay cannot repeat them, so they are
    # checked for consistency with each other and with the reward (``_check_measured``).
    measured_extras = frozenset(
        {
            "runtime_s",
            "naive_s",
            "speedup_vs_naive",
            "compile_s",
            "times",
            "early_stop",
            "cached",
            f"{BASELINE}_s",
            "speedup_vs_adams2019",
        }
    )

    def __init__(
        self,
        benchmark: str | None = None,
        mode: str = "measure",
        threads: int = 1,
        samples: int = 15,
        cache_path: str | Path | None = None,
        model_path: str | Path | None = None,
        slow_factor: float = 10.0,
        baseline_info: bool = True,
        timeout_s: float = 300.0,
        reward_space: str = REWARD_SPACE,
        render_mode: str | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        if not slow_factor > 0:
            raise ValueError(f"slow_factor must be > 0, got {slow_factor}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s}")
        super().__init__(benchmark=benchmark, reward_space=reward_space, render_mode=render_mode)
        self.mode = mode
        self.threads = threads
        self.slow_factor = slow_factor
        self.baseline_info = baseline_info
        if mode == "cache" and cache_path is None:
            cache_path = default_cache_path()
        self.timer = Timer(threads, samples, cache_path if mode == "cache" else None, timeout_s)
        self.model_path = model_path
        self._model: Any = None
        self.action_space = MaskedMultiDiscrete(self._space.NVEC, self._legal_now)
        self.observation_space = spaces.Box(
            0.0, np.inf, shape=(MAX_STAGES, N_FEATURES), dtype=np.float32
        )
        self._loaded: str | None = None  # the sha256 of the loaded pipeline
        # (pipeline JSON, reference) -> its measurement, or the error that stops it
        self._known: dict[tuple[str, str, bool], Measurement | MeasureError] = {}
        self._owns_timer = True
        self._schedules: dict[str, Any] = {}
        self._result: dict[str, Any] = {}
        self._tolerance = REWARD_TOLERANCE  # of the last measured result (replay_tolerance)
        self._ended = False

    # ---- benchmarks -------------------------------------------------------------------------
    def _load(self, benchmark: Benchmark) -> None:
        from optgym.datasets.schedule import load_spec

        spec = load_spec(benchmark)
        if len(spec.stages) > MAX_STAGES:
            raise ValueError(
                f"{benchmark.uri} has {len(spec.stages)} stages; ScheduleSearch-v0 takes at "
                f"most {MAX_STAGES}"
            )
        self.pipeline = spec
        self.pipeline_json = spec.to_json()
        self._loaded = benchmark.sha256

    @property
    def stage_names(self) -> list[str]:
        """Stages in scheduling order (the output first); ``RuntimeError`` before the first
        reset (no pipeline is loaded)."""
        if self._loaded is None:
            raise RuntimeError("call reset() before reading stage_names (no pipeline is loaded)")
        return [s.name for s in reversed(self.pipeline.stages)]

    def reference_actions(self, name: str = "Adams2019-beam1") -> list[np.ndarray]:
        """A reference's schedule of the current pipeline (an autoscheduler's, ``name`` in
        ``references``) as this env's stage actions, in scheduling order, to start a search
        from: ``optgym/ScheduleSearch-v1`` only (``express.py`` writes the mapping). It
        costs one measurement (the reference is run and timed, once per pipeline and env).
        ``ValueError`` in v0, for an unknown reference or one whose schedule v1 cannot
        express; ``RuntimeError`` naming the failure when the reference fails."""
        from optgym.envs.schedule.express import express

        self._need_reset("reference_actions()")
        if self._space is not actions_v1:
            raise ValueError(
                f"{self.env_id}'s actions cannot express an autoscheduler's schedule; "
                f"reference_actions() needs {ENV_ID_V1}"
            )
        if REFERENCES.get(name) is None:
            allowed = ", ".join(n for n, ref in REFERENCES.items() if ref is not None)
            raise ValueError(f"unknown autoscheduler reference {name!r}; allowed: {allowed}")
        self._spend(1)
        m = self._reference_time(name)
        actions = express(m.schedule_source or "", self.pipeline)
        return [actions[n] for n in self.stage_names]

    @property
    def schedules(self) -> dict[str, Any]:
        """The stage schedules chosen so far (stage name -> ``StageSchedule``, as they take
        effect), what the worker compiles at the end: a copy."""
        return dict(self._schedules)

    # ---- hooks of OptGymEnv -----------------------------------------------------------------
    def _reset(self, benchmark: Benchmark) -> tuple[np.ndarray, dict[str, Any]]:
        if benchmark.sha256 != self._loaded:
            self._load(benchmark)
        self.nest = LoopNestFeatures(self.pipeline, self.threads)
        self._schedules = {}
        self._result = {}
        self._ended = False
        return self.nest.matrix(0), self._info()

    def _check_action(self, action: Any) -> np.ndarray:
        return check_action(action, self._masks(), self._space.COMPONENTS)

    def _step(self, action: np.ndarray) -> StepResult:
        index = self._index
        last = index + 1 == len(self.stage_names)
        if last:  # charged before anything changes: a refused measurement leaves no trace
            self._spend(1)
        name = self.stage_names[index]
        decoded = self._space.decode(action, self.pipeline.stage(name).shape)
        s = resolve(name, decoded, self.pipeline, self._schedules)
        self._schedules[name] = s
        self.nest.schedule(name, s)
        if not last:
            return self.nest.matrix(index + 1), 0.0, False, False, self._info()
        return self._finish(self._schedules)

    def _reference_step(self, name: str) -> StepResult:
        self._spend(1)
        return self._finish(reference_schedule(name))

    def _replay(self, state: EpisodeState) -> None:
        if state.reference is not None:
            if state.actions:
                raise ValueError(
                    f"state applies the reference {state.reference!r} and has "
                    f"{len(state.actions)} actions; a reference ends the episode (0 allowed)"
                )
        elif len(state.actions) != len(self.stage_names):
            raise ValueError(
                f"state has {len(state.actions)} actions; {state.benchmark} has "
                f"{len(self.stage_names)} stages (one action each) or takes a reference"
            )
        _check_measured(state)
        super()._replay(state)

    def _extras(self) -> dict[str, Any]:
        return {k: v for k, v in self._result.items() if k != "reward"}

    def _versions(self) -> dict[str, str]:
        return {"halide": halide_version()}

    def _fork_into(self, new: OptGymEnv) -> None:
        assert isinstance(new, ScheduleSearchEnv)
        new._owns_timer = False  # the worker and the cache stay the original's
        new.nest = self.nest.copy()
        new._schedules = dict(self._schedules)
        new._result = dict(self._result)
        new._tolerance = self._tolerance
        new.action_space = MaskedMultiDiscrete(self._space.NVEC, new._legal_now)
        new.action_space._np_random = copy.deepcopy(self.action_space._np_random)

    def _on_crash(self) -> None:
        self.timer.worker.kill()  # usually gone already; the next measurement starts afresh

    # ---- the episode ------------------------------------------------------------------------
    def _named_observations(self) -> dict[str, NamedSpace]:
        return {"StageFeatures": NamedSpace(self.observation_space, self._features)}

    def _features(self) -> np.ndarray:
        """The observation as it stands: the next stage's row marked, none once ended."""
        return self.nest.matrix(None if self._ended else self._index)

    @property
    def _index(self) -> int:
        """The stage scheduled next (its row in the observation)."""
        return len(self._schedules)

    @property
    def _over(self) -> bool:
        return self._ended or self._done or self._error is not None

    def _masks(self) -> list[np.ndarray]:
        name = self.stage_names[self._index]
        stage = self.pipeline.stage(name)
        consumers = self.pipeline.consumers(name)
        single = len(consumers) == 1 and not self._schedules[consumers[0]].inlined
        if self._space is actions_v1:
            around = enclosing_loops(name, self.pipeline, self._schedules) if single else []
            return actions_v1.component_masks(
                list(stage.shape),
                is_output=self._index == 0,
                reduction_extents=_reduction_extents(stage),
                consumer_levels=len(around),
            )
        return component_masks(
            list(stage.shape),
            is_output=self._index == 0,
            has_update=_has_update(stage),
            single_consumer_scheduled=single,
        )

    def masks(self) -> list[np.ndarray]:
        """Per-component legal values (one boolean array per component) for the stage to
        schedule now."""
        self._need_reset("masks()")
        if self._over:
            raise RuntimeError("the episode has ended; call reset()")
        return self._masks()

    def peek(self, action: Any) -> np.ndarray:
        """The observation after scheduling the current stage with ``action``, without
        taking the step (nothing is compiled or measured, nothing is charged): for search
        and value functions."""
        self._need_reset("peek()")
        if self._over:
            raise RuntimeError("the episode has ended; call reset()")
        name = self.stage_names[self._index]
        a = check_action(action, self._masks(), self._space.COMPONENTS)
        nest = self.nest.copy()
        s = self._space.decode(a, self.pipeline.stage(name).shape)
        nest.schedule(name, resolve(name, s, self.pipeline, self._schedules))
        last = self._index + 1 == len(self.stage_names)
        return nest.matrix(None if last else self._index + 1)

    def _legal_now(self) -> list[np.ndarray] | None:
        if not self._started or self._over:
            return None
        return self._masks()

    def action_masks(self) -> np.ndarray:
        """The flat mask (sb3-contrib's ``MaskablePPO`` reads this method); ``RuntimeError``
        before reset."""
        self._need_reset("action_masks()")
        return self._flat_mask()

    def action_mask(self) -> np.ndarray:
        """The legal values of every component, concatenated (all false once the episode
        has ended); ``RuntimeError`` before reset."""
        self._need_reset("action_mask()")
        return self._flat_mask()

    def _flat_mask(self) -> np.ndarray:
        if self._over:
            return np.zeros(self._space.MASK_SIZE, bool)
        return np.concatenate(self._masks())

    def _info(self, **extra: Any) -> dict[str, Any]:
        info: dict[str, Any] = {"action_mask": self._flat_mask()}
        if not self._over:
            info["stage"] = self.stage_names[self._index]
        info.update(extra)
        return info

    def _finish(self, schedule: Any) -> StepResult:
        self._ended = True
        obs = self.nest.matrix(None)
        try:
            result = self._evaluate(schedule)
        except WorkerCrash as e:  # the backend died, not a verdict on the schedule
            raise BackendCrash(str(e)) from None
        except MeasureError as e:  # wrong output, compile error, timeout: the outcome
            self._result = {"error": str(e)}
            return obs, 0.0, True, False, self._info(error=str(e))
        self._result = result
        return obs, result["reward"], True, False, self._info(**result)

    def _measure(
        self, schedule: Any, slow_limit_s: float | None = None, fresh: bool = False
    ) -> Measurement:
        m = self.timer.measure(self.pipeline_json, schedule, slow_limit_s, fresh=fresh)
        if m.output_ok is False:
            raise MeasureError("wrong output: the schedule's result differs from the reference")
        return m

    def _paired(
        self,
        schedule: Any,
        slow_limit_s: float | None = None,
        fresh: bool = False,
        timeout_s: float | None = None,
    ) -> Measurement:
        """``schedule`` timed against the naive schedule in one worker, in alternating
        rounds (``Timer.measure_paired``): its ``ratio`` is the reward's speedup."""
        naive = reference_schedule("naive")
        m = self.timer.measure_paired(
            self.pipeline_json, schedule, naive, slow_limit_s, fresh=fresh, timeout_s=timeout_s
        )
        if m.output_ok is False:
            raise MeasureError("wrong output: the schedule's result differs from the reference")
        return m

    def _reference_time(self, name: str, paired: bool = False) -> Measurement:
        """A reference schedule's measurement, alone (the naive time that sets the slow
        limit) or ``paired`` with the naive one (the baseline's speedup), once per pipeline
        and env: a failure of the reference is remembered, one of the worker is not."""
        key = (self.pipeline_json, name, paired)
        if key not in self._known:
            schedule = reference_schedule(name)
            try:
                self._known[key] = self._paired(schedule) if paired else self._measure(schedule)
            except (WorkerCrash, WorkerTimeout):  # the worker failed, not the reference:
                raise  # never remembered, the next episode measures again
            except MeasureError as e:  # remembered: the next episode fails fast
                self._known[key] = e
        known = self._known[key]
        if isinstance(known, MeasureError):
            raise MeasureError(f"{name} schedule of {self.benchmark} failed: {known}")
        return known

    def _evaluate(self, schedule: Any) -> dict[str, Any]:
        if self.mode == "model" and isinstance(schedule, dict):
            reward = float(self.cost_model().predict([self.nest.matrix(None)])[0])
            return {"reward": reward, "predicted": True}
        limit = self._slow_limit()
        left = self._seconds_left()
        try:
            return self._result_of(self._paired(schedule, limit, timeout_s=left))
        except WorkerTimeout:
            if left is None:
                raise
            raise MeasureError(
                f"measuring the schedule (compiling included) ran past the budget's seconds "
                f"({left:.1f} s were left); its worker was stopped"
            ) from None

    def _seconds_left(self) -> float | None:
        """Seconds an episode's measurement may take: what the attached budget's seconds
        and their grace leave, less ``WRAP_UP_S`` for the agent to return its best (at
        least 1 s), None without a seconds budget. A schedule that LLVM takes a minute to
        compile must not hold a 30 s search for that minute."""
        meter = self.meter
        left = None if meter is None else meter.seconds_left()
        return None if left is None else max(1.0, left - WRAP_UP_S)

    def warm_up(self) -> None:
        """Measure the env's own references of the current pipeline now, each once per
        pipeline and env: the naive time behind the slow limit and, with
        ``baseline_info``, Adams2019's (beam 32) speedup. Uncached, Adams2019 searches,
        compiles and times for up to a minute (73 s on resblock-64), which would otherwise
        come out of the first episode's budget. A failure is left to the step that needs
        the reference to report (a reference's own error is remembered, a worker's is
        not)."""
        super().warm_up()
        if self.mode == "model":
            return  # predicted rewards time nothing
        try:
            self._slow_limit()
            if self.baseline_info:
                self._baseline_ratio()
        except (MeasureError, WorkerCrash, WorkerTimeout):
            pass

    def _slow_limit(self) -> float:
        """Seconds past which a schedule's first run stops its timing: ``slow_factor``
        times the naive schedule's time."""
        return self.slow_factor * self._reference_time("naive").time_s

    def _result_of(self, m: Measurement) -> dict[str, Any]:
        """The episode's result from its schedule's paired measurement: the reward, the
        times and speedups the state's extras hold (``naive_s`` is the schedule's time
        times the paired ratio, the naive time on the same footing)."""
        assert m.ratio is not None
        self._tolerance = replay_tolerance(m.ratios)  # what a claim of this result may miss
        naive = m.time_s * m.ratio
        result = {
            "reward": math.log(naive / m.time_s),
            "runtime_s": m.time_s,
            "naive_s": naive,
            "speedup_vs_naive": naive / m.time_s,
            "compile_s": m.compile_s,
            "times": list(m.times),
            "early_stop": m.early_stop,
            "clamped_inputs": m.clamped_inputs,
            "cached": m.cached,
        }
        if self.baseline_info:
            # the baseline's own episode is its own baseline: 1 by definition, not by a
            # second measurement
            same = self._reference == BASELINE
            base = m.time_s if same else naive / self._baseline_ratio()
            result[f"{BASELINE}_s"] = base
            result["speedup_vs_adams2019"] = base / m.time_s
        return result

    def _baseline_ratio(self) -> float:
        """How many times faster than naive the baseline (Adams2019, beam 32) runs, paired."""
        ratio = self._reference_time(BASELINE, paired=True).ratio
        assert ratio is not None
        return ratio

    def validate(self, state: EpisodeState | None = None) -> ValidationResult:
        """Replay ``state`` as :meth:`OptGymEnv.validate` does. A measured reward must come
        within the replay's own tolerance (:func:`replay_tolerance`: as tight as its paired
        rounds agree, log 1.15 at the least, ``reward_tolerance`` at most); one that misses
        it is measured again for real (``VALIDATE_RETRIES`` times at most: the schedule and
        the naive reference back to back, past every cache, and the cache rows overwritten)
        and passes when one of those measurements reproduces it within its own tolerance.
        (In the same worker: fresh processes for the retries let a forged +0.2 through in 1
        of 20 tries, and helped no genuine board line.)"""
        state = state if state is not None else self.state
        if isinstance(state, EpisodeState) and state.config and state.config != self._config:
            return super().validate(state)  # an env with the state's config replays (retries)
        result = super().validate(state)
        if result.reward is None or "runtime_s" not in self._result:
            return result  # failed to replay, or a model prediction (deterministic)
        replays = [(result.reward, self._tolerance)]
        try:
            while True:
                reward, tolerance = replays[-1]
                if RewardTolerance("absolute", tolerance).matches(state.reward, reward):
                    return ValidationResult(state, True, reward, work=result.work)
                if len(replays) > VALIDATE_RETRIES:
                    break
                replays.append((self._remeasured_reward(), self._tolerance))
        except MeasureError as e:
            return ValidationResult(
                state, False, result.reward,
                f"claimed reward {state.reward!r}, replay gave {_replays_text(replays)}, then "
                f"measuring again failed: {e}", work=result.work,
            )  # fmt: skip
        return ValidationResult(
            state,
            False,
            result.reward,
            f"claimed reward {state.reward!r}, replay gave {_replays_text(replays)} "
            f"({len(replays)} measurements, each within its tolerance or refused)",
            work=result.work,
        )

    def restate(self, state: EpisodeState) -> EpisodeState:
        """``state`` (just replayed) with its reward and measured extras from new
        measurements of its schedule and of the naive one, made back to back past every
        cache (whose rows they overwrite): a search keeps the schedule whose measurement
        came out best, and the best of many noisy measurements is biased upward (the
        winner's curse). A model prediction or an error is kept as it is."""
        if self.mode == "model" or "runtime_s" not in self._result:
            return state
        result = self._fresh_result()
        self._total += result["reward"] - self._result["reward"]
        self._result = result
        now = self.state
        extras = {**(state.extras or {}), **now.extras}
        return EpisodeState.from_dict({**state.to_dict(), "reward": now.reward, "extras": extras})

    def _final_schedule(self) -> Any:
        """What the episode's last step measured: its reference or its stage schedules."""
        if self._reference is not None:
            return reference_schedule(self._reference)
        return self._schedules

    def _fresh_result(self) -> dict[str, Any]:
        """The episode's result from a new paired measurement of its final schedule and the
        naive one, past every cache (whose row it overwrites)."""
        m = self._paired(self._final_schedule(), slow_limit_s=self._slow_limit(), fresh=True)
        return self._result_of(m)

    def _remeasured_reward(self) -> float:
        """The replayed episode's reward, measured again (:meth:`_fresh_result`)."""
        return self._fresh_result()["reward"]

    def cost_model(self) -> Any:
        """The learned cost model of the ``model`` mode (a ``CostModel``, loaded on first
        use from ``model_path``, default the shipped weights of this env's version)."""
        if self._model is None:
            from optgym.envs.schedule.model import load_cost_model

            self._model = load_cost_model(self.model_path, self.env_id)
        return self._model

    # ---- gymnasium API ----------------------------------------------------------------------
    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the schedule so far as text, a header line (the
        benchmark, the stages scheduled, and once the episode ends the reference applied,
        the measured speedup, the model's prediction or the error) and then the loop nest it
        gives (``features.LoopNestFeatures.loop_nest_text``). None in any other render
        mode, and before the first reset."""
        if self.render_mode != "ansi" or not self._started:
            return None
        header = f"{self.benchmark}: {len(self._schedules)} of {len(self.stage_names)} stages"
        if self._reference is not None:
            header += f"; reference schedule {self._reference}"
        elif "speedup_vs_naive" in self._result:
            header += f"; {self._result['speedup_vs_naive']:.3g}x the naive schedule"
        elif self._result.get("predicted"):
            header += f"; predicted log speedup {self._result['reward']:.3g}"
        elif "error" in self._result:
            header += f"; failed: {self._result['error']}"
        body = self.nest.loop_nest_text() if self._reference is None else ""
        return f"{header}\n{body}" if body else header

    def close(self) -> None:
        if self._owns_timer:  # a fork leaves the shared worker to the env it came from
            self.timer.close()
        super().close()

    # ---- results ----------------------------------------------------------------------------
    def score_vs_baseline(self) -> float:
        """How many times faster than Adams2019 (beam 32) this episode's schedule runs, both
        timed paired with the naive one: the schedule-search task score (> 1 beats the
        autoscheduler). Measures Adams2019 once per pipeline and env, uncharged."""
        if "runtime_s" not in self._result:
            raise RuntimeError("no measured schedule in this episode")
        if self._reference == BASELINE:
            return 1.0  # the baseline's own schedule
        return self._result["speedup_vs_naive"] / self._baseline_ratio()

    @property
    def measured(self) -> dict[str, float]:
        """Real measurements made so far by this env's worker (cache hits and model
        predictions excluded) and the seconds they took."""
        return {"measurements": self.timer.measurements, "seconds": self.timer.seconds}


def _positive(extras: dict[str, Any], key: str) -> float:
    value = extras[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"state extras {key!r} must be a finite number > 0")
    return float(value)


def _check_measured(state: EpisodeState) -> None:
    """``ValueError`` naming the field unless the measured extras a state claims hold
    together: the reward is ``log(naive_s / runtime_s)``, the speedups are those ratios, and
    ``runtime_s`` is the minimum of the claimed ``times`` (which keep the first runs)."""
    x = state.extras
    if not isinstance(x, dict) or "runtime_s" not in x or "naive_s" not in x:
        return  # a model prediction, or a state without them (check_extras says it lacks them)
    runtime, naive = _positive(x, "runtime_s"), _positive(x, "naive_s")

    def same(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)

    reward = state.reward
    if not isinstance(reward, (int, float)) or not same(reward, math.log(naive / runtime)):
        raise ValueError("the state's reward is not log(naive_s / runtime_s) of its extras")
    if "speedup_vs_naive" in x and not same(_positive(x, "speedup_vs_naive"), naive / runtime):
        raise ValueError("state extras 'speedup_vs_naive' is not naive_s / runtime_s")
    base_key = f"{BASELINE}_s"
    if base_key in x or "speedup_vs_adams2019" in x:
        if not same(_positive(x, "speedup_vs_adams2019"), _positive(x, base_key) / runtime):
            raise ValueError(f"state extras 'speedup_vs_adams2019' is not {base_key} / runtime_s")
    times = x.get("times")
    if not isinstance(times, list) or not times or len(times) > 4096:
        raise ValueError("state extras 'times' must be a list of 1 to 4096 run times")
    fastest = min(_positive({"times": t}, "times") for t in times)
    if runtime > fastest * (1 + 1e-9):
        raise ValueError("state extras 'runtime_s' is more than the fastest of its 'times'")
    compile_s = x.get("compile_s", 0.0)
    if isinstance(compile_s, bool) or not isinstance(compile_s, (int, float)):
        raise ValueError("state extras 'compile_s' must be a number of seconds")
    if not 0 <= compile_s < math.inf:
        raise ValueError("state extras 'compile_s' must be a finite number of seconds >= 0")


def _has_update(stage: Any) -> bool:
    from optgym.datasets.schedule.ops import OPS

    return bool(OPS[stage.op].has_update)


def _reduction_extents(stage: Any) -> tuple[int, ...]:
    from optgym.datasets.schedule.ops import OPS

    return OPS[stage.op].reduction_extents(stage)


class ScheduleSearchEnvV1(ScheduleSearchEnv):
    # The docstring is v0's with its action space and example replaced (below).
    env_id = ENV_ID_V1
    _space = actions_v1


_V1_ACTIONS = """## Action Space

    ``MultiDiscrete([14, 13, 13, 13, 4, 4, 4, 6, 6, 4, 5, 3, 5, 2, 7])``, the expressive
    stage action of ``actions_v1.py`` (what Halide's autoschedulers write): compute
    location (root, inline, or in loop k around the stage, innermost first: the consumer's
    middle and outer loops, then those around the consumer where it is computed), inner
    tile of x, y, c (1-128, 3 x 2^k among them), middle tile as a multiple of it (1, 2, 4,
    8), order of the middle loops, order of the outer loops, vector width of x (none, 4, 8,
    16), unroll (y by 2, 4, 8, or the whole inner tile), place of an update's reduction
    loops, split of its last reduction loop, parallel outermost loop, storage (where
    computed, one to five loops further out, root). Tails as Halide's autoschedulers set
    them. Values illegal for the stage are false in ``info["action_mask"]`` and raise
    ``ValueError``.

    """
_V1_EXAMPLE = """## Example

    >>> import gymnasium as gym, optgym
    >>> env = gym.make("optgym/ScheduleSearch-v1", mode="cache")
    >>> obs, info = env.reset(options={"benchmark": "benchmark://halide-ops-v0/matmul-192"})
    >>> obs, reward, terminated, truncated, info = env.step([0] * 15)
    """
_doc = ScheduleSearchEnv.__doc__ or ""
ScheduleSearchEnvV1.__doc__ = (
    _doc[: _doc.index("## Action Space")]
    + _V1_ACTIONS
    + _doc[_doc.index("## Observation Space") : _doc.index("## Example")]
    + _V1_EXAMPLE
)


__all__ = [
    "COMPONENTS",
    "ENV_ID",
    "ENV_ID_V1",
    "INLINE",
    "REFERENCES",
    "ScheduleSearchEnv",
    "ScheduleSearchEnvV1",
]
