"""ScheduleSearch agents on small real pipelines: autoschedulers, random search, the value
function (collect, train, search) and the cost model file."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import optgym  # noqa: F401
from optgym.agents import make_agent
from optgym.agents.schedule.value import ValueFunctionAgent
from optgym.agents.schedule.value_data import collect, load_data
from optgym.agents.schedule.value_training import train
from optgym.budget import Budget
from optgym.cli import main as optgym_main
from optgym.envs.schedule.actions import sample_action
from optgym.envs.schedule.model import CostModel, load_cost_model

SMALL = "benchmark://halide-ops-v0/maxpool-512"  # one stage, ~2 ms naive
RANDOM = "generator://halide-random-v0/2019"  # two stages


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("schedule") / "measurements.sqlite"


@pytest.fixture(scope="module")
def env(cache):
    e = gym.make("optgym/ScheduleSearch-v0", mode="cache", cache_path=cache, baseline_info=False)
    yield e
    e.close()


@pytest.fixture(scope="module")
def weights(cache, tmp_path_factory):
    """Tiny weights: 3 train pipelines of at most 3 stages x (naive anchor + 3 random)."""
    folder = tmp_path_factory.mktemp("value")
    summary = collect(folder / "data.npz", 3, 3, seed=0, cache_path=cache, max_stages=3,
                      progress=False)  # fmt: skip
    history = train(folder / "data.npz", folder / "w.pt", epochs=12, seed=0, vi_epochs=4,
                    vi_candidates=4, progress=False)  # fmt: skip
    return folder, summary, history


@pytest.mark.parametrize("name", ["adams2019-b1", "adams2019-b32", "mullapudi2016", "li2018"])
def test_autoschedulers_give_replayable_states(env, name):
    result = make_agent(name).solve(env, SMALL, Budget(calls=1), seed=0)
    assert math.isfinite(result.reward) and result.state.reference is not None
    assert result.budget_used["calls"] == 1
    assert env.unwrapped.apply(result.state) == pytest.approx(result.reward)  # the cache


def test_random_search_keeps_to_its_budget_and_returns_its_best(env):
    result = make_agent("schedule-random").solve(env, RANDOM, Budget(calls=3), seed=1)
    assert result.budget_used["calls"] == 3
    base, rng, rewards = env.unwrapped, np.random.default_rng(1), []
    for _ in range(3):  # the same episodes again, read from the cache
        base.reset(options={"benchmark": RANDOM})
        done = False
        while not done:
            _, reward, done, _, info = base.step(sample_action(base.masks(), rng))
        assert "error" in info or info["cached"]
        rewards.append(-math.inf if "error" in info else reward)
    assert result.reward == max(rewards)
    with pytest.raises(ValueError, match="needs a budget"):
        make_agent("schedule-random").solve(env, RANDOM, Budget())


def test_collect_and_train(weights):
    folder, summary, history = weights
    assert summary["pipelines"] == 3 and summary["episodes"] + summary["errors"] == 12
    data = load_data(folder / "data.npz")
    assert data["ep_naive"].sum() == 3 and np.all(data["ep_samples"] > 0)
    assert len(data["obs"]) == (data["ep_stages"] + 1).sum()
    first = history["rounds"][0]
    assert history["train_loss"][first - 1] < history["train_loss"][0]
    again = train(folder / "data.npz", folder / "w2.pt", epochs=2, seed=0, vi_rounds=0,
                  progress=False)  # fmt: skip
    assert again["train_loss"] == history["train_loss"][:2]  # deterministic given the seed
    assert load_cost_model(folder / "w2.pt").meta["history"]["train_loss"] == again["train_loss"]


def test_value_agent_trains_within_its_budget_saves_and_loads(env, cache, tmp_path):
    """The learned agent's own loop: measure schedules of two small train pipelines through
    the env (its meter counts them), fit, save, load into a new agent, solve."""
    train_uris = [RANDOM, "generator://halide-random-v0/2009"]  # two and three stages
    agent = ValueFunctionAgent(candidates=8, epochs=3, vi_epochs=1)
    with pytest.raises(ValueError, match="test split"):
        agent.train(env, ["generator://halide-random-v0/5"], Budget(calls=2))
    figures = agent.train(env, train_uris, Budget(calls=5), seed=0)
    assert figures["measurements"] == 5 and figures["episodes"] + figures["errors"] == 5
    assert figures["pipelines"] == 2 and figures["samples"] > figures["episodes"]
    assert figures["epochs"] == 4 and math.isfinite(figures["final_loss"])
    assert figures["seconds"] > 0
    agent.save(tmp_path / "value.pt")
    loaded = make_agent("value", path=tmp_path / "value.pt", candidates=8)
    base = env.unwrapped
    base.reset(options={"benchmark": RANDOM})
    rng = np.random.default_rng(0)
    obs = [base.peek(sample_action(base.masks(), rng)) for _ in range(4)]
    assert np.array_equal(loaded.model.predict(obs), agent.model.predict(obs))
    assert not np.array_equal(loaded.model.predict(obs), load_cost_model().predict(obs))
    result = loaded.solve(env, SMALL, Budget(calls=1), seed=0)
    assert math.isfinite(result.reward) and result.budget_used["calls"] == 1
    assert env.unwrapped.apply(result.state) == pytest.approx(result.reward)  # the cache
    # optgym train makes the env with the agent's train_env_kwargs: no Adams2019 baseline
    out = tmp_path / "cli-value.pt"
    argv = ["train", "value:epochs=2,vi_epochs=0", "--task", "schedule-search", "--dataset",
            RANDOM, "--budget", "measurements=1", "--out", str(out), "--no-progress"]  # fmt: skip
    assert optgym_main(argv) == 0
    assert make_agent(f"value:path={out}").model is not None


def test_value_agent_end_to_end_and_replays(env, weights):
    folder = weights[0]
    agent = ValueFunctionAgent(path=folder / "w.pt", candidates=16, beam=2, measure_top=None)
    result = agent.solve(env, RANDOM, Budget(calls=2), seed=0)
    assert result.budget_used["calls"] == 2 and len(result.actions) == 2
    assert math.isfinite(result.reward)
    assert env.unwrapped.apply(result.state) == pytest.approx(result.reward)
    greedy = make_agent("value", path=folder / "w.pt", candidates=16, measure_top=1)
    assert greedy.solve(env, SMALL, Budget(calls=5), seed=0).budget_used["calls"] == 1


def test_cost_model_round_trip_and_missing_file(env, tmp_path):
    base = env.unwrapped
    base.reset(options={"benchmark": RANDOM})
    rng = np.random.default_rng(0)
    obs = [base.peek(sample_action(base.masks(), rng)) for _ in range(8)]
    torch.manual_seed(0)
    model = CostModel()
    path = model.save(tmp_path / "m.pt")
    assert np.array_equal(load_cost_model(path).predict(obs), model.predict(obs))
    assert model.predict(obs).shape == (8,)
    with pytest.raises(FileNotFoundError, match="optgym train value --task schedule-search"):
        load_cost_model(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"\x80\x02not a torch file")  # the agent: one line
    with pytest.raises(ValueError, match="is not a schedule value weights file"):
        make_agent("value-v1", path=tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="no such schedule value weights file"):
        make_agent("value", path=tmp_path / "missing.pt")


def test_model_mode_rewards_the_cost_models_prediction_without_measuring(weights):
    folder = weights[0]
    e = gym.make("optgym/ScheduleSearch-v0", mode="model", model_path=folder / "w.pt")
    base = e.unwrapped
    try:
        base.reset(options={"benchmark": RANDOM})
        rng = np.random.default_rng(1)
        done = False
        while not done:
            obs, reward, done, _, info = base.step(sample_action(base.masks(), rng))
        assert info["predicted"] and "error" not in info
        assert info["measurements"] == 1  # a prediction is charged as a measurement
        assert reward == pytest.approx(float(load_cost_model(folder / "w.pt").predict([obs])[0]))
        assert base.measured["measurements"] == 0
    finally:
        e.close()


def test_value_agent_on_v1_learns_by_value_iteration_on_search_data(cache, env, tmp_path):
    """On ScheduleSearch-v1: random schedules (V0), then a round of beam search with V0 whose
    best-predicted schedules are measured and added (V1); the weights remember their env,
    and an env of the other version refuses them."""
    e1 = gym.make("optgym/ScheduleSearch-v1", mode="cache", cache_path=cache, baseline_info=False)
    try:
        train_uris = [RANDOM, "generator://halide-random-v0/2009"]  # two and three stages
        agent = ValueFunctionAgent(
            candidates=8, epochs=2, vi_epochs=1, schedules=1, search_rounds=1, search_top=1
        )
        figures = agent.train(e1, train_uris, Budget(calls=8), seed=0)
        # 2 naive + 2 random episodes, then one searched schedule per pipeline
        assert figures["measurements"] == 6 and figures["episodes"] + figures["errors"] == 6
        meta = agent.model.meta
        assert meta["env_id"] == "optgym/ScheduleSearch-v1"
        assert meta["data"]["search_rounds"] == 1 and meta["data"]["env_id"] == meta["env_id"]
        agent.save(tmp_path / "v1.pt")
        loaded = make_agent("value-v1", path=tmp_path / "v1.pt", candidates=8)
        result = loaded.solve(e1, RANDOM, Budget(calls=3), seed=0)
        assert result.budget_used["calls"] == 3 and len(result.actions) == 2
        assert all(len(a) == 15 for a in result.actions)  # v1 stage actions
        assert e1.unwrapped.apply(result.state) == pytest.approx(result.reward)  # the cache
        with pytest.raises(ValueError, match="trained on optgym/ScheduleSearch-v1, not"):
            loaded.solve(env, RANDOM, Budget(calls=1), seed=0)
        v0 = ValueFunctionAgent(candidates=8)
        assert v0.model.meta.get("env_id", "optgym/ScheduleSearch-v0").endswith("-v0")  # shipped
        with pytest.raises(ValueError, match="trained on optgym/ScheduleSearch-v0, not"):
            v0.solve(e1, RANDOM, Budget(calls=1), seed=0)
    finally:
        e1.close()


def test_value_agent_climbs_from_its_best_measured_schedule(cache, monkeypatch):
    """``climb_after``: the best-predicted schedule is measured first, as ``value-v1`` does;
    every further measurement is a new schedule, the model's pick among changes of one
    component of one stage of the best one, and the result is the best measured, at least
    as fast as the start."""
    from optgym.envs.schedule.env import ScheduleSearchEnvV1

    e1 = gym.make("optgym/ScheduleSearch-v1", mode="cache", cache_path=cache, baseline_info=False)
    measured: list[str] = []
    finish = ScheduleSearchEnvV1._finish

    def recording(self, schedule):
        measured.append(repr(sorted(schedule.items())))
        return finish(self, schedule)

    drawn: list[int] = []
    changes = ValueFunctionAgent._changes

    def checked(self, base, prefixes, current, seen, rng):
        out = changes(self, base, prefixes, current, seen, rng)
        for _, actions, _, _ in out:
            # equal up to the changed stage, which differs in exactly one component
            k = next(t for t, a in enumerate(actions) if not np.array_equal(a, current[t]))
            assert np.count_nonzero(actions[k] != current[k]) == 1
        drawn.append(len(out))
        return out

    try:
        plain = make_agent("value-v1", candidates=8, measure_top=1)
        start = plain.solve(e1, RANDOM, Budget(calls=1), seed=0)
        monkeypatch.setattr(ScheduleSearchEnvV1, "_finish", recording)
        monkeypatch.setattr(ValueFunctionAgent, "_changes", checked)
        climb = make_agent("value-v1-climb", candidates=8, climb_after=1, mutations=8)
        result = climb.solve(e1, RANDOM, Budget(calls=4), seed=0)
        assert result.budget_used["calls"] == 4 and len(measured) == 4
        assert sum(n > 0 for n in drawn) == 3  # each climbing measurement chose among changes
        assert len(set(measured)) == 4  # no schedule measured twice
        assert result.reward >= start.reward
        assert e1.unwrapped.apply(result.state) == pytest.approx(result.reward)  # the cache
        with pytest.raises(ValueError, match="climb_after must be >= 1"):
            make_agent("value-v1-climb", climb_after=0)
    finally:
        e1.close()
