"""The path-planning task on the runner: the cross-entropy method and random shooting on the
open and bug-trap maps, its tables, its plot of best reward against evaluations, the CLI."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from optgym.bench import benchmark_uris, run_bench
from optgym.budget import Budget
from optgym.cli import main
from optgym.envs.planning.report import (
    best_curve,
    map_name,
    planning_summary,
    planning_table,
    plot_best_vs_evaluations,
)
from optgym.leaderboard.tasks import get_task
from optgym.problem import aggregate
from optgym.report import format_table, summarize
from optgym.validate import validate_results

TASK = "path-planning"
MAPS = ["benchmark://nav2d-v0/open", "benchmark://nav2d-v0/bug-trap"]
AGENTS = ["cem", "shooting"]
SEEDS = [0, 1]
BUDGET = Budget(calls=600)  # enough for the CEM to reach the open map's goal
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 agents x 2 maps x 2 seeds at 600 evaluations."""
    path = tmp_path_factory.mktemp("planning") / "path-planning.jsonl"
    run_bench(TASK, AGENTS, MAPS, SEEDS, BUDGET, path, progress=False)
    return path


@pytest.fixture(scope="module")
def rows(results: Path) -> list[dict]:
    return run_bench(TASK, AGENTS, MAPS, SEEDS, BUDGET, results, progress=False)  # all done


def test_task_covers_every_map_with_2000_evaluations():
    task = get_task(TASK)
    assert task.budget == Budget(calls=2000)
    assert task.aggregate == "mean"
    assert task.reference_agents == ("cem", "cmaes")
    names = ("open", "wall", "bug-trap", "maze", "four-rooms", "two-goals", "maze-hard")
    assert benchmark_uris(TASK) == [f"benchmark://nav2d-v0/{n}" for n in names]


def test_bad_aggregate_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"'median'.*allowed: geomean, mean"):
        replace(get_task(TASK), aggregate="median")
    with pytest.raises(ValueError, match=r"'median'.*allowed: geomean, mean"):
        aggregate([1.0], "median")


def test_episodes_score_their_replayed_reward_within_budget(rows: list[dict], results: Path):
    assert len(rows) == len(AGENTS) * len(MAPS) * len(SEEDS)
    for r in rows:
        assert r["error"] is None
        assert r["score"] == r["reward"] == r["state"]["reward"]
        assert r["budget_used"]["calls"] <= BUDGET.calls
        extras = r["state"]["extras"]
        assert extras["evaluations"] == BUDGET.calls - 1  # one call kept for the final step
        assert extras["trace"][-1][1] == r["score"]  # the committed plan is the best found
    assert all(ok for _, ok, _ in validate_results(results))
    by_key = {(r["agent"], r["benchmark"], r["seed"]): r["score"] for r in rows}
    for seed in SEEDS:
        # 1 - 0.2 t/T: the CEM reaches the open map's goal; nobody leaves the bug trap.
        assert 0.8 < by_key[("cem", MAPS[0], seed)] <= 1.0
        assert by_key[("cem", MAPS[1], seed)] < 0 and by_key[("shooting", MAPS[1], seed)] < 0


def test_summary_matches_the_rows(rows: list[dict]):
    summary = planning_summary(rows)
    assert [(s["map"], s["agent"]) for s in summary] == [
        (m, a) for m in ("open", "bug-trap") for a in AGENTS
    ]
    for s in summary:
        mine = [r for r in rows if r["benchmark"] == s["benchmark"] and r["agent"] == s["agent"]]
        scores = [r["score"] for r in mine]
        successes = sum(score > 0 for score in scores)
        assert s["episodes"] == len(SEEDS) and s["errors"] == 0
        assert s["successes"] == successes
        assert s["success_rate"] == successes / len(SEEDS)
        assert s["mean_reward"] == pytest.approx(statistics.fmean(scores))
        assert s["std_reward"] == pytest.approx(statistics.stdev(scores))
        assert s["mean_evaluations"] == BUDGET.calls - 1
        assert s["mean_walltime"] == pytest.approx(statistics.fmean(r["walltime"] for r in mine))


def test_table_shows_successes_and_mean_reward(rows: list[dict]):
    table = planning_table(rows)
    lines = table.splitlines()
    assert lines[1].split() == ["agent", "open", "bug-trap", "all"]
    for agent in AGENTS:
        cells = next(line for line in lines if line.startswith(agent)).split()
        mine = [r for r in rows if r["agent"] == agent]
        for i, uri in enumerate(MAPS):
            scores = [r["score"] for r in mine if r["benchmark"] == uri]
            wins = sum(s > 0 for s in scores)
            assert cells[1 + 2 * i : 3 + 2 * i] == [
                f"{wins}/{len(scores)}",
                f"{statistics.fmean(scores):.2f}",
            ]
        every = [r["score"] for r in mine]
        assert cells[5:] == [f"{sum(s > 0 for s in every)}/4", f"{statistics.fmean(every):.2f}"]
    assert "success/episodes" in lines[0] and "mean reward" in table and "evaluations" in table


def test_plot_of_best_reward_against_evaluations(rows: list[dict], tmp_path: Path):
    png = plot_best_vs_evaluations(rows, tmp_path / "sub" / "evals.png")
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000


def test_best_curve_is_the_trace_as_a_step_function():
    row = {"state": {"extras": {"trace": [[100, -3.0], [300, -1.0], [500, 0.9]]}}}
    curve = best_curve(row, [0, 99, 100, 299, 300, 599])
    assert math.isnan(curve[0]) and math.isnan(curve[1])
    assert curve[2:].tolist() == [-3.0, -3.0, -1.0, 0.9]


def test_errors_and_untraced_rows_are_left_out(rows: list[dict], tmp_path: Path):
    broken = dict(rows[0], score=None, error="RuntimeError: fell over", state=None)
    closed_loop = dict(rows[0], agent="ppo", state={"reward": 0.5, "extras": {}}, score=0.5)
    more = [*rows, broken, closed_loop]
    summary = {(s["map"], s["agent"]): s for s in planning_summary(more)}
    cem = summary[("open", "cem")]
    assert (cem["episodes"], cem["errors"]) == (len(SEEDS), 1)
    ppo = summary[("open", "ppo")]
    assert (ppo["successes"], ppo["episodes"]) == (1, 1)
    assert math.isnan(ppo["std_reward"]) and math.isnan(ppo["mean_evaluations"])
    assert "1/1 0.50" in planning_table(more)
    assert plot_best_vs_evaluations(more, tmp_path / "e.png").read_bytes()[:8] == PNG_MAGIC
    empty = plot_best_vs_evaluations([broken], tmp_path / "empty.png")
    assert empty.read_bytes()[:8] == PNG_MAGIC


def test_mean_aggregate_in_the_main_table(rows: list[dict]):
    summary = {s["agent"]: s for s in summarize(rows, "mean")}
    for agent in AGENTS:
        scores = [r["score"] for r in rows if r["agent"] == agent]
        assert summary[agent]["mean"] == pytest.approx(statistics.fmean(scores))
        assert "geomean" not in summary[agent]
    table = format_table(list(summary.values()), "plan reward", "mean")
    assert table.splitlines()[1].split()[:4] == ["agent", "episodes", "errors", "mean"]
    assert map_name(MAPS[1]) == "bug-trap"
    assert map_name("generator://nav2d-random-v0/3") == "nav2d-random-v0/3"


def test_cli_bench_prints_planning_table(tmp_path: Path, capsys: pytest.CaptureFixture):
    out_file, png = tmp_path / "r.jsonl", tmp_path / "r.png"
    argv = ["bench", TASK, "--agent", "cem", "--agent", "shooting", "--benchmark", MAPS[0],
            "--benchmark", MAPS[1], "--seeds", "0,1", "--budget", "calls=600",
            "--results", str(out_file), "--plot", str(png), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].split()[:4] == ["agent", "episodes", "errors", "mean"]
    matrix = lines[lines.index(next(x for x in lines if x.startswith("success/episodes"))) :]
    assert matrix[1].split() == ["agent", "open", "bug-trap", "all"]
    assert next(line for line in matrix if line.startswith("cem ")).split()[1] == "2/2"
    evals = tmp_path / "r-evals.png"
    assert f"plot:    {evals}" in out
    for path in (png, evals):
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert len(out_file.read_text().splitlines()) == 8
