"""Training data for the schedule value function (:mod:`optgym.agents.schedule.value`):
measured schedules of train pipelines, collected through ``ScheduleSearch-v0`` or ``-v1``
(the data's summary says which) and stored as one data file.

:func:`collect` measures, per train pipeline of ``generator://halide-random-v0`` (from seed
:data:`TRAIN_SEED0`; lower seeds are validation and test), the naive schedule and random
ones, through the env (in ``cache`` mode the measurements go to its SQLite cache, so a rerun
reuses them); :func:`load_data` reads the file back and :func:`state_weights` weighs its
states. :mod:`optgym.agents.schedule.value_training` fits the network to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from optgym.envs.schedule import ENV_ID, ENV_ID_V1
from optgym.envs.schedule.actions import AT_OUTER, AT_TILE, decode

TRAIN_SEED0 = 2000  # halide-random-v0: seeds below are validation and test
RANDOM_URI = "generator://halide-random-v0/{}"
DATA_FORMAT = "optgym-schedule-value-data-v1"
# the defaults of the shipped weights' training: about 20-25 minutes on a 2-core machine
# (see the module docstring). Few epochs: on the held-out pipelines the validation loss is
# lowest after 5-10 epochs and the network overfits the 45 train pipelines past that.
ALL_DEFAULTS = {
    "pipelines": 45, "schedules": 10, "epochs": 20, "vi_epochs": 5, "seed": 0, "max_stages": 16
}  # fmt: skip
CONF_SPREAD = 0.02  # timing spread (median / min - 1) at which the confidence halves


def make_env(
    mode: str = "cache", cache_path: str | Path | None = None, env_id: str = ENV_ID
) -> gym.Env:
    """The env the data is measured in (``ScheduleSearch-v0`` or ``-v1``), without the
    Adams2019 baseline in ``info``."""
    import optgym.envs  # noqa: F401  (registers the env ids)

    if env_id not in (ENV_ID, ENV_ID_V1):
        raise ValueError(f"env_id must be {ENV_ID!r} or {ENV_ID_V1!r}, got {env_id!r}")
    kwargs: dict[str, Any] = {"mode": mode, "baseline_info": False}
    if mode == "cache" and cache_path is not None:
        kwargs["cache_path"] = cache_path
    return gym.make(env_id, **kwargs)


def space_of(base: Any) -> Any:
    """The action codec of a schedule env (``actions`` for v0, ``actions_v1`` for v1), by
    its public ``env_id`` (in the sandbox the env is a proxy that shows only public names)."""
    from optgym.envs.schedule import actions, actions_v1

    return actions_v1 if base.env_id == ENV_ID_V1 else actions


def stage_shape(base: Any, index: int) -> tuple[int, ...]:
    return tuple(base.pipeline.stage(base.stage_names[index]).shape)


def action_key(action: Sequence[int], shape: Sequence[int]) -> tuple:
    """What an action does to a stage, canonically: equal keys give the same Halide code."""
    s = decode(action, shape)
    if s.inlined:
        return ("inline",)
    return (s.compute, s.tile, s.order, s.vector, s.unroll, s.parallel,
            s.store_root and s.compute in (AT_OUTER, AT_TILE))  # fmt: skip


def _sample_times(info: dict[str, Any]) -> list[float]:
    """The timed samples of the episode's measurement (the env's ``info["times"]``); empty
    when it has none."""
    return [float(t) for t in info.get("times", [])]


def confidence(t_min: np.ndarray, t_median: np.ndarray) -> np.ndarray:
    """``1 / (1 + (median / min - 1) / 0.02)``: 1 for a tight timing, 1/2 at a 2% spread;
    1 where the samples are unknown (NaN)."""
    spread = np.asarray(t_median, np.float64) / np.asarray(t_min, np.float64) - 1.0
    conf = 1.0 / (1.0 + np.maximum(spread, 0.0) / CONF_SPREAD)
    return np.where(np.isfinite(conf), conf, 1.0)


# --------------------------------------------------------------------------- collection


def collect(
    out_path: str | Path,
    pipelines: int,
    schedules_per_pipeline: int,
    seed: int,
    cache_path: str | Path | None = None,
    first_pipeline: int = TRAIN_SEED0,
    max_stages: int | None = None,
    progress: bool = True,
    env_id: str = ENV_ID,
) -> dict[str, Any]:
    """Measure random legal schedules of ``pipelines`` train pipelines of
    ``halide-random-v0`` (seeds ``first_pipeline``, ``first_pipeline + 1``, ...; those with
    more than ``max_stages`` stages are passed over) in ``env_id`` (``ScheduleSearch-v0``
    or ``-v1``) in its ``cache`` mode, and save them to ``out_path`` (a compressed
    ``.npz``).

    Per pipeline: one anchor episode of the naive choice (every stage all zeros: compute
    root, no split) and ``schedules_per_pipeline`` episodes of random legal
    actions, odd ones drawn from ``prior_action`` and even ones uniformly.
    Per episode: the observations after reset and after each step, the actions,
    the measured reward and the timed samples (read back from the measurement cache, the
    env does not report them). Failed schedules are counted and left out (a pipeline whose
    naive choice fails is passed over). Returns a summary (counts, seconds per real
    measurement)."""
    from tqdm import tqdm

    if first_pipeline < TRAIN_SEED0:
        raise ValueError(
            f"first_pipeline must be a train seed (>= {TRAIN_SEED0}), got {first_pipeline}"
        )
    if pipelines < 1 or schedules_per_pipeline < 0:
        raise ValueError("need pipelines >= 1 and schedules_per_pipeline >= 0")
    env = make_env("cache", cache_path, env_id)
    base = env.unwrapped
    rng = np.random.default_rng(seed)
    benchmarks: list[str] = []
    episodes: list[dict[str, Any]] = []
    errors: list[str] = []
    start = time.perf_counter()
    bar = tqdm(
        total=pipelines * (schedules_per_pipeline + 1),
        desc="collect",
        unit="schedule",
        disable=not progress,
    )
    pipeline_seed = first_pipeline
    try:
        while len(benchmarks) < pipelines:
            uri = RANDOM_URI.format(pipeline_seed)
            pipeline_seed += 1
            base.reset(options={"benchmark": uri})
            if max_stages is not None and len(base.stage_names) > max_stages:
                continue
            benchmarks.append(uri)
            for k in range(schedules_per_pipeline + 1):
                episode, error = collect_episode(base, uri, k, rng)
                bar.update(1)
                if error is not None:
                    errors.append(error)
                    if k == 0:  # not even the naive choice runs: pass the pipeline over
                        benchmarks.pop()
                        bar.update(schedules_per_pipeline)
                        break
                    continue
                assert episode is not None
                episodes.append(dict(episode, pipeline=len(benchmarks) - 1))
                bar.set_postfix(errors=len(errors), measured=base.measured["measurements"])
    finally:
        bar.close()
        measured = dict(base.measured)
        env.close()
    summary = summarize(benchmarks, episodes, errors, seed, first_pipeline, max_stages, env_id)
    summary.update(
        measurements=int(measured["measurements"]),
        measure_seconds=float(measured["seconds"]),
        seconds_per_measurement=float(measured["seconds"]) / max(1, measured["measurements"]),
        wall_seconds=time.perf_counter() - start,
    )
    _save_data(Path(out_path), benchmarks, episodes, summary)
    return summary


def collect_episode(
    base: Any,
    uri: str,
    k: int,
    rng: np.random.Generator,
    planned: Sequence[np.ndarray] | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """Episode ``k`` of a pipeline's collection, measured through the env's public API (so
    an attached budget meter counts its measurement): the ``planned`` actions when given
    (a search's schedule), else ``k == 0`` the naive choice (every stage all zeros: compute
    at root, no split), odd ``k`` actions drawn from the env's ``prior_action``, even ones
    uniformly (``sample_action``). Returns (the episode's record, None) or (None, the error
    that failed it)."""
    space = space_of(base)
    obs = [base.reset(options={"benchmark": uri})[0]]
    actions: list[np.ndarray] = []
    done, info = False, {}
    while not done:
        masks = base.masks()
        if planned is not None:
            a = np.asarray(planned[len(actions)], np.int64)
        elif k == 0:
            a = np.zeros(len(space.NVEC), np.int64)
        elif k % 2:
            a = space.prior_action(masks, rng)
        else:
            a = space.sample_action(masks, rng)
        o, _, terminated, truncated, info = base.step(a)
        done = terminated or truncated
        obs.append(o)
        actions.append(a)
    if "error" in info:
        return None, f"{uri} {[a.tolist() for a in actions]}: {info['error']}"
    record = {
        "obs": np.stack(obs),
        "actions": np.stack(actions),
        "reward": float(base.state.reward),
        "naive": planned is None and k == 0,
        "times": _sample_times(info),
    }
    return record, None


def summarize(
    benchmarks: list[str],
    episodes: list[dict[str, Any]],
    errors: list[str],
    seed: int,
    first_pipeline: int | None,
    max_stages: int | None,
    env_id: str = ENV_ID,
) -> dict[str, Any]:
    return {
        "format": DATA_FORMAT,
        "env_id": env_id,
        "pipelines": len(benchmarks),
        "episodes": len(episodes),
        "errors": len(errors),
        "error_examples": errors[:5],
        "seed": seed,
        "first_pipeline": first_pipeline,
        "max_stages": max_stages,
        "samples_known": sum(bool(e["times"]) for e in episodes),
    }


def as_arrays(
    benchmarks: list[str], episodes: list[dict[str, Any]], summary: dict[str, Any]
) -> dict[str, np.ndarray]:
    """The collected episodes as the arrays of the data file (all but its summary)."""
    if not episodes:
        raise RuntimeError(f"no schedule could be measured: {summary['error_examples']}")
    stages = np.array([len(e["actions"]) for e in episodes], np.int64)
    n_times = np.array([len(e["times"]) for e in episodes], np.int64)
    times = [np.asarray(e["times"], np.float64) for e in episodes]
    t_min = np.array([t.min() if t.size else np.nan for t in times])
    t_med = np.array([np.median(t) if t.size else np.nan for t in times])
    return {
        "benchmarks": np.array(benchmarks),
        "ep_pipeline": np.array([e["pipeline"] for e in episodes], np.int64),
        "ep_stages": stages,
        "ep_obs_start": np.concatenate([[0], np.cumsum(stages + 1)[:-1]]),
        "ep_act_start": np.concatenate([[0], np.cumsum(stages)[:-1]]),
        "ep_reward": np.array([e["reward"] for e in episodes], np.float64),
        "ep_naive": np.array([e["naive"] for e in episodes], bool),
        "ep_t_min": t_min,
        "ep_t_median": t_med,
        "ep_samples": n_times,
        "ep_times_start": np.concatenate([[0], np.cumsum(n_times)[:-1]]),
        "times": np.concatenate(times) if n_times.sum() else np.zeros(0),
        "obs": np.concatenate([e["obs"] for e in episodes]).astype(np.float32),
        "actions": np.concatenate([e["actions"] for e in episodes]).astype(np.int8),
    }


def _save_data(
    path: Path, benchmarks: list[str], episodes: list[dict[str, Any]], summary: dict[str, Any]
) -> None:
    arrays = as_arrays(benchmarks, episodes, summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays, summary=np.array(json.dumps(summary)))


def load_data(path: str | Path) -> dict[str, Any]:
    """The arrays :func:`collect` saved, and its summary under ``"summary"``."""
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    data["summary"] = json.loads(str(data["summary"]))
    if data["summary"].get("format") != DATA_FORMAT:
        raise ValueError(f"{path} is not {DATA_FORMAT} data")
    return data


__all__ = [
    "ALL_DEFAULTS",
    "collect",
    "confidence",
    "load_data",
]
