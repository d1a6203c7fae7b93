"""The wrappers training needs: a benchmark drawn per reset, fixed-size scores and graphs,
a per-step time cap, another named observation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import optgym
from optgym.train import make_vec_env, resolve
from optgym.wrappers import (
    BenchmarkSampler,
    FixedScores,
    NamedObservation,
    PaddedGraph,
    StepTimeCap,
    to_batch,
)

STRESS = [f"generator://llvm-stress-v0/{s}" for s in (2000, 2001, 2002, 2003)]


def _passes(space: str = "InstCount") -> gym.Env:
    return optgym.make("optgym/PassOrdering-v0", observation_space=space)


def test_the_sampler_draws_the_same_benchmarks_for_the_same_seed() -> None:
    runs = []
    for _ in range(2):
        env = BenchmarkSampler(_passes(), STRESS, seed=7)
        drawn = []
        for _ in range(6):
            env.reset()
            drawn.append(env.unwrapped.benchmark)
        env.close()
        runs.append(drawn)
    assert runs[0] == runs[1] and len(set(runs[0])) > 1
    other = BenchmarkSampler(_passes(), STRESS, seed=8)
    assert [other.draw() for _ in range(6)] != runs[0]
    # a reset naming its benchmark uses it and draws nothing
    env = BenchmarkSampler(_passes(), STRESS, seed=7)
    env.reset(options={"benchmark": "generator://csmith-v0/2005"})
    assert env.unwrapped.benchmark == "generator://csmith-v0/2005"
    env.close()
    with pytest.raises(ValueError, match="at least one benchmark"):
        BenchmarkSampler(_passes(), [], seed=0)
    with pytest.raises(ValueError, match="2 of the 2 given are not"):
        BenchmarkSampler(_passes(), ["x", 3], seed=0)  # type: ignore[list-item]


def test_sub_envs_of_a_vector_env_train_on_different_benchmarks() -> None:
    config = resolve("optgym/PathPlanning2DClosedLoop-v0", "ppo", n_envs=4)
    vec = make_vec_env(config, seed=1)
    try:
        vec.reset()
        drawn = [e.unwrapped.benchmark for e in vec.envs]
    finally:
        vec.close()
    assert len(set(drawn)) > 1 and all(u in config.benchmarks for u in drawn)


def test_fixed_scores_bound_and_pad_the_action() -> None:
    env = optgym.make("optgym/DataSelection-v0", batch=20, budget=40)
    wrapped = FixedScores(env, size=1200)
    assert wrapped.action_space == gym.spaces.Box(-1.0, 1.0, (1200,), np.float32)
    wrapped.reset(options={"benchmark": "generator://digits-noisy-v0/2000"})
    scores = np.zeros(1200, np.float32)
    scores[:20] = 1.0
    *_, info = wrapped.step(scores)
    assert sorted(info["changed"]) == list(range(20))  # the top-scored pool examples went
    with pytest.raises(ValueError, match=r"shape \(1200,\)"):
        wrapped.step(np.zeros(7))
    small = FixedScores(env, size=10)
    with pytest.raises(ValueError, match="1000 items to score, more than the 10"):
        small.reset()
    with pytest.raises(ValueError, match="1-d Box of scores"):
        FixedScores(_passes())
    env.close()


def test_padded_programl_graphs_batch_back_to_the_same_graph() -> None:
    env = PaddedGraph(_passes("Programl"), 1024, 2048)
    obs, _ = env.reset(options={"benchmark": STRESS[0]})
    raw = env.unwrapped.observation["Programl"]
    assert env.observation_space.contains(obs)
    assert int(obs["num_nodes"][0]) == raw.num_nodes
    tensors = {k: torch.as_tensor(np.stack([obs[k], obs[k]])) for k in obs}
    batch = to_batch({k: v.float() for k, v in tensors.items()})
    n, e = raw.num_nodes, raw.edge_index.shape[1]
    assert batch.num_graphs == 2 and batch.x.shape == (2 * n, 2)
    assert torch.equal(batch.edge_index[:, :e].long(), raw.edge_index)
    assert torch.equal(batch.edge_index[:, e:].long(), raw.edge_index + n)
    assert torch.equal(batch.x[:n].long(), raw.x) and batch.batch.tolist() == [0] * n + [1] * n
    tiny = PaddedGraph(_passes("Programl"), 100, 100)
    with pytest.raises(ValueError, match=r"has \d+ nodes and \d+ edges; PaddedGraph holds"):
        tiny.reset(options={"benchmark": STRESS[0]})
    cut = PaddedGraph(_passes("Programl"), 100, 150, truncate=True)
    obs, _ = cut.reset(options={"benchmark": STRESS[0]})
    assert obs["num_nodes"][0] == 100 and obs["num_edges"][0] <= 150
    assert (obs["edge_index"][:, : obs["num_edges"][0]] < 100).all()
    with pytest.raises(ValueError, match="needs a graph observation"):
        PaddedGraph(_passes("Autophase"), 10, 10)
    for e in (env, tiny, cut):
        e.close()


def test_a_step_past_the_time_cap_ends_the_episode_and_the_next_reset_works() -> None:
    env = StepTimeCap(_passes(), 1e-4)
    env.reset(options={"benchmark": "generator://csmith-v0/2001"})
    obs, reward, terminated, truncated, info = env.step(env.unwrapped.action_index("-gvn"))
    assert truncated and "error" in info and reward == 0
    assert env.unwrapped.timeout == 600.0  # the env's own limit is back
    env.reset(options={"benchmark": "generator://csmith-v0/2001"})
    env.close()
    env = StepTimeCap(_passes(), 30.0)
    env.reset(options={"benchmark": "generator://csmith-v0/2001"})
    *_, info = env.step(env.unwrapped.action_index("-gvn"))
    assert "error" not in info
    env.close()
    with pytest.raises(ValueError, match="no per-call time limit"):
        StepTimeCap(optgym.make("optgym/PathPlanning2D-v0"), 1.0)
    with pytest.raises(ValueError, match="finite and > 0"):
        StepTimeCap(_passes(), float("nan"))


def test_a_named_observation_replaces_the_env_s_own() -> None:
    env = NamedObservation(_passes("InstCount"), "Autophase")
    obs, _ = env.reset(options={"benchmark": STRESS[1]})
    assert obs.shape == (56,) and env.observation_space.contains(obs)
    obs, *_ = env.step(3)
    assert obs.shape == (56,)
    env.close()
    with pytest.raises(ValueError, match="unknown observation space 'Nope'; allowed: Ir"):
        NamedObservation(_passes(), "Nope")
    with pytest.raises(ValueError, match="'Autophase'; allowed: StartAndGoals$"):
        NamedObservation(optgym.make("optgym/PathPlanning2D-v0"), "Autophase")
    with pytest.raises(ValueError, match="needs an OptGym env"):
        NamedObservation(gym.make("CartPole-v1"), "Autophase")


def test_a_named_observation_works_on_another_problem() -> None:
    env = NamedObservation(optgym.make("optgym/PathPlanning2DClosedLoop-v0"), "Position")
    obs, _ = env.reset(options={"benchmark": "benchmark://nav2d-v0/open"})
    start = env.unwrapped.nav.start
    assert obs.shape == (2,) and env.observation_space.contains(obs)
    assert np.allclose(obs * env.unwrapped.nav.size, start)
    obs, *_ = env.step(np.array([1.0, 0.0]))
    assert obs[0] > start[0] / env.unwrapped.nav.size and env.observation_space.contains(obs)
    env.close()
