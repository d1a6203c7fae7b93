"""Tensor-program schedule search on Halide: schedule one stage per step, then time it."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import optgym
from optgym.datasets.cache import cache_dir
from optgym.datasets.dataset import DatasetRegistry
from optgym.envs.schedule.actions import (
    COMPONENTS,
    INLINE,
    NVEC,
    check_action,
    component_masks,
    decode,
    resolve,
)
from optgym.envs.schedule.features import MAX_STAGES, N_FEATURES, LoopNestFeatures
from optgym.envs.schedule.measure import MeasureError, Measurement, Timer
from optgym.spaces import MaskedMultiDiscrete
from optgym.state import EpisodeState, ValidationResult, check_state_for

ENV_ID = "optgym/ScheduleSearch-v0"
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


def reference_schedule(name: str) -> Any:
    """What the worker runs for a reference: ``"naive"`` or ``("autoscheduler", ...)``."""
    ref = REFERENCES[name]
    return "naive" if ref is None else ("autoscheduler", ref[0], tuple(ref[1].items()))


def halide_registry() -> DatasetRegistry:
    from optgym.datasets.halide import halide_datasets

    return DatasetRegistry(halide_datasets())


def default_cache_path() -> Path:
    return cache_dir() / "schedule" / "measurements-v1.sqlite"


class ScheduleSearchEnv(gym.Env[np.ndarray, np.ndarray]):
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

    ``Box(0, inf, (32, N_FEATURES), float32)``: one row per stage in scheduling order,
    padded with zeros: intrinsic features (op type, extents, op counts, access widths) and
    acquired features of the loop nest chosen so far (zero while unscheduled), see
    ``features.py``.

    ## Rewards

    ``LogSpeedupOverNaive``: 0 until the last step, then ``log(t_naive / t)``, with ``t``
    the minimum of ``samples`` (15) timed runs after a warm-up on ``threads`` (1) Halide
    threads, and ``t_naive`` the same for every stage computed at root with no other
    directive. The output is checked against the NumPy reference once per schedule; a
    wrong output, a compile error or a crash earns 0 and ends the episode with
    ``info["error"]``. A schedule whose warm-up takes over ``slow_factor`` times the naive
    time is timed once more and no further.

    ## Starting State

    ``reset(options={"benchmark": uri})``: ``benchmark://halide-ops-v0/<name>`` (operator
    pipelines) or ``generator://halide-random-v0/<seed>`` (random networks of 1 to 30
    operators).

    ## Episode End

    Terminates after the last stage, or at ``apply_reference(name)`` (a Halide
    autoscheduler's schedule).

    ## Arguments

    ``mode``: ``"measure"`` (always time), ``"cache"`` (look up and store measurements in
    the SQLite file ``cache_path``, keyed by pipeline, schedule, host, Halide version and
    threads), ``"model"`` (the reward is a learned cost model's prediction: no compile, for
    fast training; ``model_path`` names the weights). ``baseline_info``: also give the
    Adams2019 (beam 32) time and the ratio to it in ``info`` at the end (measured once per
    pipeline).
    """

    metadata = {"render_modes": ["ansi"]}

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
        if reward_space != REWARD_SPACE:
            raise ValueError(f"unknown reward space {reward_space!r}; allowed: {REWARD_SPACE}")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.mode = mode
        self.threads = threads
        self.slow_factor = slow_factor
        self.baseline_info = baseline_info
        self.render_mode = render_mode
        self.datasets = halide_registry()
        if mode == "cache" and cache_path is None:
            cache_path = default_cache_path()
        self.timer = Timer(threads, samples, cache_path if mode == "cache" else None, timeout_s)
        self.model_path = model_path
        self._model = None
        self.action_space = MaskedMultiDiscrete(NVEC, self._legal_now)
        self.observation_space = spaces.Box(
            0.0, np.inf, shape=(MAX_STAGES, N_FEATURES), dtype=np.float32
        )
        self.reward_space_name = REWARD_SPACE
        self._benchmark_uri = benchmark or DEFAULT_BENCHMARK
        self._loaded: str | None = None
        self._known: dict[tuple[str, str], Measurement | MeasureError] = {}
        self._owns_timer = True
        self._seed: int | None = None

    # ---- benchmarks -------------------------------------------------------------------------
    def _load(self, uri: str) -> None:
        from optgym.datasets.halide import load_spec

        benchmark = self.datasets.benchmark(uri)
        spec = load_spec(benchmark)
        if len(spec.stages) > MAX_STAGES:
            raise ValueError(
                f"{uri} has {len(spec.stages)} stages; ScheduleSearch-v0 takes at most {MAX_STAGES}"
            )
        self.pipeline = spec
        self.pipeline_json = spec.to_json()
        self.benchmark_sha256 = benchmark.sha256
        self._benchmark_uri = uri
        self._loaded = uri

    @property
    def benchmark(self) -> str:
        return self._benchmark_uri

    @property
    def stage_names(self) -> list[str]:
        """Stages in scheduling order (the output first)."""
        return [s.name for s in reversed(self.pipeline.stages)]

    # ---- episode ----------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._seed = seed
        uri = (options or {}).get("benchmark") or self._benchmark_uri
        if uri != self._loaded:
            self._load(uri)
        self.nest = LoopNestFeatures(self.pipeline, self.threads)
        self._actions: list[list[int]] = []
        self._schedules: dict[str, Any] = {}
        self._reference: str | None = None
        self._reward = 0.0
        self._done = False
        self._result: dict[str, Any] = {}
        return self.nest.matrix(0), self._info()

    @property
    def _index(self) -> int:
        return len(self._actions)

    def masks(self) -> list[np.ndarray]:
        """Per-component legal values for the stage to schedule now."""
        name = self.stage_names[self._index]
        stage = self.pipeline.stage(name)
        consumers = self.pipeline.consumers(name)
        single = len(consumers) == 1 and not self._schedules[consumers[0]].inlined
        return component_masks(
            list(stage.shape),
            is_output=self._index == 0,
            has_update=_has_update(stage),
            single_consumer_scheduled=single,
        )

    def peek(self, action: Any) -> np.ndarray:
        """The observation after scheduling the current stage with ``action``, without
        taking the step (nothing is compiled or measured): for search and value functions."""
        if self._done:
            raise RuntimeError("the episode has ended; call reset()")
        name = self.stage_names[self._index]
        a = check_action(action, self.masks())
        nest = self.nest.copy()
        s = decode(a, self.pipeline.stage(name).shape)
        nest.schedule(name, resolve(name, s, self.pipeline, self._schedules))
        last = self._index + 1 == len(self.stage_names)
        return nest.matrix(None if last else self._index + 1)

    def _legal_now(self) -> list[np.ndarray] | None:
        if not hasattr(self, "nest") or self._done:
            return None
        return self.masks()

    def action_masks(self) -> np.ndarray:
        """The flat mask (sb3-contrib's ``MaskablePPO`` reads this method)."""
        return self.action_mask()

    def action_mask(self) -> np.ndarray:
        return np.concatenate(self.masks()) if not self._done else np.zeros(sum(NVEC), bool)

    def _info(self, **extra: Any) -> dict[str, Any]:
        info: dict[str, Any] = {"action_mask": self.action_mask()}
        if not self._done:
            info["stage"] = self.stage_names[self._index]
        info.update(extra)
        return info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("the episode has ended; call reset()")
        name = self.stage_names[self._index]
        a = check_action(action, self.masks())
        stage = self.pipeline.stage(name)
        s = resolve(name, decode(a, stage.shape), self.pipeline, self._schedules)
        self._schedules[name] = s
        self.nest.schedule(name, s)
        self._actions.append([int(v) for v in a])
        if self._index < len(self.stage_names):
            return self.nest.matrix(self._index), 0.0, False, False, self._info()
        return self._finish(self._schedules)

    def _finish(self, schedule: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._done = True
        obs = self.nest.matrix(None)
        try:
            result = self._evaluate(schedule)
        except MeasureError as e:
            self._reward = 0.0
            self._result = {"error": str(e)}
            return obs, 0.0, True, False, self._info(error=str(e))
        self._reward = result["reward"]
        self._result = result
        return obs, self._reward, True, False, self._info(**result)

    def _measure(self, schedule: Any, slow_limit_s: float | None = None) -> Measurement:
        m = self.timer.measure(self.pipeline_json, schedule, slow_limit_s)
        if m.output_ok is False:
            raise MeasureError("wrong output: the schedule's result differs from the reference")
        return m

    def _reference_time(self, name: str) -> Measurement:
        key = (self.pipeline_json, name)
        if key not in self._known:
            try:
                self._known[key] = self._measure(reference_schedule(name))
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
        naive = self._reference_time("naive").time_s
        m = self._measure(schedule, slow_limit_s=self.slow_factor * naive)
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
            base = self._reference_time(BASELINE).time_s
            result[f"{BASELINE}_s"] = base
            result["speedup_vs_adams2019"] = base / m.time_s
        return result

    def cost_model(self):
        """The learned cost model of the ``model`` mode (loaded on first use)."""
        if self._model is None:
            from optgym.envs.schedule.model import load_cost_model

            self._model = load_cost_model(self.model_path)
        return self._model

    def apply_reference(self, name: str) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """End the episode with a reference schedule: ``"naive"`` or one of Halide's
        autoschedulers (``REFERENCES``), timed by the same protocol."""
        if name not in REFERENCES:
            raise ValueError(f"unknown reference {name!r}; allowed: {', '.join(REFERENCES)}")
        if self._actions:
            raise RuntimeError("apply_reference() must come right after reset()")
        if self._done:
            raise RuntimeError("the episode has ended; call reset()")
        self._reference = name
        return self._finish(reference_schedule(name))

    def render(self) -> str | None:
        lines = [f"{self.benchmark}: {len(self._actions)}/{len(self.stage_names)} stages"]
        for name, s in self._schedules.items():
            lines.append(f"  {name}: {s}")
        return "\n".join(lines)

    def close(self) -> None:
        if self._owns_timer:  # a fork leaves the shared worker to the env it came from
            self.timer.close()

    # ---- states -----------------------------------------------------------------------------
    @property
    def state(self) -> EpisodeState:
        if not hasattr(self, "nest"):
            raise RuntimeError("call reset() before reading the state")
        extras = {k: v for k, v in self._result.items() if k != "reward"}
        return EpisodeState(
            env_id=self.spec.id if self.spec else ENV_ID,  # gymnasium's EnvSpec
            benchmark=self._benchmark_uri,
            reward_space=self.reward_space_name,
            actions=[list(a) for a in self._actions],
            reward=self._reward,
            seed=self._seed,
            reference=self._reference,
            versions={"optgym": optgym.__version__, "benchmark_sha256": self.benchmark_sha256},
            extras={"mode": self.mode, "threads": self.threads, **extras},
        )

    def apply(self, state: EpisodeState) -> float:
        """Replay ``state`` from a fresh reset (measuring it again, or reading the cache)
        and return the reward it earns now; ``ValueError`` if it cannot be replayed."""
        check_state_for(state, ENV_ID)
        self.reset(seed=state.seed, options={"benchmark": state.benchmark})
        if state.reference is not None:
            info = self.apply_reference(state.reference)[4]
        else:
            if len(state.actions) != len(self.stage_names):
                raise ValueError(
                    f"state has {len(state.actions)} actions; {state.benchmark} has "
                    f"{len(self.stage_names)} stages"
                )
            info = {}
            for a in state.actions:
                info = self.step(a)[4]
        if "error" in info:
            raise ValueError(f"replay failed: {info['error']}")
        return self._reward

    def validate(self, state: EpisodeState | None = None) -> ValidationResult:
        """Replay a state: its output must match the reference and its log speedup must be
        within ``REWARD_TOLERANCE`` of the claim (measured times never replay exactly)."""
        state = state if state is not None else self.state
        try:
            reward = self.apply(state)
        except (ValueError, RuntimeError) as e:
            return ValidationResult(state, False, None, str(e))
        if abs(reward - state.reward) > REWARD_TOLERANCE:
            return ValidationResult(
                state,
                False,
                reward,
                f"claimed log speedup {state.reward:.4f}, replay measured {reward:.4f} "
                f"(tolerance {REWARD_TOLERANCE:.3f})",
            )
        return ValidationResult(state, True, reward)

    def fork(self) -> ScheduleSearchEnv:
        """An independent copy at the same point of the episode. It shares this env's
        worker and cache (measurements are sequential), not its episode."""
        new = copy.copy(self)
        new._owns_timer = False
        new.nest = self.nest.copy()
        new._actions = [list(a) for a in self._actions]
        new._schedules = dict(self._schedules)
        new._result = dict(self._result)
        return new

    def score_vs_baseline(self) -> float:
        """Adams2019's (beam 32) time over this episode's: the schedule-search task score."""
        if "runtime_s" not in self._result:
            raise RuntimeError("no measured schedule in this episode")
        base = self._reference_time(BASELINE).time_s
        return base / self._result["runtime_s"]

    @property
    def measured(self) -> dict[str, float]:
        """Real measurements made so far by this env's worker and the seconds they took."""
        return {"measurements": self.timer.measurements, "seconds": self.timer.seconds}


def _has_update(stage: Any) -> bool:
    from optgym.datasets.halide.ops import OPS

    return bool(OPS[stage.op].has_update)


__all__ = ["COMPONENTS", "ENV_ID", "INLINE", "REFERENCES", "ScheduleSearchEnv"]
