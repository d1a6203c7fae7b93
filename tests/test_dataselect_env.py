"""Data selection on noisy digits: the dataset, deterministic training, the env's episodes,
errors and replayable states."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import optgym  # noqa: F401  registers the envs
from optgym.budget import Budget, BudgetExceeded, BudgetMeter
from optgym.datasets import all_datasets
from optgym.datasets.dataselect import (
    DigitsNoisyDataset,
    load_digits_task,
    make_digits_task,
    task_to_npz,
)
from optgym.envs.dataselect import make_mlp, train_mlp
from optgym.state import EpisodeState

ENV_ID = "optgym/DataSelection-v0"
URI0 = "generator://digits-noisy-v0/0"


@pytest.fixture(scope="module")
def env():
    env = gym.make(ENV_ID)
    yield env
    env.close()


def run_episode(env, scores: np.ndarray) -> dict:
    env.reset(options={"benchmark": URI0})
    terminated, steps = False, 0
    while not terminated:
        _, _, terminated, truncated, info = env.step(scores)
        steps += 1
        assert not truncated
    assert steps == 10
    return info


def test_dataset_is_deterministic_with_ten_percent_flipped(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path))
    ds = DigitsNoisyDataset()
    assert ds.uri in all_datasets()
    assert task_to_npz(make_digits_task(3)) == task_to_npz(make_digits_task(3))
    assert task_to_npz(make_digits_task(3)) != task_to_npz(make_digits_task(4))
    bench = ds.benchmark(f"{ds.uri}/3")
    assert bench.read_bytes() == task_to_npz(make_digits_task(3))
    task = load_digits_task(bench)
    assert task.pool_x.shape == (1000, 64) and len(task.val_y) == 300 and len(task.test_y) == 497
    assert 0.0 <= task.pool_x.min() and task.pool_x.max() <= 1.0
    assert task.corrupted.sum() == 100
    assert np.array_equal(task.corrupted, task.pool_y != task.pool_clean_y)
    # the three splits are disjoint and cover the 1797 digits
    rows = np.concatenate([task.pool_index, task.val_index, task.test_index])
    assert sorted(rows.tolist()) == list(range(1797))
    with pytest.raises(ValueError, match="out of range"):
        ds.benchmark(f"{ds.uri}/{2**32}")


def test_training_is_deterministic():
    task = make_digits_task(0)
    x, y = torch.from_numpy(task.pool_x), torch.from_numpy(task.pool_y)
    keep = np.arange(1000) % 3 != 0
    init = make_mlp(64, 10, seed=0)
    before = [p.detach().clone() for p in init.parameters()]
    a = train_mlp(init, x, y, keep, steps=30)
    b = train_mlp(make_mlp(64, 10, seed=0), x, y, keep, steps=30)
    for pa, pb, p0 in zip(a.parameters(), b.parameters(), init.parameters(), strict=True):
        assert torch.equal(pa, pb) and not torch.equal(pa, p0)
    assert all(torch.equal(p, q) for p, q in zip(init.parameters(), before, strict=True))
    assert all(isinstance(m, (torch.nn.Linear, torch.nn.Tanh)) for m in a)
    with pytest.raises(ValueError, match="shape"):
        train_mlp(init, x, y, keep[:10])


def test_check_env(env):
    check_env(env.unwrapped, skip_render_check=True)


def test_oracle_removal_beats_random_removal(env):
    u = env.unwrapped
    obs, info = env.reset(options={"benchmark": URI0})
    full = u.test_metrics()["test_accuracy"]
    assert obs["keep"].sum() == 1000 and obs["features"].shape == (1000, 76)
    assert obs["val_loss"][0] == pytest.approx(info["val_loss"])
    oracle = run_episode(env, u.corrupted.astype(np.float32))
    assert oracle["kept"] == 900 and not u.keep[u.corrupted].any()
    assert {"test_loss", "test_accuracy", "val_loss", "val_accuracy"} <= set(oracle)
    random = run_episode(env, np.random.default_rng(0).random(1000).astype(np.float32))
    # seed 0: full pool 0.930, oracle 0.982, random 0.915
    assert oracle["test_accuracy"] > full + 0.03
    assert oracle["test_accuracy"] > random["test_accuracy"] + 0.03
    assert oracle["test_loss"] < random["test_loss"]


def test_bad_actions_and_arguments(env):
    env.reset(options={"benchmark": URI0})
    with pytest.raises(ValueError, match=r"shape \(1000,\)"):
        env.step(np.zeros(999, dtype=np.float32))
    bad = np.zeros(1000)
    bad[7] = np.nan
    with pytest.raises(ValueError, match="finite.*index 7"):
        env.step(bad)
    bad[7] = 1e300  # finite in float64, inf in float32
    with pytest.raises(ValueError, match="finite"):
        env.step(bad)
    with pytest.raises(ValueError, match="digits-noisy-v0/<seed>"):
        env.reset(options={"benchmark": "generator://nope-v0/1"})
    with pytest.raises(ValueError, match="allowed: remove, add"):
        gym.make(ENV_ID, mode="drop")
    with pytest.raises(ValueError, match="budget 1000 is too large"):
        gym.make(ENV_ID, budget=1000)
    with pytest.raises(ValueError, match="keep_mask"):
        env.unwrapped.retrain(np.ones(3, dtype=bool))


def test_ties_go_to_lower_index_and_states_replay(env):
    u = env.unwrapped
    env.reset(seed=5, options={"benchmark": URI0})
    _, reward, _, _, info = env.step(np.zeros(1000, dtype=np.float32))
    assert info["changed"].tolist() == list(range(10))
    assert reward == pytest.approx(u.state.reward)
    env.step(np.linspace(0.0, 1.0, 1000))
    state = EpisodeState.from_json(u.state.to_json())
    assert state.config == {
        "batch": 10,
        "budget": 100,
        "mode": "remove",
        "reward_space": "ValidationLoss",
    }
    assert state.extras == {"val_loss": u.val_loss, "val_accuracy": u.val_accuracy}
    fork = u.fork()
    result = u.validate(state)
    assert result.ok, str(result)
    assert np.array_equal(fork.keep, u.keep)
    # the same removals through the retrain API give the same model
    model = u.retrain(u.keep)
    assert all(
        torch.equal(p, q) for p, q in zip(model.parameters(), u.model.parameters(), strict=True)
    )
    forged = EpisodeState.from_dict({**json.loads(state.to_json()), "reward": state.reward + 0.1})
    assert not u.validate(forged).ok


def test_add_mode():
    env = gym.make(ENV_ID, mode="add", batch=25, budget=50)
    obs, info = env.reset(options={"benchmark": URI0})
    assert info["kept"] == 100 and obs["keep"][:100].all() and not obs["keep"][100:].any()
    _, _, terminated, _, info = env.step(np.arange(1000, dtype=np.float32))
    assert not terminated and info["changed"].tolist() == list(range(975, 1000))
    _, _, terminated, _, info = env.step(np.arange(1000, dtype=np.float32))
    assert terminated and info["kept"] == 150 and "test_accuracy" in info
    assert env.unwrapped.validate().ok


def test_retrainings_are_counted_and_refused_past_the_budget():
    env = gym.make(ENV_ID, batch=10, budget=20)
    u = env.unwrapped
    meter = BudgetMeter(Budget(calls=2))
    u.attach_meter(meter)
    _, info = env.reset(options={"benchmark": URI0})
    assert info["retrainings"] == 0 and meter.calls == 0  # the start model is setup
    _, _, _, _, info = env.step(np.zeros(1000, dtype=np.float32))
    assert info["retrainings"] == 1 and meter.used()["calls"] == 1 and meter.steps == 1
    u.retrain(u.keep)  # the public retrain is one retraining too
    assert meter.calls == 2 and u.episode_work == 2
    keep, model = u.keep.copy(), u.model
    with pytest.raises(BudgetExceeded, match="retrainings"):
        u.retrain(u.keep)
    with pytest.raises(BudgetExceeded, match="retrainings"):
        env.step(np.zeros(1000, dtype=np.float32))
    assert np.array_equal(u.keep, keep) and u.model is model  # the refused step did nothing
    with pytest.raises(ValueError, match="keep_mask"):  # a bad mask is refused uncharged
        u.retrain(np.ones(3, dtype=bool))
    u.attach_meter(None)
    # a state made with another config is replayed in an env rebuilt with it
    other = gym.make(ENV_ID, batch=5, budget=10).unwrapped
    other.reset(options={"benchmark": URI0})
    other.step(np.arange(1000, dtype=np.float32))
    result = u.validate(other.state)
    assert result.ok and result.work == 1, str(result)
    with pytest.raises(ValueError, match="another config"):
        u.apply(other.state)
