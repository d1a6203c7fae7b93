"""ILPNeighborhood-v0 on small real instances: episodes, feasibility, bad input, agents."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pyscipopt
import pytest

import optgym  # noqa: F401
from optgym.agents import make_agent
from optgym.budget import Budget
from optgym.envs.lns.graph import to_hetero_data

LNS_AGENTS = ["scip", "random-lns", "graph-lns", "lb-lns", "lb-relax", "lb-relax-s"]


def _vertex_cover(path: Path, n: int = 250, edges: int = 2500, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    m = pyscipopt.Model()
    m.hideOutput()
    x = [m.addVar(f"x{i}", vtype="B", obj=int(rng.integers(1, 101))) for i in range(n)]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < edges:
        a, b = (int(v) for v in rng.integers(0, n, 2))
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    for a, b in sorted(pairs):
        m.addCons(x[a] + x[b] >= 1, name=f"e{a}_{b}")
    m.writeProblem(str(path), verbose=False)
    return f"file://{path}"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    return _vertex_cover(tmp_path_factory.mktemp("lns") / "mvc.mps")


@pytest.fixture(scope="module")
def env(small):
    e = gym.make(
        "optgym/ILPNeighborhood-v0", benchmark=small, initial_time=0.2, subproblem_time=0.3,
        time_budget=4.0,
    )  # fmt: skip
    yield e.unwrapped
    e.close()


def test_episode_keeps_feasible_improving_incumbents(env, small):
    obs, info = env.reset(options={"benchmark": small})
    assert env.observation_space.contains(obs)
    start, start_area = info["objective"], info["primal_integral"]
    assert env.problem.violation(env.incumbent) is None
    rng = np.random.default_rng(0)
    total, last = 0.0, start
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(rng.random(env.action_space.shape))
        total += reward
        assert info["objective"] <= last  # minimization: never worse
        assert env.problem.violation(env.incumbent) is None
        assert env.problem.objective(env.incumbent) == pytest.approx(info["objective"])
        assert set(info["times"]) == {"policy", "solve", "overhead"}
        last = info["objective"]
        done = terminated or truncated
    # the initial solve's area is charged at reset; the steps' rewards sum to the rest
    assert total == pytest.approx(start_area - info["primal_integral"])
    assert env.state.reward == pytest.approx(-info["primal_integral"])
    assert env.elapsed >= env.time_budget
    data = to_hetero_data(obs)
    assert data["var"].x.shape[0] == env.problem.n
    assert data["var", "in", "cons"].edge_index.shape[1] == env.problem.A.nnz


def test_subproblem_timeout_keeps_the_incumbent(env, small):
    env.reset(options={"benchmark": small})
    before = env.incumbent.copy()
    saved = env.subproblem_time
    env.subproblem_time = 1e-4
    try:
        _, _, _, _, info = env.step(np.ones(env.problem.n))
    finally:
        env.subproblem_time = saved
    if not info["improved"]:
        assert np.array_equal(env.incumbent, before)
    assert env.problem.violation(env.incumbent) is None


def test_state_validates_and_tampering_fails(env, small):
    env.reset(seed=4, options={"benchmark": small})
    env.step(np.random.default_rng(1).random(env.problem.n))
    state = env.state
    assert state.seed == 4
    assert env.validate(state).ok
    bad = type(state)(**{**state.to_dict(), "extras": {**state.extras, "objective": 1.0}})
    assert "claimed objective" in str(env.validate(bad))
    empty = type(state)(**{**state.to_dict(), "extras": {**state.extras, "solution": {}}})
    assert "infeasible" in str(env.validate(empty))


def test_bad_actions(env, small):
    env.reset(options={"benchmark": small})
    with pytest.raises(ValueError, match=r"one score per variable, shape \(250,\)"):
        env.step(np.ones(3))
    scores = np.ones(env.problem.n)
    scores[7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        env.step(scores)
    env.step(np.ones(env.problem.n))  # still usable


def test_malformed_infeasible_unbounded_instances(env, small, tmp_path):
    junk = tmp_path / "junk.mps"
    junk.write_text("NAME junk\nROWS\n what is this\n")
    with pytest.raises(ValueError, match="cannot read .* as an MPS/LP file"):
        env.reset(options={"benchmark": f"file://{junk}"})
    m = pyscipopt.Model()
    m.hideOutput()
    x = m.addVar("x", vtype="B")
    m.addCons(x >= 2)
    m.writeProblem(str(tmp_path / "infeasible.mps"), verbose=False)
    with pytest.raises(ValueError, match="infeasible"):
        env.reset(options={"benchmark": f"file://{tmp_path / 'infeasible.mps'}"})
    m = pyscipopt.Model()
    m.hideOutput()
    y = m.addVar("y", vtype="I", lb=0, ub=None, obj=-1)
    m.addCons(y >= 1)
    m.writeProblem(str(tmp_path / "unbounded.mps"), verbose=False)
    with pytest.raises(ValueError, match="unbounded"):
        env.reset(options={"benchmark": f"file://{tmp_path / 'unbounded.mps'}"})
    obs, info = env.reset(options={"benchmark": small})  # still usable
    assert info["objective"] > 0


@pytest.mark.parametrize("agent", LNS_AGENTS)
def test_lns_agents(env, small, agent):
    result = make_agent(agent).solve(env, small, Budget(seconds=2.5), seed=0)
    extras = result.state.extras
    assert extras["objective"] <= extras["initial_objective"]
    assert env.validate(result.state).ok
    assert result.budget_used["cpu_seconds"] >= 2.5


def test_lns_report_measures_gaps_against_the_best_over_all_runs(tmp_path):
    from optgym.leaderboard.lns_report import episode_metrics, lns_table, plot_gap_over_time

    def row(agent: str, trace: list) -> dict:
        extras = {"objective": trace[-1][1], "trace": trace}
        return {"agent": agent, "benchmark": "file:///x.mps", "error": None,
                "state": {"extras": extras, "walltime": 60.0}}  # fmt: skip

    rows = [row("scip", [[5.0, 120.0, 0]]), row("lns", [[5.0, 120.0, 0], [30.0, 100.0, 0]])]
    # minimization (objectives fall): the reference is the best over both runs, 100
    gap, integral = episode_metrics(rows[1], 100.0, 60.0)
    assert gap == 0.0 and integral == pytest.approx(30.0 * 20 / 120)
    gap, integral = episode_metrics(rows[0], 100.0, 60.0)
    assert gap == pytest.approx(20 / 120) and integral == pytest.approx(60.0 * 20 / 120)
    table = lns_table(rows)
    assert "scip" in table and "lns" in table
    assert plot_gap_over_time(rows, tmp_path / "gap.png").stat().st_size > 0
