"""A user's first day (issue 23): results files that never serve a stale result, agents that
fail before anything runs when they cannot fit the task, validate that says what it was
given, and a command line that helps."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

from optgym.bench import run_bench
from optgym.budget import Budget
from optgym.cli import main

TASK = "path-planning"
MAP = "benchmark://nav2d-v0/open"
BUDGET = Budget(calls=100)

PLUGIN = textwrap.dedent('''
    from optgym.agents import make_agent


    class Wrapped:
        """CEM under another name: a plug-in whose source the test edits."""

        problems = ("path-planning",)
        VERSION = 1

        def solve(self, env, benchmark, budget, seed=None):
            return make_agent("cem").solve(env, benchmark, budget, seed)
''')


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- 1. results files that never serve a stale result ----------------------------------


def test_a_rerun_resumes_and_says_how_many_it_kept(tmp_path: Path, capsys) -> None:
    results = tmp_path / "r.jsonl"
    run_bench(TASK, ["cem"], [MAP], [0, 1], BUDGET, results)
    before = results.read_bytes()
    assert all(set(r["fingerprint"]) == {"optgym", "code", "model"} for r in _lines(results))
    capsys.readouterr()
    run_bench(TASK, ["cem"], [MAP], [0, 1, 2], BUDGET, results)
    assert "2 of 3 episodes are there already" in capsys.readouterr().err
    assert results.read_bytes().startswith(before) and len(_lines(results)) == 3


def test_another_budget_or_agent_code_refuses_to_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A rerun with another budget, or after the agent's code changed, refuses with one
    line that names the difference and --fresh; --fresh moves the old file aside."""
    results = tmp_path / "r.jsonl"
    common = ["bench", TASK, "--benchmark", MAP, "--results", str(results), "--plot",
              str(tmp_path / "p.png"), "--no-progress"]  # fmt: skip
    assert main([*common, "--agent", "cem", "--budget", "calls=100"]) == 0
    before = results.read_bytes()
    capsys.readouterr()
    assert main([*common, "--agent", "cem", "--budget", "calls=50"]) == 2
    err = capsys.readouterr().err
    assert "holds episodes run with budget calls=100; this run's is calls=50" in err
    assert "--fresh" in err and len(err.strip().splitlines()) == 1
    assert results.read_bytes() == before  # nothing run, nothing written
    assert main([*common, "--agent", "cem", "--budget", "calls=50", "--fresh"]) == 0
    assert Path(f"{results}.previous").read_bytes() == before
    assert {r["budget"] for r in _lines(results)} == {"calls=50"}

    code = tmp_path / "code"
    code.mkdir()
    (code / "mine.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(code))
    other = tmp_path / "plugin.jsonl"
    run_bench(TASK, ["mine:Wrapped"], [MAP], [0], BUDGET, other, progress=False)
    (code / "mine.py").write_text(PLUGIN.replace("VERSION = 1", "VERSION = 2"))
    with pytest.raises(ValueError, match="run with another agent code; .*--fresh"):
        run_bench(TASK, ["mine:Wrapped"], [MAP], [0, 1], BUDGET, other, progress=False)


def test_a_changed_model_refuses_to_mix(tmp_path: Path) -> None:
    """Retraining into the same folder changes the model its agent spec names."""
    from optgym.train import train

    out = tmp_path / "ppo"
    train("optgym/PathPlanning2DClosedLoop-v0", algo="ppo", steps=64, out=out, progress=False,
          tensorboard=False, checkpoint_every=0)  # fmt: skip
    spec = f"sb3:path={out}"
    results = tmp_path / "r.jsonl"
    task = "path-planning-closed-loop"
    run_bench(task, [spec], [MAP], [0], Budget(calls=50), results, progress=False)
    model = out / "model.zip"
    model.write_bytes(model.read_bytes() + b"\0")  # a model changed in place
    with pytest.raises(ValueError, match="another model or file its settings name"):
        run_bench(task, [spec], [MAP], [0], Budget(calls=50), results, progress=False)


# --- 2. errors before anything runs --------------------------------------------------------


PLANNER = textwrap.dedent('''
    class Planner:
        """A plug-in that evaluates whole plans: the open-loop env only."""

        problems = ("path-planning",)
        requires = ("evaluate_batch",)

        def solve(self, env, benchmark, budget, seed=None):
            raise AssertionError("never reached")
''')


def test_agents_that_cannot_fit_fail_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "planner.py").write_text(PLANNER)
    monkeypatch.syspath_prepend(str(code))
    results = tmp_path / "r.jsonl"
    cases = {
        ("cem", TASK, "steps=100"): "cem needs a budget that limits calls or seconds",
        (f"ppo:path={tmp_path}", "path-planning-closed-loop", "calls=100"): "model",
        ("planner:Planner", "path-planning-closed-loop", "calls=100"):
            "uses the env's evaluate_batch, which optgym/PathPlanning2DClosedLoop-v0 does not",
        ("cem", "path-planning-closed-loop", "calls=100"): "works on optgym/PathPlanning2D-v0",
    }  # fmt: skip
    for (agent, task, budget), needle in cases.items():
        argv = ["bench", task, "--agent", agent, "--budget", budget, "--benchmark", MAP,
                "--results", str(results), "--no-progress"]  # fmt: skip
        assert main(argv) == 2, agent
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, err
        assert not results.exists()  # nothing ran


def test_an_agent_called_on_the_wrong_env_says_so() -> None:
    from optgym.agents import make_agent

    env = gym.make("optgym/PassOrdering-v0")
    try:
        with pytest.raises(ValueError, match="cem works on optgym/PathPlanning2D-v0, not on"):
            make_agent("cem").solve(env, "generator://csmith-v0/1", Budget(calls=10))
    finally:
        env.close()


def test_a_stochastic_entry_with_one_seed_is_refused_before_it_runs(tmp_path: Path) -> None:
    from optgym.leaderboard.run import run_entry

    with pytest.raises(ValueError, match="is stochastic: its entry needs at least 3 seeds"):
        run_entry(TASK, "cem", tmp_path / "entry", seeds=[0], progress=False)
    assert not (tmp_path / "entry").exists()


# --- 8. validate says what it was given ---------------------------------------------------


def test_validate_on_a_submission_or_a_non_results_file(tmp_path: Path, capsys) -> None:
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "manifest.json").write_text("{}")
    (entry / "results.jsonl").write_text("")
    assert main(["validate", str(entry)]) == 2
    assert f"optgym leaderboard verify {entry}" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("just\nsome\ntext\n")
    assert main(["validate", str(notes)]) == 2
    err = capsys.readouterr().err
    assert "is not a results file: none of its 3 lines is a result line" in err
