"""Fitting the schedule value function (:class:`optgym.envs.schedule.model.ValueNet`) to
the data of :mod:`optgym.agents.schedule.value_data`: Monte Carlo targets first, then rounds
of value iteration (each state's target raised to the best the previous model finds from it
by a short search, capped at :data:`VI_CAP` above the pipeline's best measured schedule), as
in Steiner et al. (MLSys 2021). :func:`fit` returns the model and its loss history;
:func:`train` does the same from a data file and saves the weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optgym.agents.schedule.value_data import confidence, load_data, make_env, space_of
from optgym.envs.schedule import ENV_ID
from optgym.envs.schedule.model import (
    CostModel,
    ValueNet,
    fit_normalization,
    stage_counts,
)
from optgym.threads import torch_threads

RUNTIME_FLOOR = 0.1  # weight of the slowest schedules relative to the pipeline's best
VI_CAP = math.log(1.25)  # bootstrapped targets exceed the pipeline's best measured by <= this

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

    env = make_env("measure", env_id=data_env_id(data))
    base = env.unwrapped
    space = space_of(base)
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
                        cands = [acts[t].astype(np.int64), np.zeros(len(space.NVEC), np.int64)]
                        cands += [space.sample_action(masks, rng) for _ in range(candidates)]
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


def data_env_id(data: dict[str, Any]) -> str:
    """The env the data was measured in (data from before v1 existed: v0)."""
    return str(data["summary"].get("env_id", ENV_ID))


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
        "env_id": data_env_id(data),
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


__all__ = [
    "fit",
    "state_weights",
    "train",
]
