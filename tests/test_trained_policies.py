"""The trained reference policies shipped in ``agents/weights/`` run as agents, within
their budget, and give states that replay."""

from __future__ import annotations

import numpy as np
import pytest

import optgym
from optgym.agents import make_agent, resolve_agent
from optgym.agents.sb3 import SHIPPED, _choose
from optgym.budget import Budget


@pytest.mark.parametrize(
    ("agent", "env_id", "config", "benchmark", "calls"),
    [
        ("ppo-gnn", "optgym/PassOrdering-v0", {}, "generator://csmith-v0/5", 45),
        (
            "maskable-ppo",
            "optgym/ScheduleSearch-v0",
            {"mode": "model"},
            "benchmark://halide-ops-v0/conv2d-relu-192",
            3,
        ),
        (
            "ppo-trained",
            "optgym/PathPlanning2DClosedLoop-v0",
            {},
            "benchmark://nav2d-v0/wall",
            300,
        ),
    ],
)
def test_a_shipped_policy_solves_within_its_budget_and_replays(
    agent: str, env_id: str, config: dict, benchmark: str, calls: int
) -> None:
    spec = resolve_agent(agent)
    folder = SHIPPED / spec.settings["path"]
    assert (folder / "model.zip").is_file() and (folder / "train.json").is_file()
    env = optgym.make(env_id, step_limit=False, **config)
    try:
        result = make_agent(agent).solve(env, benchmark, Budget(calls=calls), seed=1)
        assert 0 < result.budget_used["calls"] <= calls
        assert result.state.benchmark == benchmark and result.state.actions
        assert env.unwrapped.validate(result.state).ok
        assert np.isfinite(result.state.reward)
    finally:
        env.close()


def test_skipping_unhelpful_passes_helps_the_deterministic_policy() -> None:
    env = optgym.make("optgym/PassOrdering-v0", step_limit=False)
    rewards = {}
    try:
        for skip in (False, True):
            agent = make_agent(f"ppo-gnn:sample=false,skip_unhelpful={str(skip).lower()}")
            result = agent.solve(env, "generator://csmith-v0/5", Budget(calls=45), seed=0)
            assert result.budget_used["calls"] == 45
            rewards[skip] = result.state.reward
    finally:
        env.close()
    # without skipping, the argmax repeats a pass that gains nothing to the episode's end
    assert rewards[True] > rewards[False]


def test_choose_skips_tried_actions_and_samples_from_the_rest() -> None:
    probs = np.array([0.5, 0.3, 0.2])
    rng = np.random.default_rng(0)
    assert _choose(probs, set(), True, rng) == 0
    assert _choose(probs, {0}, True, rng) == 1
    assert _choose(probs, {0, 1, 2}, True, rng) == 0  # all tried: the policy's own choice
    drawn = {int(_choose(probs, {1}, False, rng)) for _ in range(50)}
    assert drawn == {0, 2}


def test_a_policy_trained_on_another_env_is_refused() -> None:
    env = optgym.make("optgym/PathPlanning2DClosedLoop-v0", step_limit=False)
    try:
        with pytest.raises(ValueError, match="trained on optgym/PassOrdering-v0, not"):
            make_agent("ppo-gnn").solve(env, "benchmark://nav2d-v0/wall", Budget(calls=5))
    finally:
        env.close()
