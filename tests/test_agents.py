"""Agents and budgets on small real programs."""

from __future__ import annotations

import gymnasium as gym
import pytest

import optgym  # noqa: F401
from optgym.agents import AGENTS, Agent, agent_settings, make_agent, resolve_agent
from optgym.agents.passes.sequence_list import SequenceListAgent
from optgym.budget import Budget
from optgym.wrappers import BudgetWrapper

SMALL = "generator://csmith-v0/5"
OTHER = "generator://csmith-v0/13"


@pytest.fixture(scope="module")
def env():
    e = gym.make("optgym/PassOrdering-v0")
    yield e
    e.close()


def test_registry_and_protocol():
    for name, entry in AGENTS.items():
        settings = agent_settings(entry.agent_class())
        required = [s.name for s in settings if s.required and s.name not in entry.presets]
        if required:  # sb3 needs the model's path: the error says so
            with pytest.raises(ValueError, match=f"needs the settings {required[0]}"):
                resolve_agent(name)
        elif name != "sequences":
            agent = make_agent(name)
            assert isinstance(agent, Agent), name
            assert resolve_agent(name).problems(), name
    unknown = r"unknown agent 'gredy' \(did you mean 'greedy'\?\); allowed: oz, o3, o0, random"
    with pytest.raises(ValueError, match=unknown):
        make_agent("gredy")


def test_agent_settings_are_typed_and_documented():
    spec = resolve_agent("random:episode_length=8")
    assert spec.canonical == "random:episode_length=8" and spec.make().episode_length == 8
    assert resolve_agent("lb-relax-s").settings == {"sample": True}
    (setting,) = agent_settings(type(make_agent("random")))
    assert (setting.name, setting.default, setting.help) == (
        "episode_length",
        32,
        "actions per random episode",
    )
    for spec, match in [
        ("random:episode_length=x", r"episode_length='x': not an integer \(expected int\)"),
        ("random:length=8", "has no setting 'length'; its settings: episode_length"),
        ("random:episode_length", "expected key=value"),
        ("random:episode_length=0", "episode_length must be >= 1"),
        ("no_such_module_xyz:Agent", "cannot import module 'no_such_module_xyz'"),
        ("optgym.agents.passes.greedy:Nope", "has no 'Nope'"),
        ("sequences", "needs a list of sequences"),
    ]:
        with pytest.raises(ValueError, match=match):
            resolve_agent(spec).make()


def test_oz_agent_scores_one_and_replays(env):
    result = make_agent("oz").solve(env, SMALL, Budget(calls=10))
    assert result.reward == pytest.approx(1.0)
    assert result.state.reference == "Oz" and result.actions == []
    assert env.unwrapped.validate(result.state).ok


def test_greedy_beats_oz_on_a_small_program_deterministically(env):
    first = make_agent("greedy").solve(env, SMALL, Budget(calls=5000))
    second = make_agent("greedy").solve(env, SMALL, Budget(calls=5000))
    assert first.reward > 1.0  # fewer instructions than -Oz
    assert first.actions == second.actions
    assert first.budget_used["calls"] < 5000  # stopped because nothing improved
    assert env.unwrapped.validate(first.state).ok


def test_greedy_stops_trying_when_the_budget_s_seconds_run_out(env):
    # On lua5.4 one round of tries takes far longer than 3 s (-attributor alone takes 9 s):
    # the tries stop with the seconds, and the episode is on time and replays.
    from optgym.datasets.passes.debian import build

    build(["lua5.4"], progress=False)  # a fresh cache has no Debian program yet
    budget = Budget(calls=2500, seconds=3)
    result = make_agent("greedy").solve(env, "benchmark://debian-v0/lua5.4", budget)
    assert budget.seconds_late(result.budget_used["seconds"]) is None
    assert result.budget_used["seconds"] < 3 + 1.0
    assert env.unwrapped.validate(result.state).ok


def test_random_search_keeps_to_its_budget_and_its_seed(env):
    a = make_agent("random").solve(env, OTHER, Budget(calls=150), seed=1)
    b = make_agent("random").solve(env, OTHER, Budget(calls=150), seed=1)
    assert a.budget_used["calls"] == 150  # counted by the env, not by the agent
    assert env.unwrapped.meter is None  # solve detaches the meter it attached
    assert a.state == b.state
    assert a.reward > 0
    assert env.unwrapped.validate(a.state).ok
    with pytest.raises(ValueError, match="needs a budget"):
        make_agent("random").solve(env, OTHER, Budget())


def test_sequence_list_agent_picks_the_best_sequence(env, tmp_path):
    path = tmp_path / "seqs.txt"
    path.write_text("# two sequences\n-dce\n-mem2reg -instcombine -simplifycfg -gvn\n")
    result = SequenceListAgent(path).solve(env, SMALL, Budget(calls=100))
    assert result.actions == [
        env.unwrapped.action_index(f) for f in ("-mem2reg", "-instcombine", "-simplifycfg", "-gvn")
    ]
    assert env.unwrapped.validate(result.state).ok


def test_budget_wrapper_truncates_and_records(env):
    wrapped = BudgetWrapper(env, Budget(calls=5))
    wrapped.reset(options={"benchmark": SMALL})
    truncated = False
    steps = 0
    while not truncated:
        _, _, _, truncated, info = wrapped.step(steps % 124)
        steps += 1
    assert steps == 5 and info["budget"]["calls"] == 5
    with pytest.raises(RuntimeError, match="budget calls=5 is spent"):
        wrapped.step(0)
    trial = env.unwrapped.fork()
    with pytest.raises(RuntimeError, match="budget calls=5 is spent"):
        trial.step(0)  # a fork shares the meter
    trial.close()
    assert wrapped.meter.calls == 5 and wrapped.meter.steps == 5
    wrapped.detach()


@pytest.mark.parametrize(
    "text, match",
    [
        ("calls=abc", "must be a number"),
        ("time=5", "UNIT=NUMBER"),
        ("calls=-1", "positive"),
        ("calls=0.5", "whole number"),
        ("seconds=nan", "positive finite"),
        ("calls=inf", "positive finite"),
        ("calls=3,calls=4", "given twice"),
        ("compilations=5", "UNIT=NUMBER with UNIT one of calls, steps, seconds,"),
    ],
)
def test_budget_parse_errors(text, match):
    with pytest.raises(ValueError, match=match):
        Budget.parse(text)
    assert Budget.parse("calls=20,seconds=1.5") == Budget(calls=20, seconds=1.5)
    assert Budget.parse("compilations=20", unit="compilations") == Budget(calls=20)
