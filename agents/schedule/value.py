"""A learned value function for ``ScheduleSearch-v0``: data collection, training, and the
greedy / beam-search agent that uses it (after Steiner et al., "Value learning for
throughput optimization of deep neural networks", MLSys 2021).

The network is :class:`optgym.envs.schedule.model.ValueNet`: it maps an observation (a
partial or complete schedule) to the predicted log speedup over naive of the best
completion of that schedule.

The agent is a learned one: ``ValueFunctionAgent.train(env, benchmarks, budget)`` measures
schedules of the given train pipelines through the given env (its budget meter counts the
measurements; in ``cache`` mode they go to the env's SQLite cache, so a rerun reuses them)
and fits the network, ``save``/``load`` keep it, and ``--agent value:path=FILE`` benchmarks
it. ``optgym train`` does both, data collection and training; the shipped weights
(``optgym/agents/weights/schedule_value.pt``) are made with the settings' defaults
(:data:`optgym.envs.schedule.model.MAKE_COMMAND`)::

    optgym train value --task schedule-search --dataset generator://halide-random-v0 \
        --episodes 100 --budget measurements=540 --out agents/weights/schedule_value.pt

that is 45 train pipelines of ``generator://halide-random-v0`` (the first with at most 16
stages, from seed 2000) x (naive anchor + 10 random schedules), about 20 minutes on 2 cores
(1-3 s a measurement, mostly the JIT compile), then about half a minute of training (20
epochs, a round of value iteration, 5 more). Only train-split pipelines are used.

:func:`collect` and :func:`train` do the same from Python, in two steps, through a data file.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget, BudgetExceeded
from optgym.envs.schedule.actions import (
    AT_OUTER,
    AT_TILE,
    NVEC,
    ROOT,
    SPLITS,
    VECTOR_WIDTHS,
    decode,
    prior_action,
    resolve,
    sample_action,
)
from optgym.envs.schedule.model import (
    CostModel,
    ValueNet,
    default_weights_path,
    fit_normalization,
    load_cost_model,
    stage_counts,
)
from optgym.threads import torch_threads

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
RUNTIME_FLOOR = 0.1  # weight of the slowest schedules relative to the pipeline's best
VI_CAP = math.log(1.25)  # bootstrapped targets exceed the pipeline's best measured by <= this


def _make_env(mode: str = "cache", cache_path: str | Path | None = None) -> gym.Env:
    import optgym.envs  # noqa: F401  (registers the env ids)

    kwargs: dict[str, Any] = {"mode": mode, "baseline_info": False}
    if mode == "cache" and cache_path is not None:
        kwargs["cache_path"] = cache_path
    return gym.make("optgym/ScheduleSearch-v0", **kwargs)


def _stage_shape(base: Any, index: int) -> tuple[int, ...]:
    return tuple(base.pipeline.stage(base.stage_names[index]).shape)


def _schedule_key(action: Sequence[int], shape: Sequence[int]) -> tuple:
    """What an action does to a stage, canonically: equal keys give the same Halide code."""
    s = decode(action, shape)
    if s.inlined:
        return ("inline",)
    return (s.compute, s.tile, s.order, s.vector, s.unroll, s.parallel,
            s.store_root and s.compute in (AT_OUTER, AT_TILE))  # fmt: skip


def _sample_times(base: Any, info: dict[str, Any]) -> list[float]:
    """The timed samples of the episode's measurement. The env does not put them in
    ``info`` or the state; in ``cache`` mode they are read back from its measurement
    cache (the entry the step just wrote or read, keyed by the schedule as the env resolves
    it). Empty when unavailable."""
    if "times" in info:
        return [float(t) for t in info["times"]]
    cache = getattr(getattr(base, "timer", None), "cache", None)
    if cache is None:
        return []
    schedules: dict[str, Any] = {}
    for i, (name, a) in enumerate(zip(base.stage_names, base.state.actions, strict=True)):
        schedules[name] = resolve(name, decode(a, _stage_shape(base, i)), base.pipeline, schedules)
    try:
        hit = cache.get(base.pipeline_json, {k: asdict(v) for k, v in schedules.items()})
    except Exception:  # a cache in another format: no samples, not a failure
        return []
    return [] if hit is None else [float(t) for t in hit.times]


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
) -> dict[str, Any]:
    """Measure random legal schedules of ``pipelines`` train pipelines of
    ``halide-random-v0`` (seeds ``first_pipeline``, ``first_pipeline + 1``, ...; those with
    more than ``max_stages`` stages are passed over) in the env's ``cache`` mode, and save
    them to ``out_path`` (a compressed ``.npz``).

    Per pipeline: one anchor episode of the naive choice (every stage ``[0] * 9``: compute
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
    env = _make_env("cache", cache_path)
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
                episode, error = _collect_episode(base, uri, k, rng)
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
    summary = _summary(benchmarks, episodes, errors, seed, first_pipeline, max_stages)
    summary.update(
        measurements=int(measured["measurements"]),
        measure_seconds=float(measured["seconds"]),
        seconds_per_measurement=float(measured["seconds"]) / max(1, measured["measurements"]),
        wall_seconds=time.perf_counter() - start,
    )
    _save_data(Path(out_path), benchmarks, episodes, summary)
    return summary


def _collect_episode(
    base: Any, uri: str, k: int, rng: np.random.Generator
) -> tuple[dict[str, Any] | None, str | None]:
    """Episode ``k`` of a pipeline's collection, measured through the env's public API (so
    an attached budget meter counts its measurement): ``k == 0`` the naive choice (every
    stage ``[0] * 9``), odd ``k`` actions drawn from ``prior_action``, even ones uniformly.
    Returns (the episode's record, None) or (None, the error that failed it)."""
    obs = [base.reset(options={"benchmark": uri})[0]]
    actions: list[np.ndarray] = []
    done, info = False, {}
    while not done:
        masks = base.masks()
        if k == 0:
            a = np.zeros(len(NVEC), np.int64)
        elif k % 2:
            a = prior_action(masks, rng)
        else:
            a = sample_action(masks, rng)
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
        "naive": k == 0,
        "times": _sample_times(base, info),
    }
    return record, None


def _summary(
    benchmarks: list[str],
    episodes: list[dict[str, Any]],
    errors: list[str],
    seed: int,
    first_pipeline: int | None,
    max_stages: int | None,
) -> dict[str, Any]:
    return {
        "format": DATA_FORMAT,
        "pipelines": len(benchmarks),
        "episodes": len(episodes),
        "errors": len(errors),
        "error_examples": errors[:5],
        "seed": seed,
        "first_pipeline": first_pipeline,
        "max_stages": max_stages,
        "samples_known": sum(bool(e["times"]) for e in episodes),
    }


def _arrays(
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
    arrays = _arrays(benchmarks, episodes, summary)
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


# --------------------------------------------------------------------------- training


def _states(data: dict[str, Any]) -> dict[str, np.ndarray]:
    """One training state per distinct (pipeline, action prefix), with its Monte Carlo
    target (best recorded completion), the episode giving it, and its step index."""
    best: dict[tuple[int, bytes], tuple[float, int, int, int]] = {}
    for e in range(len(data["ep_stages"])):
        p, n, r = int(data["ep_pipeline"][e]), int(data["ep_stages"][e]), data["ep_reward"][e]
        acts = data["actions"][data["ep_act_start"][e] : data["ep_act_start"][e] + n]
        for t in range(n + 1):
            key = (p, acts[:t].tobytes())
            row = int(data["ep_obs_start"][e]) + t
            if key not in best or r > best[key][0]:
                best[key] = (float(r), e, row, t)
    keys = list(best)
    return {
        "pipeline": np.array([k[0] for k in keys], np.int64),
        "target": np.array([best[k][0] for k in keys], np.float64),
        "episode": np.array([best[k][1] for k in keys], np.int64),
        "row": np.array([best[k][2] for k in keys], np.int64),
        "step": np.array([best[k][3] for k in keys], np.int64),
    }


def state_weights(data: dict[str, Any], states: dict[str, np.ndarray]) -> np.ndarray:
    """Loss weight of each state: ``conf * (0.1 + exp(y - R_best))``, normalized to mean 1.

    ``y`` is the state's Monte Carlo target, ``R_best`` the best measured reward on its
    pipeline (so ``exp(y - R_best) = t_best / t``: faster schedules weigh more, the slowest
    still 0.1), and ``conf = 1 / (1 + (median / min - 1) / 0.02)`` from the timed samples
    of the episode that gave the target (1 when unknown)."""
    n_pipes = int(data["ep_pipeline"].max()) + 1
    r_best = np.full(n_pipes, -np.inf)
    np.maximum.at(r_best, data["ep_pipeline"], data["ep_reward"])
    conf = confidence(data["ep_t_min"], data["ep_t_median"])[states["episode"]]
    gap = np.minimum(states["target"] - r_best[states["pipeline"]], 0.0)
    w = conf * (RUNTIME_FLOOR + np.exp(gap))
    return w / w.mean()


def _lengths(obs: np.ndarray) -> np.ndarray:
    return np.maximum(stage_counts(obs), 1)


def _epochs(
    net: ValueNet,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    lengths: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    history: dict[str, list[float]],
    bar: Any,
) -> None:
    for _ in range(epochs):
        net.train()
        total, weight = 0.0, 0.0
        order = rng.permutation(train_idx)
        for i in range(0, len(order), batch_size):
            b = torch.from_numpy(order[i : i + batch_size])
            pred = net(x[b], lengths[b])
            loss = (w[b] * (pred - y[b]) ** 2).sum() / w[b].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * float(w[b].sum())
            weight += float(w[b].sum())
        history["train_loss"].append(total / max(weight, 1e-12))
        history["val_loss"].append(_loss(net, x, lengths, y, w, val_idx))
        bar.update(1)
        bar.set_postfix(
            train=f"{history['train_loss'][-1]:.4f}", val=f"{history['val_loss'][-1]:.4f}"
        )


def _loss(
    net: ValueNet,
    x: torch.Tensor,
    lengths: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    idx: np.ndarray,
) -> float:
    if len(idx) == 0:
        return float("nan")
    net.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(idx), 1024):
            b = torch.from_numpy(idx[i : i + 1024])
            total += float((w[b] * (net(x[b], lengths[b]) - y[b]) ** 2).sum())
    return total / float(w[torch.from_numpy(idx)].sum())


def _bootstrap_targets(
    model: CostModel,
    data: dict[str, Any],
    states: dict[str, np.ndarray],
    targets: np.ndarray,
    candidates: int,
    rng: np.random.Generator,
    progress: bool,
) -> np.ndarray:
    """One round of value iteration: for each partial state ``s`` (replayed in an env that
    never measures), ``max(y_mc(s), min(max_a V(peek(s, a)), R_best + VI_CAP))`` over
    ``candidates`` sampled legal actions plus the recorded one and the naive choice."""
    from tqdm import tqdm

    env = _make_env("measure")
    base = env.unwrapped
    by_row = {int(r): i for i, r in enumerate(states["row"])}
    new = targets.copy()
    n_pipes = int(data["ep_pipeline"].max()) + 1
    r_best = np.full(n_pipes, -np.inf)
    np.maximum.at(r_best, data["ep_pipeline"], data["ep_reward"])
    todo = sorted({int(states["episode"][i]) for i in range(len(targets))})
    best = np.full(len(targets), -np.inf)
    obs_batch: list[np.ndarray] = []
    owner: list[int] = []

    def flush() -> None:
        if obs_batch:
            np.maximum.at(best, np.asarray(owner), model.predict(np.stack(obs_batch)))
            obs_batch.clear()
            owner.clear()

    try:
        for e in tqdm(todo, desc="value iteration", unit="episode", disable=not progress):
            p, n = int(data["ep_pipeline"][e]), int(data["ep_stages"][e])
            acts = data["actions"][data["ep_act_start"][e] : data["ep_act_start"][e] + n]
            base.reset(options={"benchmark": str(data["benchmarks"][p])})
            try:
                for t in range(n):
                    i = by_row.get(int(data["ep_obs_start"][e]) + t)
                    if i is not None:
                        masks = base.masks()
                        cands = [acts[t].astype(np.int64), np.zeros(len(NVEC), np.int64)]
                        cands += [sample_action(masks, rng) for _ in range(candidates)]
                        for a in cands:
                            obs_batch.append(base.peek(a))
                            owner.append(i)
                    if t + 1 < n:
                        base.step(acts[t].astype(np.int64))
            except ValueError:  # the env's masks changed since collection: keep y_mc
                pass
            if len(obs_batch) >= 1024:
                flush()
        flush()
    finally:
        env.close()
    has = np.isfinite(best)
    capped = np.minimum(best, r_best[states["pipeline"]] + VI_CAP)
    new[has] = np.maximum(targets[has], capped[has])
    return new


def train(data_path: str | Path, out_weights: str | Path, **settings: Any) -> dict[str, Any]:
    """Fit a :class:`ValueNet` to the data file of :func:`collect` with :func:`fit` (whose
    keyword arguments ``settings`` are: ``epochs``, ``seed``, ``vi_rounds``, ...) and save it
    to ``out_weights``; returns the loss history (also stored as metadata)."""
    model, history = fit(load_data(data_path), **settings)
    model.save(out_weights)
    return history


def fit(
    data: dict[str, Any],
    epochs: int = 40,
    seed: int = 0,
    vi_rounds: int = 1,
    vi_epochs: int | None = None,
    vi_candidates: int = 16,
    batch_size: int = 64,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    threads: int = 1,
    progress: bool = True,
) -> tuple[CostModel, dict[str, Any]]:
    """Fit a :class:`ValueNet` to collected data (the arrays of :func:`collect`'s file, its
    summary under ``"summary"``); returns the model (its ``meta`` holds the settings, the
    data summary and the history) and the loss history.

    Targets: a complete schedule's target is its measured reward; a partial schedule's is
    the best reward among the recorded completions of the same action prefix (one state per
    distinct prefix). Then ``vi_rounds`` rounds of value iteration, each followed by
    ``vi_epochs`` (default ``epochs // 2``) more epochs: a partial state's target becomes
    ``max(y_mc, min(max_a V(peek(s, a)), R_best + log 1.25))`` over ``vi_candidates``
    sampled legal actions (plus the recorded and the naive one), ``V`` the current network,
    ``R_best`` the best measured reward on the pipeline (the cap curbs the max's optimism).

    Loss: ``sum w (V(s) - y)^2 / sum w`` per minibatch, with ``w`` from
    :func:`state_weights`: ``conf * (0.1 + exp(y_mc - R_best))``, ``conf = 1 / (1 +
    (median / min - 1) / 0.02)`` of the timed samples. Adam (``lr``), minibatches of
    ``batch_size``; pipelines split ``val_fraction`` held out (validation loss only).
    Deterministic given ``seed`` (on ``threads`` torch threads)."""
    from tqdm import tqdm

    states = _states(data)
    obs = data["obs"][states["row"]]
    w_np = state_weights(data, states)
    rng = np.random.default_rng(seed)
    n_pipes = len(data["benchmarks"])
    n_val = int(round(val_fraction * n_pipes)) if n_pipes >= 2 else 0
    n_val = max(1, n_val) if val_fraction > 0 and n_pipes >= 2 else n_val
    val_pipes = set(rng.permutation(n_pipes)[:n_val].tolist())
    is_val = np.array([p in val_pipes for p in states["pipeline"]])
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    vi_epochs = epochs // 2 if vi_epochs is None else vi_epochs

    with torch_threads(threads):
        torch.manual_seed(seed)
        net = ValueNet()
        lengths_np = _lengths(obs)
        mean, std = fit_normalization(obs[train_idx], lengths_np[train_idx])
        net.set_normalization(mean, std)
        x = torch.from_numpy(obs)
        lengths = torch.from_numpy(lengths_np)
        w = torch.from_numpy(w_np.astype(np.float32))
        targets = states["target"].copy()
        history: dict[str, Any] = {"train_loss": [], "val_loss": [], "rounds": []}
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        total = epochs + vi_rounds * vi_epochs
        with tqdm(total=total, desc="train", unit="epoch", disable=not progress) as bar:
            y = torch.from_numpy(targets.astype(np.float32))
            _epochs(net, opt, x, lengths, y, w, train_idx, val_idx, epochs, batch_size, rng,
                    history, bar)  # fmt: skip
            history["rounds"].append(len(history["train_loss"]))
            for _ in range(vi_rounds):
                model = CostModel(net)
                targets = _bootstrap_targets(
                    model, data, states, targets, vi_candidates, rng, progress
                )
                y = torch.from_numpy(targets.astype(np.float32))
                _epochs(net, opt, x, lengths, y, w, train_idx, val_idx, vi_epochs, batch_size,
                        rng, history, bar)  # fmt: skip
                history["rounds"].append(len(history["train_loss"]))
        net.eval()
    model = CostModel(net)
    complete = states["step"] == data["ep_stages"][states["episode"]]
    history["val_rank_accuracy"] = _rank_accuracy(
        model, obs, states["target"], states["pipeline"], complete & is_val
    )
    model.meta = {
        "seed": seed,
        "epochs": epochs,
        "vi_rounds": vi_rounds,
        "vi_epochs": vi_epochs,
        "states": int(len(targets)),
        "train_states": int(len(train_idx)),
        "val_pipelines": sorted(str(data["benchmarks"][p]) for p in val_pipes),
        "data": data["summary"],
        "history": history,
    }
    return model, history


def _rank_accuracy(
    model: CostModel, obs: np.ndarray, y: np.ndarray, pipeline: np.ndarray, mask: np.ndarray
) -> float | None:
    """Fraction of same-pipeline pairs of complete schedules (in ``mask``) whose predicted
    order matches the measured one (pairs closer than 5% in time are left out)."""
    idx = np.flatnonzero(mask)
    if len(idx) < 2:
        return None
    pred = model.predict(obs[idx])
    right = pairs = 0
    for p in np.unique(pipeline[idx]):
        k = np.flatnonzero(pipeline[idx] == p)
        for a in range(len(k)):
            for b in range(a + 1, len(k)):
                dy = y[idx[k[a]]] - y[idx[k[b]]]
                if abs(dy) < math.log(1.05):
                    continue
                pairs += 1
                right += (pred[k[a]] - pred[k[b]]) * dy > 0
    return right / pairs if pairs else None


# --------------------------------------------------------------------------- the agent

_SHIPPED: dict[str, CostModel] = {}  # the shipped weights, read once per process


def _shipped_model() -> CostModel:
    path = str(default_weights_path())
    if path not in _SHIPPED:
        _SHIPPED[path] = load_cost_model(path)
    return _SHIPPED[path]


def _structured(masks: list[np.ndarray]) -> list[np.ndarray]:
    """A few hand-made choices: every legal compute location with nothing else, and a
    vectorized tile computed at root."""
    out = []
    for c in np.flatnonzero(masks[0]):
        a = np.zeros(len(NVEC), np.int64)
        a[0] = c
        out.append(a)
    a = np.zeros(len(NVEC), np.int64)
    a[0] = ROOT
    for comp, want in ((1, SPLITS.index(16)), (2, SPLITS.index(4))):
        legal = np.flatnonzero(masks[comp])
        a[comp] = legal[legal <= want].max()
    legal = np.flatnonzero(masks[5])
    a[5] = legal[legal <= VECTOR_WIDTHS.index(8)].max()
    out.append(a)
    return out


@dataclass
class ValueFunctionAgent:
    """Greedy (``beam=1``) or beam search over stages guided by the learned value function.

    At each stage, for each of the ``beam`` partial schedules kept: the naive choice, a few
    structured ones and up to ``candidates`` sampled legal actions, deduplicated by what
    they do (seeded); each is scored by the model on its ``peek`` observation and the best
    ``beam`` (schedule, action) pairs go on (stepped on ``fork()``s; nothing is measured).
    At the last stage the complete schedules (with ``samples`` > 0, together with that many
    complete schedules drawn from the same proposal and scored by the model; on the test
    pipelines this did not beat the plain search: geomean 0.99x random search with 512,
    1.04x without, within the timing noise) are ranked by prediction and the best are
    measured, best-predicted first: ``measure_top`` of them (``None``: as many as the calls
    budget allows, 1 without one), while the budget has room (the first one always: the
    env refuses it when the budget is spent). Returns the best measured schedule.

    A learned agent: ``train`` measures schedules of train pipelines through the env and
    fits the value network; ``save`` and ``load`` (or the ``path`` setting) keep it."""

    #: What ``optgym train`` adds to the task's env config for training: the Adams2019
    #: baseline in ``info`` (minutes of autoscheduling per random pipeline) is not needed.
    train_env_kwargs: ClassVar[dict[str, Any]] = {"baseline_info": False}

    path: Path | None = None
    """weights file to load (``save`` writes one); None: the shipped weights"""
    candidates: int = 128
    """sampled actions scored per stage and kept schedule (besides the structured ones)"""
    beam: int = 1
    """partial schedules kept per stage (1: greedy)"""
    measure_top: int | None = 1
    """best-predicted complete schedules to measure; None: as many as the calls budget"""
    samples: int = 0
    """extra complete schedules drawn from the proposal and ranked by the model"""
    epochs: int = ALL_DEFAULTS["epochs"]
    """train: epochs of fitting on the Monte Carlo targets"""
    vi_epochs: int = ALL_DEFAULTS["vi_epochs"]
    """train: epochs after the round of value iteration (0: no value iteration)"""
    schedules: int = ALL_DEFAULTS["schedules"]
    """train: random schedules measured per pipeline (after its naive anchor), at most"""
    max_stages: int | None = ALL_DEFAULTS["max_stages"]
    """train: pipelines with more stages are passed over (None: none)"""
    pipelines: int | None = ALL_DEFAULTS["pipelines"]
    """train: at most this many pipelines, the first of the benchmarks with at most
    max_stages stages (None: all of them)"""

    _model: CostModel | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("candidates", "beam"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pipelines is not None and self.pipelines < 1:
            raise ValueError(f"pipelines must be >= 1 or None, got {self.pipelines}")
        if self.measure_top is not None and self.measure_top < 1:
            raise ValueError(f"measure_top must be >= 1 or None, got {self.measure_top}")
        for name in ("samples", "epochs", "vi_epochs", "schedules"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_stages is not None and self.max_stages < 1:
            raise ValueError(f"max_stages must be >= 1 or None, got {self.max_stages}")
        if self.path is not None:
            self.load(self.path)

    @property
    def model(self) -> CostModel:
        """The value network in use: trained or loaded, else the shipped weights."""
        if self._model is None:
            self._model = _shipped_model()
        return self._model

    # ---- a learned agent ------------------------------------------------------------------
    def load(self, path: str | Path) -> None:
        """Use the weights in ``path`` (a file ``save``, ``optgym train value`` or
        :func:`train` wrote)."""
        self._model = load_cost_model(path)
        self.path = Path(path)

    def save(self, path: str | Path) -> None:
        """Write the value network to ``path`` in the format ``load`` reads."""
        self.model.save(path)

    def train(
        self,
        env: gym.Env,
        benchmarks: list[str],
        budget: Budget,
        seed: int = 0,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Measure schedules of ``benchmarks`` (train-split pipelines) with ``env`` (in
        ``measure`` or ``cache`` mode; its budget meter counts every measurement) and fit
        the value network to them: what ``optgym train value`` runs.

        Round-robin over the pipelines (the first ``pipelines`` of those with at most
        ``max_stages`` stages): first
        each one's naive anchor, then up to ``schedules`` random schedules each (prior and
        uniform draws), until the budget has no room for another episode; then ``epochs``
        epochs, a round of value iteration and ``vi_epochs`` more (pipelines held out for a
        validation loss only when there are 10 or more). Train on an env made with
        ``train_env_kwargs`` on top of the task's (``optgym train`` does): the Adams2019
        baseline of ``baseline_info`` is only info and takes minutes per random pipeline.
        Returns figures: ``pipelines``,
        ``episodes``, ``errors``, ``measurements``, ``samples`` (training states),
        ``epochs``, ``final_loss`` (the last epoch's weighted squared error, in log
        speedup squared), ``val_loss`` and ``seconds`` (wall time)."""
        from tqdm import tqdm

        start = time.perf_counter()
        base = env.unwrapped
        if getattr(base, "mode", None) not in ("measure", "cache"):
            raise ValueError(
                f"training needs measured rewards: an env in mode 'measure' or 'cache', not "
                f"{getattr(base, 'mode', None)!r}"
            )
        if not benchmarks:
            raise ValueError("train needs at least one benchmark (train-split pipelines)")
        for uri in benchmarks:
            if base.datasets.dataset(uri).split_of(uri) == "test":
                raise ValueError(f"{uri} is in the test split; train on train-split pipelines")
        rng = np.random.default_rng(seed)
        episodes: list[dict[str, Any]] = []
        errors: list[str] = []
        stages: dict[str, int] = {}
        for uri in dict.fromkeys(benchmarks):
            if self.pipelines is not None and len(stages) >= self.pipelines:
                break
            base.reset(options={"benchmark": uri})  # free: no measurement
            if self.max_stages is None or len(base.stage_names) <= self.max_stages:
                stages[uri] = len(base.stage_names)
        if not stages:
            raise ValueError(
                f"none of the {len(benchmarks)} benchmarks has at most {self.max_stages} stages"
            )
        kept: list[str] = []  # pipelines whose naive anchor was measured

        def rounds() -> Iterator[tuple[int, str]]:
            for k in range(self.schedules + 1):
                yield from ((k, uri) for uri in (list(stages) if k == 0 else list(kept)))

        with metered(env, budget, self) as meter:
            calls0 = meter.calls
            bar = tqdm(desc="collect", unit="schedule", disable=not progress)
            try:
                for k, uri in rounds():
                    if not meter.calls_left(steps=stages[uri]) > 0:
                        break
                    try:
                        episode, error = _collect_episode(base, uri, k, rng)
                    except BudgetExceeded:  # the seconds ran out during the episode
                        break
                    bar.update(1)
                    if error is not None:
                        errors.append(error)
                        continue
                    if k == 0:  # a pipeline whose naive choice fails is passed over
                        kept.append(uri)
                    assert episode is not None
                    episodes.append(dict(episode, pipeline=kept.index(uri)))
            finally:
                bar.close()
            measurements = meter.calls - calls0
        summary = _summary(kept, episodes, errors, seed, None, self.max_stages)
        summary["measurements"] = measurements
        data = {**_arrays(kept, episodes, summary), "summary": summary}
        model, history = fit(
            data, self.epochs, seed, vi_rounds=1 if self.vi_epochs else 0,
            vi_epochs=self.vi_epochs, val_fraction=0.1 if len(kept) >= 10 else 0.0,
            progress=progress,
        )  # fmt: skip
        self._model = model
        return {
            "pipelines": len(kept),
            "episodes": len(episodes),
            "errors": len(errors),
            "measurements": measurements,
            "samples": int(model.meta["states"]),
            "epochs": len(history["train_loss"]),
            "final_loss": float(history["train_loss"][-1]),
            "val_loss": float(history["val_loss"][-1]),
            "seconds": time.perf_counter() - start,
        }

    # ---- search ---------------------------------------------------------------------------
    def _candidates(
        self, masks: list[np.ndarray], shape: tuple[int, ...], rng: np.random.Generator
    ) -> list[np.ndarray]:
        seen: set[tuple] = set()
        out: list[np.ndarray] = []

        def add(a: np.ndarray) -> None:
            key = _schedule_key(a, shape)
            if key not in seen:
                seen.add(key)
                out.append(a)

        for a in _structured(masks):
            add(a)
        want, tries = len(out) + self.candidates, 0
        while len(out) < want and tries < 4 * self.candidates:
            add(prior_action(masks, rng) if tries % 4 else sample_action(masks, rng))
            tries += 1
        return out

    def _rollouts(
        self, root: Any, n: int, model: CostModel, rng: np.random.Generator
    ) -> list[tuple[float, Any, np.ndarray]]:
        """``samples`` complete schedules drawn from the proposal (prior and uniform, as the
        candidates), scored by the model on their complete observation (nothing measured)."""
        parents, actions, obs = [], [], []
        for k in range(self.samples):
            f = root.fork()
            draw = prior_action if k % 4 else sample_action
            for _ in range(n - 1):
                f.step(draw(f.masks(), rng))
            a = draw(f.masks(), rng)
            parents.append(f)
            actions.append(a)
            obs.append(f.peek(a))
        if not obs:
            return []
        scores = model.predict(np.stack(obs))
        return [(float(v), f, a) for v, f, a in zip(scores, parents, actions, strict=True)]

    @staticmethod
    def _ranked(finals: list[tuple[float, Any, np.ndarray]]) -> list:
        """Complete schedules best-predicted first, each distinct schedule once."""
        seen: set[tuple] = set()
        out = []
        for score, parent, a in sorted(finals, key=lambda x: -x[0]):
            key = (tuple(map(tuple, parent.state.actions)), tuple(int(v) for v in a))
            if key not in seen:
                seen.add(key)
                out.append((score, parent, a))
        return out

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        model = self.model
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            n = len(base.stage_names)
            root = base.fork()
            beams = [base.fork()]
            finals: list[tuple[float, Any, np.ndarray]] = []
            for t in range(n):
                shape = _stage_shape(base, t)
                pairs: list[tuple[int, np.ndarray]] = []
                obs: list[np.ndarray] = []
                for bi, b in enumerate(beams):
                    for a in self._candidates(b.masks(), shape, rng):
                        pairs.append((bi, a))
                        obs.append(b.peek(a))
                scores = model.predict(np.stack(obs))
                order = np.argsort(-scores, kind="stable")
                if t + 1 < n:
                    kept = []
                    for i in order[: self.beam]:
                        bi, a = pairs[i]
                        f = beams[bi].fork()
                        f.step(a)
                        kept.append(f)
                    beams = kept
                else:
                    finals = [(float(scores[i]), beams[pairs[i][0]], pairs[i][1]) for i in order]
            finals = self._ranked(finals + self._rollouts(root, n, model, rng))
            limit = self.measure_top if self.measure_top is not None else (budget.calls or 1)
            if budget.calls is not None:
                limit = min(limit, budget.calls)
            best, errors, measured = None, [], 0
            for score, parent, a in finals:
                # the first measurement is the env's to refuse (one late start is in grace)
                if measured >= max(1, limit) or (measured and meter.room() == 0):
                    break
                f = parent.fork()
                info = f.step(a)[4]
                measured += 1
                if "error" in info:
                    errors.append(info["error"])
                    continue
                state = f.state
                state.extras["predicted_reward"] = score
                if best is None or state.reward > best.reward:
                    best = state
            if best is None:
                raise RuntimeError(
                    f"none of the {measured} best-predicted schedules of {benchmark} could be "
                    f"measured: {errors[-1] if errors else 'no candidate'}"
                )
            return solved(env, meter, best)


__all__ = [
    "ALL_DEFAULTS",
    "ValueFunctionAgent",
    "collect",
    "confidence",
    "fit",
    "load_data",
    "state_weights",
    "train",
]
