"""ILPNeighborhood-v0 on small real instances: episodes, feasibility, bad input, agents."""

from __future__ import annotations

import json

import numpy as np
import pyscipopt
import pytest
from ilp_instances import lns_env, vertex_cover

import optgym  # noqa: F401
from optgym.agents import make_agent
from optgym.budget import Budget
from optgym.envs.lns.graph import to_hetero_data

LNS_AGENTS = ["scip", "random-lns", "graph-lns", "lb-lns", "lb-relax", "lb-relax-s"]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    return vertex_cover(tmp_path_factory.mktemp("lns") / "mvc.mps")  # 250 nodes, 2500 edges


@pytest.fixture(scope="module")
def env(small):
    with lns_env(small, subproblem_time=0.3, time_budget=4.0) as e:
        yield e


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
        assert info["sub_mip_solves"] == 1
        last = info["objective"]
        done = terminated or truncated
    # the initial solve's area is charged at reset; the steps' rewards sum to the rest
    assert total == pytest.approx(start_area - info["primal_integral"])
    assert env.state.reward == pytest.approx(-info["primal_integral"])
    assert len(env.state.actions) > 0  # one neighborhood size per step
    assert all(0 < k <= env.problem.n for k in env.state.actions)
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
    assert state.config["subproblem_time"] == 0.3 and state.versions["scip"]
    result = env.validate(state)
    assert result.ok and result.reward == state.reward
    assert env.apply(state) == state.reward  # the claimed reward; the incumbent is installed
    assert env.objective == state.extras["objective"] and env.state.actions == state.actions
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
    obs, info = env.reset()  # still usable, on its previous instance
    assert env.benchmark == small and info["objective"] > 0
    env.step(np.ones(env.problem.n))


def test_fork_is_independent(env, small):
    env.reset(options={"benchmark": small})
    rng = np.random.default_rng(2)
    env.step(rng.random(env.problem.n))

    def snapshot(e) -> tuple:
        s = e.state
        trace = s.extras["trace"]
        return (e.incumbent.tolist(), e.objective, s.actions, s.reward, e.k, trace, s.extras)

    def without_clock(snap: tuple) -> tuple:
        extras = {k: v for k, v in snap[-1].items() if k != "cpu_seconds"}
        return (*snap[:-1], extras)

    parent = without_clock(snapshot(env))
    fork = env.fork()
    assert without_clock(snapshot(fork)) == parent
    fork.incumbent[0] += 1  # its own arrays: the parent's incumbent does not move
    assert env.incumbent.tolist() == parent[0]
    fork.incumbent[0] -= 1
    for _ in range(3):
        fork.step(rng.random(env.problem.n))
    assert without_clock(snapshot(env)) == parent
    assert len(fork.state.actions) == 4 and fork.state.actions[:1] == parent[2]
    assert fork.state.reward < parent[3]  # the fork's primal integral grew, not the parent's
    forked = without_clock(snapshot(fork))
    env.neighborhood_size = 5  # a fixed k is the parent's own too
    try:
        env.step(rng.random(env.problem.n))  # the shared SCIP model re-fixes its bounds
    finally:
        env.neighborhood_size = None
    assert without_clock(snapshot(fork)) == forked
    assert env.state.actions == [*parent[2], 5]
    for e in (env, fork):
        assert e.problem.violation(e.incumbent) is None
        assert e.problem.objective(e.incumbent) == pytest.approx(e.objective)
    assert fork.validate(fork.state).ok


def test_budget_counts_sub_mip_solves(env, small):
    result = make_agent("random-lns").solve(env, small, Budget(calls=3), seed=0)
    assert result.budget_used["calls"] == 3 and result.budget_used["steps"] == 3
    assert len(result.state.actions) == 3


@pytest.mark.parametrize("agent", LNS_AGENTS)
def test_lns_agents(env, small, agent):
    result = make_agent(agent).solve(env, small, Budget(seconds=2.5), seed=0)
    extras = result.state.extras
    assert extras["objective"] <= extras["initial_objective"]
    assert env.validate(result.state).ok
    # it searched until the wall-clock budget or the env's CPU-time budget ran out
    assert result.budget_used["seconds"] >= 2.5 or extras["cpu_seconds"] >= env.time_budget
    assert result.budget_used["calls"] == len(result.state.actions)  # the env counted them
    assert env.time_budget == 4.0 and env.neighborhood_size is None  # the env's config stays
    assert env.subproblem_time == 0.3


def test_lns_report_measures_gaps_against_the_best_over_all_runs(tmp_path):
    from optgym.envs.lns.report import episode_metrics, lns_table, plot_gap_over_time

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


def test_tampered_trace_or_integral_fails_validation(env):
    """The reward is recomputed from the trace: a changed claim or a changed trace fails."""
    from optgym.state import EpisodeState

    env.reset(options={"benchmark": "generator://set-cover-s-v0/1"})
    env.step(np.random.default_rng(0).random(env.action_space.shape))
    state = env.state
    assert env.validate(state).ok
    for change, match in [
        (lambda s: s.extras.update(end_seconds=s.extras["end_seconds"] + 5), "horizon"),
        (
            lambda s: s.extras.update(primal_integral=s.extras["primal_integral"] + 1),
            "primal integral",
        ),  # fmt: skip
        (lambda s: s.extras.update(horizon=s.extras["horizon"] / 2), "horizon"),
        (lambda s: s.extras["trace_work"].__setitem__(0, -1), "trace_work"),
        (lambda s: s.extras.update(work_end=1.5), "work_end"),
        (lambda s: s.extras["trace"][0].__setitem__(2, 0.0), "gap"),
        (lambda s: s.extras.update(trace=[]), "needs extras 'trace'"),
        (lambda s: setattr(s, "reward", s.reward * 0.5 - 1), "claimed reward"),
    ]:
        bad = EpisodeState.from_dict(json.loads(state.to_json()))
        change(bad)
        result = env.validate(bad)
        assert not result.ok and match in result.error, (match, result.error)
    # The measured extras that came with the work axis come all together (this version) or
    # not at all (a state made before it): the line validator's check_extras says which.
    used = {"seconds": state.extras["cpu_seconds"]}
    for drop, error in [((), None), (("horizon",), "extras lack horizon; allowed: all of")]:
        bad = EpisodeState.from_dict(json.loads(state.to_json()))
        for key in drop:
            bad.extras.pop(key)
        assert env.validate(bad).ok
        found = env.unwrapped.check_extras(bad.extras, used)
        assert found is None if error is None else error in (found or ""), found
    old = EpisodeState.from_dict(json.loads(state.to_json()))
    for key in env.unwrapped.extras_added:
        old.extras.pop(key)
    assert env.validate(old).ok and env.unwrapped.check_extras(old.extras, used) is None


def test_worker_refixes_only_moved_bounds_to_the_ones_asked_for(tmp_path):
    """Each sub-MIP's bounds, set by changing only the bounds that move, are the ones asked
    for, also when an integer variable jumps from one fixed value to another (up or down)."""
    from optgym.envs.lns.worker import ScipModel

    m = pyscipopt.Model()
    m.hideOutput()
    x = [m.addVar(f"x{i}", vtype="I", lb=0, ub=5, obj=-1.0) for i in range(12)]
    y = m.addVar("y", vtype="C", lb=0, ub=10, obj=1.0)
    m.addCons(pyscipopt.quicksum(x) <= 40 + y)
    path = tmp_path / "ints.mps"
    m.writeProblem(str(path), verbose=False)
    model = ScipModel(str(path), 0)
    model.describe()
    rng = np.random.default_rng(0)
    for _ in range(25):
        incumbent = np.append(rng.integers(0, 6, 12).astype(float), 0.0)
        free = np.append(rng.random(12) < 0.3, False)
        reply = model.neighborhood(free, incumbent, 1.0)
        assert reply["status"] in ("optimal", "infeasible")
        fixed = model.integer & ~free
        lb = [v.getLbOriginal() for v in model.vars]
        ub = [v.getUbOriginal() for v in model.vars]
        assert np.array_equal(lb, np.where(fixed, incumbent, model.lb))
        assert np.array_equal(ub, np.where(fixed, incumbent, model.ub))


def test_neighborhood_frees_the_top_scores_ties_to_the_lower_index(env, small):
    """The k highest scores, as a stable sort of them would pick (ties towards the lower
    index), -inf never: checked against that sort for coarse scores full of ties."""
    env.reset(options={"benchmark": small})
    rng = np.random.default_rng(3)
    idx = env.problem.int_indices
    for size in (1, 2, len(idx) // 2, len(idx) - 1, len(idx), len(idx) + 5):
        env.neighborhood_size = size
        for _ in range(20):
            scores = rng.integers(0, 4, env.problem.n).astype(float)
            scores[rng.random(env.problem.n) < 0.2] = -np.inf
            candidates = idx[scores[idx] > -np.inf]
            order = candidates[np.argsort(-scores[candidates], kind="stable")]
            expected = np.zeros(env.problem.n, dtype=bool)
            expected[order[: env.k]] = True
            assert np.array_equal(env.neighborhood(scores), expected)
    env.neighborhood_size = None
