"""Data-selection agents on DataSelection-v0 (digits): budgets, replay, and that influence
finds the flipped labels."""

from __future__ import annotations

import gymnasium as gym
import pytest

import optgym  # noqa: F401  registers the envs
from optgym.agents import make_agent
from optgym.agents.dataselect.selection import (
    InfluenceSelection,
    SelfInfluenceSelection,
    TfidfInfluenceSelection,
)
from optgym.budget import Budget

TASK = "generator://digits-noisy-v0/0"


@pytest.fixture(scope="module")
def env() -> gym.Env:
    return gym.make("optgym/DataSelection-v0", budget=40)


@pytest.fixture(scope="module")
def results(env: gym.Env) -> dict[str, object]:
    names = (
        "random-select", "tfidf", "grad-dot", "kfac", "ekfac", "tfidf-ekfac", "self-influence",
        "oracle",
    )  # fmt: skip
    return {n: make_agent(n).solve(env, TASK, Budget(steps=10), seed=0) for n in names}


def test_every_agent_spends_the_env_budget_and_replays(env: gym.Env, results: dict) -> None:
    for name, result in results.items():
        assert result.budget_used["steps"] == 4, name  # 40 examples, 10 a step
        assert result.budget_used["calls"] == 4, name  # one retraining a step, counted by the env
        assert 0.0 < result.state.extras["test_accuracy"] <= 1.0, name
        check = env.unwrapped.validate(result.state)
        assert check.ok, (name, check.error)


def test_influence_removes_flipped_labels(env: gym.Env, results: dict) -> None:
    corrupted = env.unwrapped.corrupted
    found = {}
    for name in ("random-select", "ekfac", "tfidf-ekfac", "self-influence", "oracle"):
        env.unwrapped.apply(results[name].state)
        found[name] = int((~env.unwrapped.keep & corrupted).sum())
    assert found["oracle"] == 40
    assert found["random-select"] <= 10  # about 4 expected at a 10% base rate
    assert found["ekfac"] >= 35 and found["self-influence"] >= 35, found  # measured: 40, 40
    assert found["tfidf-ekfac"] > found["random-select"] + 5, found


def test_ekfac_beats_random_on_test_accuracy(results: dict) -> None:
    acc = {n: r.state.extras["test_accuracy"] for n, r in results.items()}
    assert acc["ekfac"] > acc["random-select"] + 0.01, acc
    assert acc["oracle"] >= acc["random-select"], acc


def test_agents_stop_cleanly_at_a_retraining_budget(env: gym.Env) -> None:
    result = make_agent("random-select").solve(env, TASK, Budget(calls=2), seed=0)
    assert result.budget_used["calls"] == 2 and len(result.state.actions) == 2
    assert "val_loss" in result.state.extras and "test_accuracy" not in result.state.extras
    assert env.unwrapped.validate(result.state).ok


def test_presets_name_the_influence_methods() -> None:
    for name in ("grad-dot", "kfac", "ekfac"):
        agent = make_agent(name)
        assert isinstance(agent, InfluenceSelection) and agent.method == name
    assert make_agent("ekfac:damping=0.5").damping == 0.5
    with pytest.raises(ValueError, match="method"):
        make_agent("ekfac:method=trak")


def test_bad_arguments_and_wrong_env() -> None:
    with pytest.raises(ValueError, match="allowed: ekfac, kfac, grad-dot"):
        InfluenceSelection(method="trak")
    with pytest.raises(ValueError, match="damping"):
        SelfInfluenceSelection(damping=0.0)
    with pytest.raises(ValueError, match="candidates"):
        TfidfInfluenceSelection(candidates=0.0)
    wrong_env = "works on data-selection, not on optgym/PathPlanning2D-v0"
    with pytest.raises(ValueError, match=wrong_env):
        make_agent("ekfac").solve(
            gym.make("optgym/PathPlanning2D-v0"), "benchmark://nav2d-v0/open", Budget(steps=1)
        )
    with pytest.raises(ValueError, match="needs a budget"):
        make_agent("oracle").solve(gym.make("optgym/DataSelection-v0"), TASK, Budget())
