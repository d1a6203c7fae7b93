"""LA-MCTS and LaP3 on the open-loop path planning env: budgets, replayable states, trees."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import optgym  # noqa: F401  registers the envs
from optgym.agents import agent_settings, make_agent, resolve_agent
from optgym.agents.planning.space_partition import (
    LaMcts,
    LaP3,
    Node,
    _Data,
    _PartitionSearch,
    two_means,
)
from optgym.budget import Budget

OPEN = "benchmark://nav2d-v0/open"
AGENTS = [LaMcts, LaP3]


@pytest.fixture(scope="module")
def env() -> gym.Env:
    return gym.make("optgym/PathPlanning2D-v0")


@pytest.mark.parametrize("cls", AGENTS)
def test_solves_open_within_budget(env: gym.Env, cls: type[_PartitionSearch]) -> None:
    agent = cls()
    result = agent.solve(env, OPEN, Budget(calls=400), seed=0)
    assert result.budget_used["calls"] <= 400
    assert env.unwrapped.evaluations == 1  # the final step after a reset
    check = env.unwrapped.validate(result.state)
    assert check.ok
    assert result.state.benchmark == OPEN
    assert agent.last_leaves > 1
    assert result.reward > 0  # the open map's goal is reached


@pytest.mark.parametrize("cls", AGENTS)
def test_deterministic_per_seed(env: gym.Env, cls: type[_PartitionSearch]) -> None:
    a = cls().solve(env, OPEN, Budget(calls=250), seed=3)
    b = cls().solve(env, OPEN, Budget(calls=250), seed=3)
    assert a.actions == b.actions
    assert a.reward == b.reward


@pytest.mark.parametrize("cls", AGENTS)
def test_needs_a_budget(env: gym.Env, cls: type[_PartitionSearch]) -> None:
    with pytest.raises(ValueError, match="needs a budget"):
        cls().solve(env, OPEN, Budget(), seed=0)


@pytest.mark.parametrize("cls", AGENTS)
@pytest.mark.parametrize("calls", [1, 2, 37, 151])
def test_small_and_odd_budgets(env: gym.Env, cls: type[_PartitionSearch], calls: int) -> None:
    result = cls(batch=20).solve(env, OPEN, Budget(calls=calls), seed=1)
    assert result.budget_used["calls"] == calls
    assert env.unwrapped.validate(result.state).ok


def test_steps_budget_is_respected(env: gym.Env) -> None:
    # evaluate_batch takes no env steps: steps alone do not bound the search
    with pytest.raises(ValueError, match="needs a budget that limits calls or seconds"):
        LaP3().solve(env, OPEN, Budget(steps=130), seed=0)
    result = LaP3().solve(env, OPEN, Budget(calls=130, steps=1), seed=0)
    assert result.budget_used["steps"] == 1 and result.budget_used["calls"] == 130


@pytest.mark.parametrize(
    ("agent", "settings", "match"),
    [
        (LaMcts, {"svm_kernel": "cubic"}, "svm_kernel"),
        (LaP3, {"leaf_size": 1}, "leaf_size"),
        (LaMcts, {"batch": 0}, "batch"),
        (LaP3, {"value_weight": -1.0}, "value_weight"),
    ],
)
def test_names_and_bad_arguments(agent: type, settings: dict, match: str) -> None:
    assert resolve_agent("la-mcts").entry.agent_class() is LaMcts  # the record names them
    assert resolve_agent("lap3").entry.agent_class() is LaP3
    with pytest.raises(ValueError, match=match):
        agent(**settings)


def test_two_means_separates_two_blobs() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (30, 3)), rng.normal(5, 0.1, (20, 3))])
    label = two_means(x, rng)
    assert len(set(label[:30])) == 1 and len(set(label[30:])) == 1
    assert label[0] != label[-1]
    assert (two_means(np.ones((5, 2)), rng) == 0).all()  # identical rows: one cluster


@pytest.mark.parametrize("cls", AGENTS)
def test_trace_is_the_best_reward_so_far(env: gym.Env, cls: type[_PartitionSearch]) -> None:
    result = cls().solve(env, OPEN, Budget(calls=300), seed=2)
    trace, extras = result.state.extras["trace"], result.state.extras
    assert extras["evaluations"] == 299  # one call is the final step
    evals, best = zip(*trace, strict=True)
    assert list(evals) == sorted(evals) and evals[-1] <= 299
    assert list(best) == sorted(best) and len(set(best)) == len(best)
    assert best[-1] == result.reward


def test_lap3_escapes_the_bug_trap_where_cem_does_not(env: gym.Env) -> None:
    from optgym.agents.planning.search import CrossEntropyMethod

    trap = "benchmark://nav2d-v0/bug-trap"
    assert LaP3().solve(env, trap, Budget(calls=2000), seed=0).reward > 0
    assert CrossEntropyMethod().solve(env, trap, Budget(calls=2000), seed=0).reward < 0


def test_tree_splits_good_from_bad(env: gym.Env) -> None:
    agent = LaMcts(leaf_size=10)
    base = env.unwrapped
    base.reset(options={"benchmark": OPEN})
    rng = np.random.default_rng(0)
    data = _Data(rng, lambda plans: (base.rollout_batch(plans).rewards, plans))  # not called
    plans = rng.uniform(-1, 1, (80, 2 * base.nav.horizon))
    roll = base.rollout_batch(plans)
    data.plans.extend(plans)
    data.feats.extend(plans)
    data.values.extend(roll.rewards.tolist())
    root, _, _ = agent._build(data, rng)
    assert agent.last_leaves > 1
    good, bad = root.children
    assert isinstance(good, Node) and good.value >= bad.value
    assert len(good.idx) + len(bad.idx) == 80
    path = agent._select(root, np.asarray(data.values))
    assert path[-1].is_leaf and path[0] is root
    # the training points of the selected leaf lie in its region by the SVM path
    depth = agent._depth_in((root, *_scaling(data)), path, plans[path[-1].idx])
    assert (depth == len(path) - 1).all()
    scaled = (root, *_scaling(data))
    assert (agent._depth_in(scaled, [root, bad], plans[bad.idx]) == 1).all()
    assert (agent._depth_in(scaled, [root, bad], plans[good.idx]) == 0).all()


def test_lap3_features_are_reached_states(env: gym.Env) -> None:
    agent = LaP3(waypoints=3)
    base = env.unwrapped
    base.reset(options={"benchmark": OPEN})
    plans = np.zeros((2, 2 * base.nav.horizon))
    plans[1, 0::2] = 1.0  # move right
    roll = base.rollout_batch(plans)
    feats = agent._features(base, plans, roll.positions)
    assert feats.shape == (2, 6)
    start = np.array(base.nav.start) / base.nav.size
    np.testing.assert_allclose(feats[0], np.tile(start, 3))
    np.testing.assert_allclose(feats[1, -2:], roll.positions[1, -1] / base.nav.size)


def _scaling(data: object) -> tuple[np.ndarray, np.ndarray]:
    feats = np.array(data.feats)  # type: ignore[attr-defined]
    return feats.mean(axis=0), feats.std(axis=0) + 1e-9


def test_settings_are_typed_fields_with_each_class_defaults() -> None:
    lamcts = {s.name: s for s in agent_settings(LaMcts)}
    lap3 = {s.name: s for s in agent_settings(LaP3)}
    shared = ["init_samples", "batch", "leaf_size", "cp", "svm_kernel", "sigma", "value_weight"]
    assert list(lamcts) == [*shared, "tries"]
    assert list(lap3) == [*shared, "waypoints", "plan_space", "anchors"]
    assert (lap3["plan_space"].default, lap3["anchors"].default) == ("moves", 6)
    assert (lamcts["cp"].default, lap3["cp"].default) == (0.1, 3.0)
    assert (lamcts["sigma"].default, lap3["sigma"].default) == (0.2, 0.5)
    assert (lamcts["value_weight"].default, lap3["value_weight"].default) == (None, 1.0)
    assert all(s.help for s in [*lamcts.values(), *lap3.values()])
    agent = make_agent("lap3:cp=1.5,svm_kernel=linear,value_weight=none")
    assert isinstance(agent, LaP3) and agent.cp == 1.5 and agent.svm_kernel == "linear"
    assert agent.value_weight is None and agent.waypoints == 8
    with pytest.raises(ValueError, match="svm_kernel"):
        make_agent("la-mcts:svm_kernel=cubic")
    for name in ("la-mcts", "lap3"):  # their record fits them to the open-loop env only
        assert resolve_agent(name).problems() == ("optgym/PathPlanning2D-v0",)


def test_anchor_moves_head_for_each_anchor_in_turn() -> None:
    from optgym.agents.planning.space_partition import anchor_moves

    anchors = np.array([[[3.0, 1.0], [3.0, 2.2]], [[1.0, 1.0], [1.0, 1.0]]])
    moves = anchor_moves(np.array([1.0, 1.0]), anchors, 0.5, 10).reshape(2, 10, 2)
    want = [(1, 0)] * 4 + [(0, 1)] * 2 + [(0, 0.4)] + [(0, 0)] * 3  # 2 along x, 1.2 up
    assert np.allclose(moves[0], want)
    assert np.allclose(moves[1], 0.0)  # already there: the robot stays
    assert (np.hypot(moves[..., 0], moves[..., 1]) <= 1 + 1e-12).all()


def test_lap3_searching_anchors_replays_and_escapes_the_bug_trap(env: gym.Env) -> None:
    agent = LaP3(plan_space="anchors", anchors=4)
    result = agent.solve(env, "benchmark://nav2d-v0/bug-trap", Budget(calls=1000), seed=0)
    assert result.budget_used["calls"] <= 1000 and env.unwrapped.validate(result.state).ok
    assert len(result.actions[0]) == 2 * env.unwrapped.nav.horizon  # the env's own plan
    assert result.reward > 0
    with pytest.raises(ValueError, match="plan_space"):
        LaP3(plan_space="latent")
