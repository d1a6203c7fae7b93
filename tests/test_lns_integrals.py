"""Honest primal integrals on any instance: SCIP's intermediate incumbents at their time, the
whole budget after an early proof of optimality, a reference objective (an argument or a
reference run beside the instance), gaps after the fact without one, and the work axis."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from ilp_instances import lns_env, vertex_cover

import optgym  # noqa: F401
from optgym.agents import make_agent
from optgym.budget import Budget
from optgym.envs.lns.gap import primal_gap, primal_integral
from optgym.envs.lns.problem import reference_path


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    return vertex_cover(tmp_path_factory.mktemp("lnsint") / "mvc.mps")  # 250 nodes


def _integral(env, extras: dict) -> float:
    points = [(t, o) for t, o, _ in extras["trace"]]
    return primal_integral(points, extras["horizon"], env._gap)


def test_one_long_solve_records_each_incumbent_scip_found():
    """The scip agent runs one sub-MIP for the whole budget; every new best solution inside
    it enters the trace at its own CPU second and work, so its integral is not charged the
    initial incumbent's gap until the end."""
    with lns_env("generator://vertex-cover-s-v0/0", subproblem_time=2.0, time_budget=6.0) as env:
        result = make_agent("scip").solve(env, env.benchmark, Budget(seconds=30), seed=0)
        extras = result.state.extras
        assert len(result.state.actions) == 1  # one solve
        trace = extras["trace"]
        assert len(trace) >= 3, trace  # several incumbents from that one solve
        times = [t for t, _, _ in trace]
        assert times == sorted(times) and times[-1] <= extras["end_seconds"]
        assert all(b < a for (_, a, _), (_, b, _) in zip(trace, trace[1:], strict=False))
        # the points lie inside the solve, not all at its end
        assert times[1] < extras["end_seconds"] - 0.5
        work = extras["trace_work"]
        assert len(work) == len(trace) and work == sorted(work) and work[-1] <= extras["work_end"]
        assert extras["work_end"] > work[0] >= 0  # the initial solve's work, then the sub-MIP's
        assert extras["primal_integral"] == pytest.approx(_integral(env, extras))
        assert env.validate(result.state).ok


def test_early_proof_of_optimality_is_charged_to_the_end_of_the_budget(tmp_path):
    tiny = vertex_cover(tmp_path / "tiny.mps", n=60, edges=150)
    with lns_env(tiny, subproblem_time=0.3, time_budget=40.0) as env:
        result = make_agent("scip").solve(env, tiny, Budget(seconds=60), seed=0)
        extras = result.state.extras
        assert extras["cpu_seconds"] < 20.0  # proved optimal long before the budget's end
        assert extras["horizon"] == 40.0
        assert extras["primal_integral"] == pytest.approx(_integral(env, extras))
        assert result.state.reward == pytest.approx(-extras["primal_integral"])
        assert env.validate(result.state).ok


def _write_reference(small: str, payload: object) -> None:
    path = reference_path(__import__("pathlib").Path(small.removeprefix("file://")))
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))


def test_reference_objective_from_the_argument_or_a_run_beside_the_instance(small):
    from optgym.datasets.dataset import Benchmark

    sha = Benchmark.from_file(small, __import__("pathlib").Path(small[7:])).sha256
    env = gym.make(
        "optgym/ILPNeighborhood-v0", initial_time=0.2, subproblem_time=0.3, time_budget=3.0
    ).unwrapped  # fmt: skip
    try:
        assert "reference_objective" not in env.config  # at its default: old states match
        env.reset(options={"benchmark": small})
        assert env.best_known is None and env._gap(env.objective) == 1.0
        reference = env.objective * 0.9
        _write_reference(small, {"objective": reference, "sha256": sha, "source": "by hand"})
        env.reset(options={"benchmark": small})
        assert env.best_known == reference
        assert env._gap(env.objective) == pytest.approx(primal_gap(env.objective, reference))
        for payload, what in [
            ("{not json", "is not JSON"),
            ([1, 2], "not a JSON object"),
            ({"objective": "x", "sha256": sha, "source": "s"}, "no finite 'objective'"),
            ({"objective": float("nan"), "sha256": sha, "source": "s"}, "no finite"),
            ({"objective": 5.0, "sha256": "0" * 64, "source": "s"}, "for another file"),
            ({"objective": 5.0, "sha256": sha}, "does not say its 'source'"),
            ("x" * 70_000, "bytes, over"),
        ]:
            _write_reference(small, payload)
            with pytest.raises(ValueError, match=what) as caught:
                env.reset(options={"benchmark": small})
            assert "allowed:" in str(caught.value) and "not json" not in str(caught.value)
        reference_path(__import__("pathlib").Path(small[7:])).unlink()
        env.reset(options={"benchmark": small})  # usable again
    finally:
        env.close()
    given = gym.make("optgym/ILPNeighborhood-v0", initial_time=0.2, reference_objective=7.5)
    try:
        assert given.unwrapped.config["reference_objective"] == 7.5
        given.reset(options={"benchmark": small})
        assert given.unwrapped.best_known == 7.5  # the argument comes first
    finally:
        given.close()
    for bad in (float("inf"), "7", True):
        with pytest.raises(ValueError, match="reference_objective must be None or a finite"):
            gym.make("optgym/ILPNeighborhood-v0", reference_objective=bad)


def test_without_a_reference_the_report_ranks_like_the_final_objectives(small):
    """On an instance with no reference (a hand-written MPS file), the env charges gap 1
    throughout; the report measures after the fact against the best any episode found, so
    integrals differ between agents and order them as their final objectives do."""
    from optgym.envs.lns.report import (
        episode_horizon,
        episode_metrics,
        lns_table,
        references,
        work_gap,
        work_horizons,
    )

    rows = []
    with lns_env(small, subproblem_time=0.3, time_budget=3.0) as env:
        for name, size in (("stuck", 1), ("random", None)):
            env.reset(options={"benchmark": small})
            env.neighborhood_size = size
            rng = np.random.default_rng(0)
            done = False
            while not done:
                *_, terminated, truncated, info = env.step(rng.random(env.action_space.shape))
                done = terminated or truncated
            rows.append({"agent": name, "benchmark": small, "error": None,
                         "state": env.state.to_dict()})  # fmt: skip
        env.neighborhood_size = None
    assert {r["state"]["extras"]["primal_integral"] for r in rows} == {3.0}  # gap 1 throughout
    refs = references(rows)
    finals = [r["state"]["extras"]["objective"] for r in rows]
    assert refs[small] == min(finals)
    spans = work_horizons(rows)
    metrics = [episode_metrics(r, refs[small], episode_horizon(r)) for r in rows]
    on_work = [work_gap(r, refs[small], spans[small]) for r in rows]
    assert finals[0] > finals[1]  # a one-variable neighborhood barely moves
    assert metrics[0][1] > metrics[1][1] and on_work[0] > on_work[1]
    assert "gap over work" in lns_table(rows)
