"""Black-box plan search agents on the open-loop path planning env."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import pytest

import optgym  # noqa: F401
from optgym.agents import agent_settings, make_agent, resolve_agent
from optgym.agents.planning.search import (
    CmaEs,
    CrossEntropyMethod,
    Mppi,
    RandomShooting,
    Voo,
)
from optgym.budget import Budget
from optgym.wrappers import BudgetWrapper

OPEN = "benchmark://nav2d-v0/open"
AGENTS = [RandomShooting, CrossEntropyMethod, CmaEs, Mppi, Voo]


@pytest.fixture(scope="module")
def env() -> Iterator[gym.Env]:
    e = gym.make("optgym/PathPlanning2D-v0")
    yield e
    e.close()


@pytest.mark.parametrize("cls", AGENTS, ids=lambda c: c.__name__)
def test_valid_within_budget_and_deterministic(env: gym.Env, cls: type) -> None:
    first = cls().solve(env, OPEN, Budget(calls=300), seed=3)
    assert first.budget_used["calls"] <= 300
    assert first.state.env_id == "optgym/PathPlanning2D-v0"
    assert len(first.actions) == 1 and len(first.actions[0]) == 2 * env.unwrapped.nav.horizon
    assert all(-1.0 <= v <= 1.0 for v in first.actions[0])
    assert env.unwrapped.validate(first.state).ok
    second = cls().solve(env, OPEN, Budget(calls=300), seed=3)
    assert second.actions == first.actions
    assert second.reward == first.reward
    other = cls().solve(env, OPEN, Budget(calls=300), seed=4)
    assert other.actions != first.actions
    evals, best = zip(*first.state.extras["trace"], strict=True)  # best reward so far
    assert list(evals) == sorted(evals) and evals[-1] <= first.state.extras["evaluations"]
    assert list(best) == sorted(best) and best[-1] == first.reward


@pytest.mark.parametrize("cls", AGENTS, ids=lambda c: c.__name__)
def test_tiny_budget_and_budget_required(env: gym.Env, cls: type) -> None:
    result = cls().solve(env, OPEN, Budget(calls=1), seed=0)
    assert result.budget_used["calls"] == 1
    assert env.unwrapped.validate(result.state).ok
    result = cls().solve(env, OPEN, Budget(calls=7), seed=0)
    assert result.budget_used["calls"] <= 7
    with pytest.raises(ValueError, match="needs a budget"):
        cls().solve(env, OPEN, Budget(), seed=0)


@pytest.mark.parametrize("cls", [CrossEntropyMethod, CmaEs], ids=lambda c: c.__name__)
def test_reaches_goal_on_open_map(env: gym.Env, cls: type) -> None:
    result = cls().solve(env, OPEN, Budget(calls=2000), seed=0)
    assert result.budget_used["calls"] <= 2000
    assert result.reward > 0
    assert env.unwrapped.validate(result.state).ok


def test_names_and_bad_arguments() -> None:
    names = ["shooting", "cem", "cmaes", "mppi", "voo"]  # the record names them
    assert [resolve_agent(n).entry.agent_class() for n in names] == AGENTS
    with pytest.raises(ValueError):
        CrossEntropyMethod(elite_frac=0.0)
    with pytest.raises(ValueError):
        Mppi(temperature=0.0)
    with pytest.raises(ValueError):
        Voo(exploit_prob=1.5)


def test_settings_problems_and_the_runners_meter(env: gym.Env) -> None:
    agent = make_agent("cem:population=50,elite_frac=0.2")
    assert isinstance(agent, CrossEntropyMethod) and agent.population == 50
    assert agent.elite_frac == 0.2 and agent.init_std == 0.5
    settings = {s.name: s for s in agent_settings(CmaEs)}
    assert settings["popsize"].default is None and settings["popsize"].parse("none") is None
    assert all(s.help for s in settings.values())
    # what they fit is their record's: the open-loop env (of its batched evaluation) only
    for name in ("shooting", "cem", "cmaes", "mppi", "voo"):
        assert resolve_agent(name).problems() == ("optgym/PathPlanning2D-v0",)
    # the env charges the runner's meter: the evaluations and the final step
    wrapped = BudgetWrapper(env, Budget(calls=300))
    try:
        result = Mppi().solve(wrapped, OPEN, Budget(calls=300), seed=0)
        assert wrapped.meter.calls == result.budget_used["calls"] == 300
        assert wrapped.meter.steps == result.budget_used["steps"] == 1
    finally:
        wrapped.detach()
    # evaluate_batch takes no env steps: a steps budget alone does not bound the search
    with pytest.raises(ValueError, match="needs a budget that limits calls or seconds"):
        RandomShooting().solve(env, OPEN, Budget(steps=100), seed=0)
    result = RandomShooting().solve(env, OPEN, Budget(calls=50, steps=1), seed=0)
    assert result.budget_used["calls"] == 50 and result.budget_used["steps"] == 1
