"""PPO (stable-baselines3) on the closed-loop path-planning env."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from stable_baselines3 import PPO

import optgym  # noqa: F401
from optgym.agents import Agent, LearnedAgent, agent_settings, make_agent, resolve_agent
from optgym.agents.planning.rl import PpoPlanner, _MapCycle, policy_episode
from optgym.budget import Budget
from optgym.cli import main as cli_main
from optgym.envs.planning import CLOSED_LOOP_ID, OPEN_LOOP_ID
from optgym.state import EpisodeState
from optgym.train import hyperparams_path, read_hyperparams

OPEN = "benchmark://nav2d-v0/open"
HORIZON = 100  # moves per episode on the bundled maps: kept back for the final episode
# With the default hyperparameters (4 envs x 256 steps per update) the deterministic policy
# of each of seeds 0-19 reaches the goal after every update from 10240 steps on.
TRAIN_STEPS = 16384


@pytest.fixture(scope="module")
def env() -> Iterator[gym.Env]:
    e = gym.make(CLOSED_LOOP_ID)
    yield e
    e.close()


def reaches_goal(env: gym.Env, state: EpisodeState) -> bool:
    """Replay ``state`` step by step: whether its last move enters the goal."""
    base = env.unwrapped
    base.reset(seed=state.seed, options={"benchmark": state.benchmark})
    terminated = False
    for action in state.actions:
        _, _, terminated, _, info = base.step(action)
    return terminated and info["reached"]


@pytest.mark.parametrize("seed", [0, 1])
def test_ppo_reaches_the_goal_on_the_open_map(env: gym.Env, seed: int) -> None:
    budget = Budget(steps=TRAIN_STEPS + HORIZON)
    result = PpoPlanner().solve(env, OPEN, budget, seed=seed)
    extras = result.state.extras
    assert extras["success"] and extras["train_steps"] == TRAIN_STEPS
    assert extras["train_episodes"] > 0 and 0 < extras["train_success_rate"] <= 1
    # payoff 1 plus the progress from (1, 1) to within 0.5 of (9, 9): (11.31 - 0.5) / 10
    assert result.reward > 2.08
    assert len(result.actions) < HORIZON
    assert result.budget_used["steps"] == TRAIN_STEPS + len(result.actions)
    assert result.state.env_id == CLOSED_LOOP_ID and result.state.seed == seed
    assert env.unwrapped.validate(result.state).ok
    assert reaches_goal(env, result.state)


def test_same_seed_same_episode_and_another_seed_differs(env: gym.Env) -> None:
    budget = Budget(steps=2048 + HORIZON)
    first = PpoPlanner().solve(env, OPEN, budget, seed=3)
    second = PpoPlanner().solve(env, OPEN, budget, seed=3)
    other = PpoPlanner().solve(env, OPEN, budget, seed=4)
    assert first.state == second.state
    assert other.actions != first.actions
    assert first.budget_used["calls"] == first.budget_used["steps"] <= budget.steps


def test_budgets_in_steps_calls_and_seconds(env: gym.Env) -> None:
    tiny = PpoPlanner().solve(env, OPEN, Budget(steps=50), seed=0)
    assert tiny.state.extras["train_steps"] == 0 and tiny.state.extras["train_episodes"] == 0
    assert len(tiny.actions) == 50 and tiny.budget_used["steps"] == 50
    assert not tiny.state.extras["success"]
    assert env.unwrapped.validate(tiny.state).ok

    calls = PpoPlanner().solve(env, OPEN, Budget(calls=1500), seed=0)
    assert calls.state.extras["train_steps"] == 1400  # a multiple of the 4 envs
    assert calls.budget_used["calls"] <= 1500

    timed = PpoPlanner().solve(env, OPEN, Budget(seconds=2.0), seed=0)
    trained = timed.state.extras["train_steps"]
    assert trained > 0 and timed.budget_used["steps"] == trained + len(timed.actions)
    assert timed.budget_used["seconds"] < 10.0  # 1.8 s of training plus one update
    assert env.unwrapped.validate(timed.state).ok

    with pytest.raises(ValueError, match="needs a budget"):
        PpoPlanner().solve(env, OPEN, Budget(), seed=0)
    with pytest.raises(ValueError, match="needs a budget"):
        PpoPlanner().train(env, [OPEN], Budget())


def test_the_open_loop_env_is_refused() -> None:
    open_loop = gym.make(OPEN_LOOP_ID)
    with pytest.raises(ValueError, match="needs 'optgym/PathPlanning2DClosedLoop-v0'"):
        PpoPlanner().solve(open_loop, OPEN, Budget(steps=1000), seed=0)
    open_loop.close()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_envs": 0}, "n_envs"),
        ({"n_envs": 2.5}, "n_envs"),
        ({"n_steps": 0}, "n_steps"),
        ({"batch_size": 1}, "batch_size"),
        ({"n_envs": 2, "n_steps": 16, "batch_size": 64}, "batch_size"),
        ({"n_epochs": 0}, "n_epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"gamma": 1.5}, "gamma"),
        ({"gae_lambda": -0.1}, "gae_lambda"),
        ({"clip_range": 0.0}, "clip_range"),
        ({"ent_coef": -0.01}, "ent_coef"),
        ({"vf_coef": 0.0}, "vf_coef"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
        ({"net_arch": ()}, "net_arch"),
        ({"net_arch": (64, 0)}, "net_arch"),
        ({"torch_threads": 0}, "torch_threads"),
        ({"device": "abacus"}, "device"),
    ],
)
def test_bad_hyperparameters_name_the_parameter(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be"):
        PpoPlanner(**kwargs)


def test_registered_as_ppo_with_the_hyperparameter_files_settings() -> None:
    agent = make_agent("ppo", n_envs=2)
    assert isinstance(agent, PpoPlanner) and isinstance(agent, Agent)
    assert isinstance(agent, LearnedAgent) and agent.n_envs == 2
    assert resolve_agent("ppo").problems() == (CLOSED_LOOP_ID,)  # its record says so
    assert not hasattr(PpoPlanner, "problems") and not hasattr(PpoPlanner, "name")
    # the settings' defaults are the closed-loop env's hyperparameter file's, read there
    data = read_hyperparams(hyperparams_path(CLOSED_LOOP_ID))
    default = PpoPlanner()
    assert default.n_envs == data["n_envs"]
    assert default.net_arch == tuple(data["ppo"]["policy_kwargs"]["net_arch"])
    for key, value in data["ppo"].items():
        if key not in ("policy", "n_timesteps", "policy_kwargs"):
            assert getattr(default, key) == value, key
    assert {s.name for s in agent_settings(PpoPlanner)} >= set(data["ppo"]) - {
        "policy",
        "n_timesteps",
        "policy_kwargs",
    }


def test_optgym_train_trains_saves_and_benches_it(
    env: gym.Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ppo.zip"
    status = cli_main([
        "train", "ppo", "--task", "path-planning-closed-loop", "--dataset",
        "generator://nav2d-random-v0", "--episodes", "2", "--budget", "steps=1024",
        "--out", str(path), "--no-progress",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    assert "trained ppo on 2 train benchmarks of path-planning-closed-loop" in out
    assert "  steps: 1024" in out
    assert "optgym bench path-planning-closed-loop --agent ppo:path=" in out
    # the saved policy rolls out as the agent: no training, one episode
    loaded = make_agent("ppo", path=path)
    state, _ = policy_episode(PPO.load(path, device="cpu"), env, OPEN, 0)
    result = loaded.solve(env, OPEN, Budget(steps=HORIZON), seed=0)
    assert result.state.actions == state.actions and result.state.extras["train_steps"] == 0


def test_trained_across_maps_saved_and_loaded_without_training(
    env: gym.Env, tmp_path: Path
) -> None:
    from optgym.datasets.planning import Nav2dRandomDataset
    from optgym.wrappers import BudgetWrapper

    maps = Nav2dRandomDataset().take("train", 2)
    # each training env (a fork) takes the next map at every episode, from its own offset
    env.reset(options={"benchmark": OPEN})
    cycle = _MapCycle(env.unwrapped.fork(), maps, 1)
    assert [cycle.reset()[1]["benchmark"] for _ in range(3)] == [maps[1], maps[0], maps[1]]
    agent = PpoPlanner(n_steps=128)
    metered_env = BudgetWrapper(env, Budget(steps=2000))
    try:
        figures = agent.train(metered_env, maps, Budget(steps=2000), seed=0)
        # every training move was charged to the caller's meter (2000 is a multiple of 4)
        assert figures["steps"] == metered_env.meter.steps == metered_env.meter.calls == 2000
    finally:
        metered_env.detach()
    # episodes of at most 100 moves; the 4 envs' last ones may be unfinished
    assert figures["benchmarks"] == 2 and figures["episodes"] >= 2000 // HORIZON - 4
    assert figures["seconds"] > 0 and 0 <= figures["success_rate"] <= 1
    path = tmp_path / "nav2d-ppo.zip"
    agent.save(path)

    loaded = make_agent("ppo", path=path)
    assert isinstance(loaded, PpoPlanner) and loaded.model is not None
    result = loaded.solve(env, OPEN, Budget(steps=HORIZON), seed=0)
    extras = result.state.extras
    assert extras["train_steps"] == 0 and extras["train_episodes"] == 0
    assert result.budget_used["steps"] == result.budget_used["calls"] == len(result.actions)
    assert env.unwrapped.validate(result.state).ok
    # the saved policy is the trained one: both roll out the same episode
    assert policy_episode(agent.model, env, OPEN, 0)[0] == result.state
    assert loaded.solve(env, OPEN, Budget(steps=HORIZON), seed=0).state == result.state

    tuned = PpoPlanner(path=path, finetune=True).solve(env, OPEN, Budget(steps=612), seed=0)
    assert tuned.state.extras["train_steps"] == 512  # 612 - the horizon, a multiple of 4
    assert tuned.budget_used["steps"] == 512 + len(tuned.actions)
    # fine-tuning trains a copy: the loaded agent's own policy is unchanged
    assert loaded.solve(env, OPEN, Budget(steps=HORIZON), seed=0).state == result.state


def test_missing_model_file_and_nothing_to_save(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model file not found"):
        PpoPlanner(path=tmp_path / "absent.zip")
    with pytest.raises(RuntimeError, match="no model to save"):
        PpoPlanner().save(tmp_path / "m.zip")
    with pytest.raises(ValueError, match="needs 'optgym/PathPlanning2DClosedLoop-v0'"):
        PpoPlanner().train(gym.make(OPEN_LOOP_ID), [OPEN], Budget(steps=100))


def test_optgym_train_and_bench_the_closed_loop_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from optgym.cli import main as cli

    model = tmp_path / "ppo.zip"
    argv = ["train", "ppo:n_steps=128", "--task", "path-planning-closed-loop", "--episodes",
            "2", "--budget", "steps=1024", "--out", str(model), "--no-progress"]  # fmt: skip
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "trained ppo:n_steps=128 on 2 train benchmarks" in out and "steps: 1024" in out
    assert model.is_file()
    results = tmp_path / "r.jsonl"
    plot = tmp_path / "r.png"
    argv = ["bench", "path-planning-closed-loop", "--agent", f"ppo:path={model}",
            "--benchmark", OPEN, "--seeds", "0", "--budget", f"calls={HORIZON}",
            "--results", str(results), "--plot", str(plot), "--no-progress"]  # fmt: skip
    assert cli(argv) == 0
    (row,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert row["error"] is None and row["state"]["extras"]["train_steps"] == 0
    assert row["budget_used"]["calls"] == len(row["state"]["actions"]) <= HORIZON


def test_around_walls_trains_on_the_way_and_a_saved_policy_observes_it(
    env: gym.Env, tmp_path: Path
) -> None:
    wall = "benchmark://nav2d-v0/wall"
    agent = PpoPlanner(n_steps=64, around_walls=True)
    result = agent.solve(env, wall, Budget(steps=512 + HORIZON), seed=0)
    assert result.state.extras["train_steps"] == 512
    assert agent.model is None  # solve trains a policy of its own, kept in the result only
    assert env.unwrapped.validate(result.state).ok  # scored by the task's own reward
    figures = agent.train(env, [wall], Budget(steps=256), seed=0)
    assert figures["steps"] == 256
    assert agent.model.observation_space.shape == (22,)  # WaySensors: sensors + the way
    path = tmp_path / "way.zip"
    agent.save(path)
    loaded = make_agent("ppo", path=path)  # no setting needed: the policy's own observation
    state, _ = policy_episode(loaded.model, env, wall, 0)
    assert loaded.solve(env, wall, Budget(steps=HORIZON), seed=0).state == state
