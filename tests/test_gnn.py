"""Tests of the graph neural networks of ``optgym.agents.gnn`` on real Programl and LNS
observations, and of their use by stable-baselines3's PPO."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import TimeLimit
from stable_baselines3 import PPO

import optgym  # noqa: F401  (registers the envs)
from optgym.agents.lns.gnn import BipartiteExtractor, BipartiteScorePolicy
from optgym.agents.passes.gnn import ProgramlExtractor
from optgym.wrappers import FixedScores, PaddedGraph

SMALL_PROGRAM = "generator://llvm-stress-v0/2000"
OTHER_PROGRAM = "generator://llvm-stress-v0/2001"
AUCTION = "generator://auction-s-v0/2000"
AUCTION_VARIABLES = 4000
SIZE = 4096


def as_batch(*observations: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Padded observations stacked as SB3 gives them to a features extractor (floats)."""
    return {
        k: torch.as_tensor(np.stack([o[k] for o in observations])).float() for k in observations[0]
    }


def repad(obs: dict[str, np.ndarray], max_nodes: int, max_edges: int) -> dict[str, np.ndarray]:
    """The same graph padded to other sizes."""
    n, e = int(obs["num_nodes"][0]), int(obs["num_edges"][0])
    out = dict(obs)
    out["nodes"] = np.zeros((max_nodes, obs["nodes"].shape[1]), np.float32)
    out["nodes"][:n] = obs["nodes"][:n]
    out["edge_index"] = np.zeros((2, max_edges), np.int64)
    out["edge_index"][:, :e] = obs["edge_index"][:, :e]
    out["edge_attr"] = np.zeros((max_edges, obs["edge_attr"].shape[1]), np.float32)
    out["edge_attr"][:e] = obs["edge_attr"][:e]
    return out


def forward_seconds(extractor: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """Best of three inference forwards, in seconds (after one warm-up)."""
    with torch.no_grad():
        extractor(batch)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            extractor(batch)
            times.append(time.perf_counter() - start)
    return min(times)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread while PPO runs: its forwards of one or a few small graphs gain
    nothing from more, and stall when the cores are shared with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# --- Programl ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def programl() -> Iterator[tuple[gym.Env, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """The padded Programl env and the observations of two small programs."""
    env = PaddedGraph(
        gym.make("optgym/PassOrdering-v0", observation_space="Programl", benchmark=SMALL_PROGRAM),
        4096,
        8192,
        truncate=True,
    )
    try:
        first, _ = env.reset(options={"benchmark": SMALL_PROGRAM})
        second, _ = env.reset(options={"benchmark": OTHER_PROGRAM})
        yield env, first, second
    finally:
        env.close()


def test_programl_extractor_features(programl: Any) -> None:
    env, first, second = programl
    assert first["num_nodes"][0] != second["num_nodes"][0]
    torch.manual_seed(0)
    extractor = ProgramlExtractor(env.observation_space).eval()
    with torch.no_grad():
        both = extractor(as_batch(first, second))
        alone = extractor(as_batch(first))
        small = extractor(as_batch(repad(first, 512, 1024)))
        large = extractor(as_batch(repad(first, 8192, 16384)))
    assert both.shape == (2, extractor.features_dim) == (2, 128)
    assert torch.isfinite(both).all()
    assert not torch.allclose(both[0], both[1], atol=1e-4)
    for features in (alone, small, large):
        torch.testing.assert_close(features[0], both[0], atol=1e-5, rtol=0)


def test_programl_extractor_needs_a_padded_graph() -> None:
    with pytest.raises(ValueError, match="PaddedGraph"):
        ProgramlExtractor(gym.spaces.Dict({"x": gym.spaces.Box(0, 1, (3,))}))


def test_ppo_learns_with_programl_extractor(programl: Any, one_thread: None) -> None:
    env, first, _ = programl
    model = PPO(
        "MultiInputPolicy",
        TimeLimit(env, 8),
        n_steps=32,
        batch_size=16,
        policy_kwargs={"features_extractor_class": ProgramlExtractor},
        seed=0,
        device="cpu",
    )
    model.learn(64)
    assert model.num_timesteps == 64
    action, _ = model.predict(first, deterministic=True)
    assert env.action_space.contains(int(action))


def test_programl_forward_time(programl: Any) -> None:
    env, first, second = programl
    extractor = ProgramlExtractor(env.observation_space).eval()
    batch = as_batch(*[first, second] * 32)
    nodes = int(batch["num_nodes"].sum())
    seconds = forward_seconds(extractor, batch)
    print(f"\nProgramlExtractor: batch of 64 ({nodes} nodes): {seconds * 1e3:.1f} ms forward")


# --- LNS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lns() -> Iterator[tuple[gym.Env, dict[str, np.ndarray]]]:
    """The LNS env as PPO sees it, reset on an auction instance (4000 variables)."""
    inner = gym.make(
        "optgym/ILPNeighborhood-v0", benchmark=AUCTION, subproblem_time=0.1, initial_time=0.3
    )
    env = FixedScores(PaddedGraph(inner, 8192, 32768), size=SIZE)
    try:
        obs, _ = env.reset(options={"benchmark": AUCTION})
        yield env, obs
    finally:
        env.close()


def small_instance(space: gym.spaces.Dict) -> dict[str, np.ndarray]:
    """A hand-made padded observation: 5 variables then 3 constraints. Variables 0 and 1
    have the same features and the same only neighbour (constraint 5, coefficient 1)."""
    obs = {k: np.zeros(s.shape, s.dtype) for k, s in space.spaces.items()}
    obs["nodes"][:8] = [
        [0, 0.5, 1, 0.5, 1, 1, 0, 0.5],
        [0, 0.5, 1, 0.5, 1, 1, 0, 0.5],
        [0, -1.0, 1, 1.0, 0, 0, 1, 0.2],
        [0, 0.2, 0, 0.5, 3, 2, 2, 2.5],
        [0, 1.0, 1, 0.5, 0, 1, 1, 0.0],
        [1, 1.0, 0, 1.0, 0, 0, 0, 0],
        [1, 0.5, -1, 1.0, 0, 0, 0, 0],
        [1, 2.0, 0, 0.5, 0, 0, 0, 0],
    ]
    links = [(0, 5), (1, 5), (2, 6), (3, 6), (2, 7), (4, 7)]
    obs["edge_index"][:, : len(links)] = np.array(links).T
    obs["edge_attr"][: len(links), 0] = [1.0, 1.0, 0.5, -1.0, 1.0, 0.25]
    obs["num_nodes"][0], obs["num_edges"][0] = 8, len(links)
    obs["k_fraction"][0], obs["budget_left"][0], obs["objective"][0] = 0.2, 10.0, 3.0
    return obs


def mean_scores(policy: BipartiteScorePolicy, obs: dict[str, np.ndarray]) -> torch.Tensor:
    """The policy's Gaussian means for a (batched) observation."""
    tensors, _ = policy.obs_to_tensor(obs)
    with torch.no_grad():
        return policy.get_distribution(tensors).mode()


def test_bipartite_score_policy(lns: Any) -> None:
    env, obs = lns
    assert int((obs["nodes"][: obs["num_nodes"][0], 0] < 0.5).sum()) == AUCTION_VARIABLES
    torch.manual_seed(0)
    policy = BipartiteScorePolicy(env.observation_space, env.action_space, lambda _: 3e-4)
    policy.set_training_mode(False)
    assert isinstance(policy.features_extractor, BipartiteExtractor)

    action, _ = policy.predict(obs, deterministic=True)
    assert action.shape == (SIZE,) and env.action_space.contains(action)
    mean = mean_scores(policy, obs)
    assert mean.shape == (1, SIZE)
    assert (mean[0, AUCTION_VARIABLES:] == 0).all()
    assert mean[0, :AUCTION_VARIABLES].abs().min() > 0
    sampled, _ = policy.predict(obs, deterministic=False)
    assert (sampled[AUCTION_VARIABLES:] == 0).all()

    # the same weights score an instance of another size, one MLP per variable
    small = small_instance(env.observation_space)
    small_mean = mean_scores(policy, small)
    assert (small_mean[0, 5:] == 0).all()
    assert small_mean[0, 0] == small_mean[0, 1]
    assert small_mean[0, 2] != small_mean[0, 0]
    batched = mean_scores(policy, {k: np.stack([obs[k], small[k]]) for k in obs})
    torch.testing.assert_close(batched[0], mean[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched[1], small_mean[0], atol=1e-5, rtol=0)

    # padded entries count neither in the log-probability nor in the entropy
    tensors, _ = policy.obs_to_tensor(small)
    with torch.no_grad():
        distribution = policy.get_distribution(tensors)
        actions = distribution.sample()
        assert (actions[0, 5:] == 0).all()
        moved = actions.clone()
        moved[0, 5:] = 0.7
        torch.testing.assert_close(distribution.log_prob(moved), distribution.log_prob(actions))
        std = policy.log_std.exp()
        entropy = 5 * (0.5 + 0.5 * np.log(2 * np.pi) + torch.log(std))
        torch.testing.assert_close(distribution.entropy(), entropy)
        assert policy.predict_values(tensors).shape == (1, 1)


def test_bipartite_score_policy_rejects_other_actions(lns: Any) -> None:
    env, _ = lns
    with pytest.raises(ValueError, match="1-d Box"):
        BipartiteScorePolicy(env.observation_space, gym.spaces.Discrete(3), lambda _: 3e-4)


def test_ppo_learns_with_bipartite_score_policy(lns: Any, one_thread: None, tmp_path: Path) -> None:
    env, obs = lns
    model = PPO(
        BipartiteScorePolicy,
        env,
        n_steps=8,
        batch_size=8,
        n_epochs=1,
        policy_kwargs={
            "features_extractor_class": BipartiteExtractor,
            "features_extractor_kwargs": {"hidden": 32, "layers": 2},
        },
        seed=0,
        device="cpu",
    )
    before = model.policy.score_net[-1].weight.detach().clone()
    model.learn(8)
    assert model.num_timesteps == 8
    assert not torch.equal(before, model.policy.score_net[-1].weight)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (SIZE,) and (action[AUCTION_VARIABLES:] == 0).all()
    model.save(tmp_path / "lns")
    loaded = PPO.load(tmp_path / "lns", device="cpu")
    assert isinstance(loaded.policy, BipartiteScorePolicy)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], action, atol=1e-6)


def random_bipartite(space: gym.spaces.Dict, seed: int, n: int = 200, m: int = 100) -> dict:
    """A random padded LNS-like observation with ``n`` variables, ``m`` constraints and
    four nonzeros per constraint."""
    rng = np.random.default_rng(seed)
    obs = {k: np.zeros(s.shape, s.dtype) for k, s in space.spaces.items()}
    obs["nodes"][: n + m, 1:] = rng.random((n + m, 7))
    obs["nodes"][n : n + m, 0] = 1
    cons = np.repeat(np.arange(m), 4)
    obs["edge_index"][:, : 4 * m] = [rng.integers(0, n, 4 * m), n + cons]
    obs["edge_attr"][: 4 * m, 0] = rng.uniform(-1, 1, 4 * m)
    obs["num_nodes"][0], obs["num_edges"][0] = n + m, 4 * m
    return obs


def test_bipartite_forward_time(lns: Any) -> None:
    env, _ = lns
    extractor = BipartiteExtractor(env.observation_space).eval()
    batch = as_batch(*[random_bipartite(env.observation_space, s) for s in range(64)])
    seconds = forward_seconds(extractor, batch)
    print(f"\nBipartiteExtractor: batch of 64 (300 nodes, 400 edges each): {seconds * 1e3:.1f} ms")
