"""Data selection on corrupted pydoc text: the dataset, the cached base LM, deterministic
fine-tuning, the env's episodes on the text task, and EK-FAC query batching on the LM."""

from __future__ import annotations

import math
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from scipy.stats import spearmanr

import optgym  # noqa: F401  registers the envs
from optgym.agents.dataselect.influence import fit_factors, influence_scores, summed_influence
from optgym.datasets import all_datasets
from optgym.datasets.dataselect import (
    VOCAB_SIZE,
    PydocTextDataset,
    load_text_task,
    make_text_task,
    text_task_to_npz,
)
from optgym.datasets.dataselect.text import CHUNK, OFF_DOMAIN_ALPHABET, decode, encode
from optgym.envs.dataselect.lm import (
    CharTransformer,
    base_model,
    evaluate_lm,
    finetune,
    split_chunks,
)
from optgym.state import EpisodeState

ENV_ID = "optgym/DataSelection-v0"
URI0 = "generator://pydoc-text-v0/0"
pytestmark = pytest.mark.filterwarnings("ignore:.*Box.*space:UserWarning")  # unbounded scores


@pytest.fixture(scope="module")
def env():
    env = gym.make(ENV_ID, benchmark=URI0, batch=10, budget=20)
    yield env
    env.close()


def test_dataset_is_deterministic_with_twenty_percent_corrupted(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path))
    ds = PydocTextDataset()
    assert ds.uri in all_datasets() and "PSF" in ds.license
    assert text_task_to_npz(make_text_task(3)) == text_task_to_npz(make_text_task(3))
    assert text_task_to_npz(make_text_task(3)) != text_task_to_npz(make_text_task(4))
    bench = ds.benchmark(f"{ds.uri}/3")
    assert bench.read_bytes() == text_task_to_npz(make_text_task(3))
    task = load_text_task(bench)
    assert task.pool.shape == (500, CHUNK) and task.val.shape == task.test.shape == (100, CHUNK)
    assert len(task.base) > 6000 and int(task.base.max()) < VOCAB_SIZE
    assert task.corrupted.sum() == 100 and np.bincount(task.corruption).tolist() == [400, 50, 50]
    clean = ~task.corrupted
    assert np.array_equal(task.pool[clean], task.pool_clean[clean])
    shuffled = task.corruption == 1  # the same symbols in another order
    assert np.array_equal(np.sort(task.pool[shuffled]), np.sort(task.pool_clean[shuffled]))
    assert not np.array_equal(task.pool[shuffled], task.pool_clean[shuffled])
    soup = set(decode(task.pool[task.corruption == 2]))
    assert soup <= set(OFF_DOMAIN_ALPHABET) and not soup & set("abcdefghijklmnopqrstuvwxyz")
    chunks = np.concatenate([task.pool_index, task.val_index, task.test_index, task.base_index])
    assert len(set(chunks.tolist())) == len(chunks)  # the splits are disjoint
    assert decode(encode("déjà vu\n")) == "d?j? vu\n"


def test_base_model_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path))
    base = make_text_task(0).base[:512]
    start = time.perf_counter()
    trained = base_model(base, steps=8)
    train_s = time.perf_counter() - start
    assert len(list((tmp_path / "models").glob("char-lm-*.pt"))) == 1
    start = time.perf_counter()
    loaded = base_model(base, steps=8)
    load_s = time.perf_counter() - start
    assert load_s < train_s / 2, (load_s, train_s)
    for p, q in zip(trained.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(p, q)
    other = base_model(base, steps=9)  # another setting is another cache entry
    assert len(list((tmp_path / "models").glob("char-lm-*.pt"))) == 2
    assert not torch.equal(other.head.weight, trained.head.weight)


def test_base_model_beats_uniform_and_finetuning_is_deterministic(env):
    u = env.unwrapped
    base = u.init_model
    assert isinstance(base, CharTransformer)
    loss, accuracy = evaluate_lm(base, u.val_x, u.val_y)
    assert loss < math.log(VOCAB_SIZE) - 1.5 and accuracy > 0.25, (loss, accuracy)
    before = [p.detach().clone() for p in base.parameters()]
    keep = np.arange(u.pool_size) % 3 != 0
    a = finetune(base, u.pool_x, u.pool_y, keep, steps=3)
    b = finetune(base, u.pool_x, u.pool_y, keep, steps=3)
    c = finetune(base, u.pool_x, u.pool_y, ~keep, steps=3)
    for pa, pb, p0 in zip(a.parameters(), b.parameters(), base.parameters(), strict=True):
        assert torch.equal(pa, pb) and not torch.equal(pa, p0)
    assert not torch.equal(a.head.weight, c.head.weight)
    assert all(torch.equal(p, q) for p, q in zip(base.parameters(), before, strict=True))
    x, y = split_chunks(make_text_task(0).pool[:2])
    assert torch.equal(x, u.pool_x[:2]) and torch.equal(y, u.pool_y[:2])
    with pytest.raises(ValueError, match="shape"):
        finetune(base, u.pool_x, u.pool_y, keep[:10])


def test_check_env_on_text(env):
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(options={"benchmark": URI0})
    u = env.unwrapped
    assert u.task_kind == "text" and obs["features"].shape == (500, 76)
    assert obs["features"][:, 64:74].max() == 0.0  # no label block for text
    ngrams = obs["features"][:, :64]
    assert np.allclose(ngrams.sum(1), 1.0, atol=1e-5)
    # the corrupted sequences are the surprising ones under the fine-tuned model
    loss = obs["features"][:, 74]
    assert loss[u.corrupted].mean() > loss[~u.corrupted].mean() + 1.0


def test_episode_replays_and_the_oracle_helps(env):
    u = env.unwrapped
    env.reset(options={"benchmark": URI0})
    start = u.val_loss
    total, terminated, steps = 0.0, False, 0
    while not terminated:
        _, reward, terminated, truncated, info = env.step(u.corrupted.astype(np.float32))
        total += reward
        steps += 1
    assert steps == 2 and info["kept"] == 480 and u.corrupted[info["changed"]].all()
    assert math.isclose(total, start - info["val_loss"], rel_tol=1e-9, abs_tol=1e-9)
    assert total > 0.0 and {"test_loss", "test_accuracy"} <= set(info)
    state = EpisodeState.from_json(u.state.to_json())
    result = u.validate(state)
    assert result.ok, result
    # the same env goes back to digits, whose observation keeps its width
    obs, _ = env.reset(options={"benchmark": "generator://digits-noisy-v0/0"})
    assert u.task_kind == "digits" and obs["features"].shape == (1000, 76)
    env.reset(options={"benchmark": URI0})
    assert u.task_kind == "text" and u.pool_size == 500


def test_ekfac_query_batching_matches_full_ekfac_on_the_lm(env):
    u = env.unwrapped
    env.reset(options={"benchmark": URI0})
    factors = fit_factors(u.model, u.pool_x, method="ekfac", seed=0)
    train_x, train_y = u.pool_x[:200], u.pool_y[:200]
    query_x, query_y = u.val_x[:20], u.val_y[:20]
    full = influence_scores(u.model, factors, train_x, train_y, query_x, query_y)
    low = influence_scores(u.model, factors, train_x, train_y, query_x, query_y, query_rank=32)
    rho = np.mean([spearmanr(f, q).statistic for f, q in zip(full, low, strict=True)])
    assert rho >= 0.9, rho  # measured 0.994 (rank 16: 0.963, rank 8: 0.900)
    # the most harmful examples by summed influence on the validation loss are corrupted
    helps = summed_influence(u.model, factors, u.pool_x, u.pool_y, u.val_x, u.val_y)
    precision = u.corrupted[np.argsort(helps, kind="stable")[:100]].mean()
    assert precision >= 0.6, precision  # measured 0.92; base rate 0.2
