"""The runner, the validator, the report and the ``optgym`` command line, on small real
Csmith programs (about 200 LLVM instructions each)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optgym.bench import benchmark_uris, run_bench
from optgym.budget import Budget
from optgym.cli import main
from optgym.report import format_table, plot, summarize
from optgym.result_line import line_tag, untimed
from optgym.validate import PASSED, validate_results

TASK = "pass-ordering"
SMALL = ["generator://csmith-v0/5", "generator://csmith-v0/13"]
BUDGET = Budget(calls=30)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results file of -Oz and random search on two small programs, one seed."""
    path = tmp_path_factory.mktemp("bench") / "results.jsonl"
    run_bench(TASK, ["oz", "random"], SMALL, [0], BUDGET, path, progress=False)
    return path


@pytest.fixture
def results(bench_file: Path, tmp_path: Path) -> Path:
    """A private copy of the module's results file, free to damage."""
    return Path(shutil.copy(bench_file, tmp_path / "results.jsonl"))


def test_bench_writes_one_scored_line_per_episode(bench_file: Path):
    rows = [json.loads(line) for line in lines(bench_file)]
    assert len(rows) == 4
    assert {(r["agent"], r["benchmark"], r["seed"]) for r in rows} == {
        (a, b, 0) for a in ("oz", "random") for b in SMALL
    }
    for r in rows:
        assert r["error"] is None
        assert r["score"] > 0
        assert r["budget"] == "calls=30"
        assert r["state"]["benchmark"] == r["benchmark"]
        assert r["reward"] == r["state"]["reward"]
    for r in rows:
        if r["agent"] == "oz":
            assert r["score"] == 1.0  # the reference scores exactly 1 against itself
        else:
            assert r["budget_used"]["calls"] <= 30


def test_rerun_resumes_without_new_lines(results: Path):
    before = results.read_bytes()
    rows = run_bench(TASK, ["oz", "random"], SMALL, [0], BUDGET, results, progress=False)
    assert results.read_bytes() == before
    assert len(rows) == 4


def test_line_cut_mid_write_is_repaired(results: Path):
    text = results.read_text()
    kept = text.splitlines(keepends=True)[:3]
    cut = text.splitlines(keepends=True)[3]
    results.write_text("".join(kept) + cut[: len(cut) // 2])
    with pytest.warns(UserWarning, match="cut mid-write"):
        rows = run_bench(TASK, ["oz", "random"], SMALL, [0], BUDGET, results, progress=False)
    assert len(rows) == 4
    assert lines(results)[:3] == [k.rstrip("\n") for k in kept]
    assert len(lines(results)) == 4
    assert all(json.loads(line)["error"] is None for line in lines(results))


def test_validate_passes_on_bench_results(results: Path, capsys: pytest.CaptureFixture):
    assert main(["validate", str(results), "--budget", "calls=30"]) == 0
    assert "4 passed, 0 failed" in capsys.readouterr().out
    assert all(verdict == PASSED for _, verdict, _ in validate_results(results, BUDGET))


def test_validate_rejects_another_budget_than_the_task(results: Path):
    checked = validate_results(results)  # the task's budget is calls=2000
    assert all(v != PASSED and "differs from the task's 'calls=2000'" in m for _, v, m in checked)


def _rewrite_line(path: Path, lineno: int, change, retag: bool = True) -> None:
    """Change one line; re-tag it (as someone holding this installation's key could) so
    that validate's replay, not the tag, must catch the change."""
    text = lines(path)
    row = json.loads(text[lineno - 1])
    change(row)
    if retag:
        row["tag"] = line_tag(row)
    text[lineno - 1] = json.dumps(row)
    path.write_text("\n".join(text) + "\n")


def test_a_changed_line_fails_its_integrity_tag(results: Path, capsys: pytest.CaptureFixture):
    def later(row: dict) -> None:
        row["walltime"] += 0.25  # nothing a replay can see
        row["budget_used"]["seconds"] += 0.25

    _rewrite_line(results, 2, later, retag=False)
    assert main(["validate", str(results), "--budget", "calls=30"]) == 1
    out = capsys.readouterr().out
    assert f"{results}:2: the line has a tag that does not match" in out
    assert main(["validate", str(results), "--budget", "calls=30", "--accept-untagged"]) == 0


def test_tampered_reward_fails_naming_the_line(results: Path, capsys: pytest.CaptureFixture):
    def raise_reward(row: dict) -> None:
        row["state"]["reward"] += 0.25
        row["reward"] += 0.25

    _rewrite_line(results, 2, raise_reward)
    assert main(["validate", str(results), "--budget", "calls=30"]) == 1
    out = capsys.readouterr().out
    assert f"{results}:2: replay failed: claimed reward" in out
    assert "3 passed, 1 failed" in out


def test_tampered_score_fails(results: Path):
    def raise_score(row: dict) -> None:
        row["score"] *= 1.1

    _rewrite_line(results, 3, raise_score)
    checked = validate_results(results, BUDGET)
    assert [n for n, verdict, _ in checked if verdict != PASSED] == [3]
    assert "claimed score" in checked[2][2]


def test_malformed_line_fails_naming_the_line(results: Path, capsys: pytest.CaptureFixture):
    with results.open("a") as f:
        f.write('{"task": "pass-ordering", "agent": \n')
    assert main(["validate", str(results), "--budget", "calls=30"]) == 1
    out = capsys.readouterr().out
    assert f"{results}:5: malformed JSON" in out
    assert "4 passed, 1 failed" in out


def test_validate_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main(["validate", str(tmp_path / "nothing.jsonl")]) == 1
    assert "nothing.jsonl" in capsys.readouterr().err


PLUGINS = '''
"""Agents written outside the package, for the plug-in tests."""
from optgym.agents import make_agent


class Broken:
    problems = ("pass-ordering",)

    def solve(self, env, benchmark, budget, seed=None):
        raise RuntimeError("agent fell over")


class Liar:
    """Claims a better reward than its actions earn."""

    problems = ("pass-ordering",)

    def solve(self, env, benchmark, budget, seed=None):
        result = make_agent("oz").solve(env, benchmark, budget, seed)
        result.state.reward += 1.0
        return result


class Greedy2:
    """Two greedy steps on forks, each the best single pass: a plug-in that does real work."""

    problems = ("optgym/PassOrdering-v0",)

    def __init__(self, steps: int = 2):
        self.steps = steps

    def solve(self, env, benchmark, budget, seed=None):
        base = env.unwrapped
        base.reset(seed=seed, options={"benchmark": benchmark})
        for _ in range(self.steps):
            gains = []
            for action in range(8):
                trial = base.fork()
                gains.append(trial.step(action)[1])
                trial.close()
            env.step(max(range(8), key=gains.__getitem__))
        return _result(base)


class Spender:
    """Ignores its budget: steps until the env refuses."""

    problems = ("pass-ordering",)

    def solve(self, env, benchmark, budget, seed=None):
        env.reset(options={"benchmark": benchmark})
        while True:
            env.step(0)


class Hog:
    """Holds more and more memory, as a runaway backend would."""

    problems = ("pass-ordering",)

    def solve(self, env, benchmark, budget, seed=None):
        import time

        blocks = []
        while True:
            blocks.append(bytearray(64 * 2**20))
            for i in range(0, len(blocks[-1]), 4096):
                blocks[-1][i] = 1
            time.sleep(0.05)


class Sleeper:
    """Never returns."""

    problems = ("pass-ordering",)

    def solve(self, env, benchmark, budget, seed=None):
        import time

        time.sleep(3600)


class Elsewhere:
    problems = ("path-planning",)

    def solve(self, env, benchmark, budget, seed=None):
        raise AssertionError("never run")


def _result(base):
    from optgym.agents import Result

    return Result(state=base.state)
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module ``optgym_test_plugins`` in a folder outside the package, importable."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "optgym_test_plugins.py").write_text(PLUGINS)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(folder)
    return "optgym_test_plugins"


def test_agent_errors_become_lines(tmp_path: Path, plugins: str):
    path = tmp_path / "r.jsonl"
    agents = [f"{plugins}:Broken", f"{plugins}:Liar", "oz"]
    rows = run_bench(TASK, agents, SMALL[:1], [0], BUDGET, path, progress=False)
    by_agent = {r["agent"]: r for r in rows}
    assert "agent fell over" in by_agent[f"{plugins}:Broken"]["error"]
    assert by_agent[f"{plugins}:Broken"]["score"] is None
    assert "replay does not reproduce" in by_agent[f"{plugins}:Liar"]["error"]
    assert by_agent["oz"]["score"] == 1.0  # the run went on after the failures
    checked = validate_results(path, BUDGET)
    assert [verdict for _, verdict, _ in checked] == ["failed", "failed", "passed"]
    assert "errored" in checked[0][2]


def test_plugin_agent_runs_on_workers_and_validates(tmp_path: Path, plugins: str):
    path = tmp_path / "r.jsonl"
    spec = f"{plugins}:Greedy2:steps=2"
    rows = run_bench(TASK, [spec], SMALL, [0], BUDGET, path, workers=2, progress=False)
    assert [r["error"] for r in rows] == [None, None]
    assert {r["agent"] for r in rows} == {spec}
    assert all(r["budget_used"]["calls"] == 18 for r in rows)  # 8 forks + 1 step, twice
    assert all(v == PASSED for _, v, _ in validate_results(path, BUDGET))


def test_plugin_through_the_cli_and_an_entry_point(
    tmp_path: Path, plugins: str, capsys: pytest.CaptureFixture
):
    from optgym.agents import registry

    dist = tmp_path / "plugins" / "optgym_test_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: optgym-test-plugins\n")
    (dist / "entry_points.txt").write_text(f"[optgym.agents]\ngreedy2 = {plugins}:Greedy2\n")
    registry.cache_clear()  # read the entry points again
    try:
        out_file = tmp_path / "r.jsonl"
        argv = ["bench", TASK, "--agent", "greedy2", "--agent", "greedy2:steps=1",
                "--agent", f"{plugins}:Greedy2", "--benchmark", SMALL[0], "--budget", "calls=30",
                "--results", str(out_file), "--plot", str(tmp_path / "r.png"), "--no-progress",
                "--workers", "2"]  # fmt: skip
        assert main(argv) == 0, capsys.readouterr().err
        rows = [json.loads(line) for line in lines(out_file)]
        assert {r["agent"] for r in rows} == {"greedy2", "greedy2:steps=1", f"{plugins}:Greedy2"}
        assert all(r["error"] is None for r in rows), rows
        capsys.readouterr()
        assert main(["validate", str(out_file), "--budget", "calls=30"]) == 0
        assert "3 passed, 0 failed" in capsys.readouterr().out
        assert main(["agents", "--problem", "pass-ordering"]) == 0
        out = capsys.readouterr().out
        assert "greedy2:" in out and "steps (int, default 2)" in out
    finally:
        registry.cache_clear()


def test_overspending_agent_is_stopped_and_its_line_says_so(tmp_path: Path, plugins: str):
    path = tmp_path / "r.jsonl"
    (row,) = run_bench(TASK, [f"{plugins}:Spender"], SMALL[:1], [0], BUDGET, path, progress=False)
    assert row["error"].startswith("BudgetExceeded: over budget, the agent was stopped")
    assert row["budget_used"]["calls"] == 30 and row["score"] is None


def test_mismatched_agent_is_refused_before_anything_runs(tmp_path: Path, plugins: str):
    path = tmp_path / "r.jsonl"
    for agent in ("cem", f"{plugins}:Elsewhere"):
        with pytest.raises(ValueError, match="works on .*not on task 'pass-ordering'"):
            run_bench(TASK, [agent], SMALL[:1], [0], BUDGET, path, progress=False)
    assert not path.exists()
    with pytest.raises(ValueError, match="works on pass-ordering"):
        run_bench("path-planning", ["oz"], ["benchmark://nav2d-v0/open"], [0], BUDGET, path)


def test_errored_episodes_are_retried_on_rerun(tmp_path: Path, plugins: str):
    path = tmp_path / "r.jsonl"
    run_bench(TASK, ["oz"], SMALL, [0], BUDGET, path, progress=False)
    first = lines(path)
    row = json.loads(first[1])
    row["error"], row["score"] = "worker process died (killed)", None
    path.write_text(first[0] + "\n" + json.dumps(row) + "\n")
    kept = run_bench(TASK, ["oz"], SMALL, [0], BUDGET, path, progress=False, retry_errors=False)
    assert len(lines(path)) == 2 and kept[1]["error"]
    rows = run_bench(TASK, ["oz"], SMALL, [0], BUDGET, path, progress=False)
    assert len(lines(path)) == 3  # the errored episode ran again; its old line stays
    assert [r["error"] for r in rows] == [None, None]
    checked = validate_results(path, BUDGET)
    assert [v for _, v, _ in checked] == ["passed", "superseded", "passed"]


def test_local_and_inline_executors_give_the_same_lines(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    rows = run_bench(TASK, ["oz"], SMALL, [0], BUDGET, path, workers=2, progress=False)
    inline = run_bench(
        TASK, ["oz"], SMALL, [0], BUDGET, tmp_path / "i.jsonl", executor="inline", progress=False
    )
    assert sorted(map(untimed, rows), key=str) == sorted(map(untimed, inline), key=str)
    assert sorted(r["benchmark"] for r in rows) == sorted(SMALL)
    assert all(r["score"] == 1.0 for r in rows)
    assert all(v == PASSED for _, v, _ in validate_results(path, BUDGET))


def test_ray_executor_without_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Without Ray installed: a clear error before the results file is touched (the real
    cluster runs in tests/test_ray.py)."""
    path = tmp_path / "r.jsonl"
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(RuntimeError, match=r"pip install optgym\[ray\]"):
        run_bench(TASK, ["oz"], SMALL, [0], BUDGET, path, executor="ray", progress=False)
    assert not path.exists()


def test_benchmark_uris():
    assert benchmark_uris(TASK, ["generator://csmith-v0"], "test", 3) == [
        "generator://csmith-v0/0", "generator://csmith-v0/1", "generator://csmith-v0/2"
    ]  # fmt: skip
    assert benchmark_uris(TASK, ["llvm-stress-v0"], "validation", 1) == [
        "generator://llvm-stress-v0/1000"
    ]
    assert benchmark_uris(TASK, ["generator://csmith-v0/5"], "test", 9) == [SMALL[0]]
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        benchmark_uris(TASK, None, "dev", 1)
    with pytest.raises(ValueError, match="unknown dataset 'nope-v0'"):
        benchmark_uris(TASK, ["nope-v0"], "test", 1)


def test_unbuilt_debian_says_how_to_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="optgym datasets build debian-v0"):
        benchmark_uris(TASK, ["benchmark://debian-v0"], "test", 2)


def test_debian_gives_what_it_has():
    from optgym.datasets.passes.debian import build

    build(progress=False)  # idempotent: a no-op once the ten programs are in the cache
    uris = benchmark_uris(TASK, ["debian-v0"], "test", 20)
    assert len(uris) == 10 and uris[0] == "benchmark://debian-v0/bzip2"
    assert benchmark_uris(TASK, ["debian-v0"], "train", 10) == []


def test_report(bench_file: Path, tmp_path: Path):
    rows = [json.loads(line) for line in lines(bench_file)]
    summary = {s["agent"]: s for s in summarize(rows)}
    assert summary["oz"]["geomean"] == pytest.approx(1.0)
    assert summary["random"]["episodes"] == 2 and summary["random"]["errors"] == 0
    assert summary["random"]["mean_calls"] <= 30
    table = format_table(list(summary.values()), "score vs -Oz")
    assert table.splitlines()[0] == "score: score vs -Oz"
    assert "oz" in table and "random" in table and "1.0000" in table
    png = plot(rows, tmp_path / "plot.png", "score vs -Oz")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bench_prints_table_and_writes_plot(tmp_path: Path, capsys: pytest.CaptureFixture):
    out_file, png = tmp_path / "r.jsonl", tmp_path / "r.png"
    argv = ["bench", TASK, "--agent", "oz", "--benchmark", SMALL[0], "--budget", "calls=30",
            "--results", str(out_file), "--plot", str(png), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "geomean" in out and str(out_file) in out and str(png) in out
    assert len(lines(out_file)) == 1 and png.exists()


@pytest.mark.parametrize(
    "args, bad",
    [
        (["bench", "no-such-task", "--agent", "oz"], "no-such-task"),
        (["bench", TASK, "--agent", "zz"], "zz"),
        (["bench", TASK, "--agent", "oz", "--dataset", "generator://nope-v0"], "nope-v0"),
        (["bench", TASK, "--agent", "oz", "--split", "dev"], "dev"),
        (["bench", TASK, "--agent", "oz", "--budget", "cals=3"], "cals=3"),
        (["bench", TASK, "--agent", "oz", "--seeds", "0,x"], "'x'"),
        (["bench", TASK, "--agent", "oz", "--seeds", "5-2"], "'5-2'"),
        (["bench", TASK, "--agent", "oz", "--executor", "dask"], "dask"),
        (["datasets", "build", "csmith-v9"], "csmith-v9"),
    ],
)
def test_cli_bad_input_exits_2(args: list[str], bad: str, capsys: pytest.CaptureFixture):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert bad in err
    assert "allowed" in err or "expected" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_seed_ranges():
    from optgym.cli_options import parse_seeds

    assert parse_seeds("0-3,7,2") == [0, 1, 2, 3, 7]
    assert parse_seeds("4") == [4]


def test_cli_envs_and_datasets_list(capsys: pytest.CaptureFixture):
    assert main(["envs"]) == 0  # fast: no env is made
    out = capsys.readouterr().out
    assert "optgym/PassOrdering-v0" in out and "action space:" not in out
    assert "--spaces" in out
    assert main(["envs", "--spaces"]) == 0
    out = capsys.readouterr().out
    assert "optgym/PassOrdering-v0" in out and "Autophase" in out and "IrInstructionCountOz" in out
    assert "action space:       Discrete(124)" in out and "work unit: compilations" in out
    assert "Box(0..9.22337e+18, (56,), int64)" in out
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for text in ("generator://csmith-v0", "generator://llvm-stress-v0", "benchmark://debian-v0",
                 "test: seeds [0, 1000)", "license", "provenance", "built:"):  # fmt: skip
        assert text in out


def test_cli_version_tasks_and_agents(capsys: pytest.CaptureFixture):
    import optgym

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"optgym {optgym.__version__}"
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for text in (
        "pass-ordering\n",
        "budget:   calls=2000  (calls are compilations)",
        "lns-set-cover",
        "schedule-search",
        "path-planning",
        "data-selection-digits",
    ):
        assert text in out
    assert main(["agents"]) == 0
    out = capsys.readouterr().out
    assert "pass-ordering:" in out and "path-planning:" in out
    assert "episode_length (int, default 32): actions per random episode" in out
    assert main(["agents", "--problem", "nope"]) == 2


def _tamper(results: Path, change) -> str:
    """Change line 2 and return validate's message for it."""
    _rewrite_line(results, 2, change)
    checked = validate_results(results, BUDGET)
    assert [v for _, v, _ in checked] == ["passed", "failed", "passed", "passed"]
    return checked[1][2]


def test_validate_rejects_overspent_budget(results: Path):
    def overspend(row: dict) -> None:
        row["budget_used"]["calls"] = 31

    assert "exceeds the budget's 30" in _tamper(results, overspend)


def test_validate_rejects_a_benchmark_outside_the_split(results: Path):
    def move(row: dict) -> None:
        row["benchmark"] = row["state"]["benchmark"] = "generator://csmith-v0/1005"

    message = _tamper(results, move)
    assert "is in the validation split, the task scores test" in message
    checked = validate_results(results, BUDGET, split="any")  # then the replay tells
    assert checked[1][1] == "failed" and "replay" in checked[1][2]


def test_validate_rejects_another_config(results: Path):
    def reconfigure(row: dict) -> None:
        row["state"]["config"]["reward_space"] = "IrInstructionCount"

    assert "config differs from the task's in: reward_space" in _tamper(results, reconfigure)


def test_validate_rejects_a_replay_that_needs_more_work(results: Path):
    def underreport(row: dict) -> None:
        row["budget_used"]["calls"] = 0
        row["budget_used"]["steps"] = 100

    assert "the replay spent" in _tamper(results, underreport)


def test_sigkill_loses_nothing_written(tmp_path: Path):
    """Kill a run (and its LLVM workers) after its first line; the rerun finishes the rest."""
    path = tmp_path / "killed.jsonl"
    argv = [sys.executable, "-m", "optgym.cli", "bench", TASK, "--agent", "random",
            "--budget", "calls=200", "--results", str(path), "--plot", str(tmp_path / "k.png"),
            "--no-progress"]  # fmt: skip
    for seed in (5, 13, 14, 21):
        argv += ["--benchmark", f"generator://csmith-v0/{seed}"]
    proc = subprocess.Popen(
        argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    try:
        while not (path.exists() and path.read_bytes().count(b"\n") >= 1):
            assert proc.poll() is None or path.exists(), "the run ended without writing"
            assert time.monotonic() < deadline, "no result line within 60 s"
            time.sleep(0.002)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have finished already
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = lines(path)
    assert 1 <= len(before) <= 4
    for line in before:
        json.loads(line)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = lines(path)
    assert len(after) == 4
    assert after[: len(before)] == before  # the finished episodes were not run again
    assert {json.loads(line)["benchmark"] for line in after} == {
        f"generator://csmith-v0/{s}" for s in (5, 13, 14, 21)
    }


def test_repair_results_edges(results: Path):
    from optgym.bench import repair_results

    first = lines(results)[0]
    results.write_text(first)  # whole line, killed before its newline: kept
    repair_results(results)
    assert results.read_text() == first + "\n"
    results.write_text(first[:40])  # nothing but a cut line: removed
    with pytest.warns(UserWarning, match="cut mid-write"):
        repair_results(results)
    assert results.read_text() == ""


def test_validate_reads_past_bad_bytes_and_imports_nothing_a_line_names(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A line of non-UTF-8 bytes fails alone; a line naming a module as its agent is checked
    without importing that module, or looking it up (a results file must not run code)."""
    folder = tmp_path / "mods"
    folder.mkdir()
    marker = tmp_path / "imported"
    (folder / "optgym_side_effect.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(folder))
    text = lines(results)
    row = json.loads(text[1])
    row["agent"] = "optgym_side_effect:Agent"
    row["tag"] = line_tag(row)
    with results.open("wb") as f:
        f.write((text[0] + "\n").encode())
        f.write(b'{"task": "pass-ordering", "agent": "\xff\xfe"}\n')
        f.write((json.dumps(row) + "\n").encode())
    checked = validate_results(results, BUDGET)
    assert [v for _, v, _ in checked] == ["passed", "failed", "passed"]  # the replay holds
    assert checked[1][2] == "malformed JSON: not UTF-8 (byte 36)"
    assert not marker.exists()
    # a plug-in is neither imported nor looked up (validate is no probe of what is
    # installed): the replay of its state is what counts
    row["agent"] = "no_such_module_xyz:Agent"
    row["tag"] = line_tag(row)
    results.write_text(json.dumps(row) + "\n")
    ((_, verdict, message),) = validate_results(results, BUDGET)
    assert verdict == "passed", message


def test_running_aggregates_match_the_aggregate_of_the_latest_lines():
    import random

    from optgym.bench import Tally, latest_rows
    from optgym.problem import aggregate

    rng = random.Random(0)
    for how in ("geomean", "mean"):
        tally, rows, latest = Tally(["a", "b"], how), [], {}
        for _ in range(300):
            agent = rng.choice("ab")
            score = rng.choice([None, rng.uniform(0.1, 2.0), rng.uniform(-1, 0)] if how == "mean"
                               else [None, rng.uniform(0.1, 2.0)])  # fmt: skip
            row = {"task": TASK, "agent": agent, "benchmark": str(rng.randrange(20)),
                   "seed": 0, "score": score}  # fmt: skip
            key = (row["agent"], row["benchmark"])
            tally.replace(latest.get(key), row)
            latest[key] = row
            rows.append(row)
            for name in "ab":
                scores = [r["score"] for r in latest_rows(rows)
                          if r["agent"] == name and r["score"] is not None]  # fmt: skip
                expected, got = aggregate(scores, how), tally.value(name)
                assert (math.isnan(expected) and math.isnan(got)) or abs(expected - got) < 1e-9
    tally = Tally(["a"], "geomean")
    with pytest.raises(ValueError, match=r"the line of a on b1 \(seed 3\) scored 0\.0"):
        tally.replace(None, {"agent": "a", "benchmark": "b1", "seed": 3, "score": 0.0})
    assert math.isnan(tally.value("a"))  # the bad line was not counted


def test_episodes_past_their_time_or_memory_get_an_error_line(tmp_path: Path, plugins: str):
    path = tmp_path / "r.jsonl"
    agents = [f"{plugins}:Hog", f"{plugins}:Sleeper", "oz"]
    rows = run_bench(TASK, agents, SMALL[:1], [0], BUDGET, path, workers=2, timeout=5,
                     memory_mb=600, progress=False)  # fmt: skip
    by_agent = {r["agent"]: r for r in rows}
    over = r"CallFailed: (used \d+ MiB, over|reached) the per-call memory limit of 600 MiB"
    assert re.search(over, by_agent[f"{plugins}:Hog"]["error"])
    assert by_agent[f"{plugins}:Sleeper"]["error"] == (
        "CallFailed: timed out after 5 s (the per-call limit)"
    )
    assert by_agent["oz"]["score"] == 1.0 and len(lines(path)) == 3
    verdicts = {
        json.loads(lines(path)[n - 1])["agent"]: v for n, v, _ in validate_results(path, BUDGET)
    }
    assert verdicts == {f"{plugins}:Hog": "failed", f"{plugins}:Sleeper": "failed", "oz": PASSED}


def test_the_runner_takes_only_a_well_formed_line_of_the_episode_it_asked_for(tmp_path: Path):
    from concurrent.futures import Future

    from optgym.bench import episode_rows
    from optgym.executors import OptGymExecutor

    (good,) = run_bench(TASK, ["oz"], SMALL[:1], [0], BUDGET, tmp_path / "r.jsonl",
                        executor="inline", progress=False)  # fmt: skip
    good = {k: v for k, v in good.items() if k not in ("tag", "fingerprint")}

    class Answers(OptGymExecutor):
        """Hands back a given answer, as a forged pipe of an episode's process would."""

        def __init__(self, answer):
            self.answer = answer

        def submit(self, fn, /, *args, **kwargs):
            future: Future = Future()
            future.set_result(self.answer)
            return future

    job = (TASK, "oz", SMALL[0], 0, BUDGET)
    assert next(episode_rows([job], Answers(dict(good)), check=None)) == good
    for forged in ([good], {**good, "seed": 1}, {**good, "agent": "greedy"},
                   {**good, "budget": "calls=99"}, {**good, "tag": "x"}, {**good, "score": "1"},
                   {**good, "fingerprint": {"code": "x"}}):
        (row,) = episode_rows([job], Answers(forged), check=None)  # fmt: skip
        assert row["error"].startswith("ValueError: the episode's process sent back a bad line")
        assert (row["score"], row["seed"], row["agent"]) == (None, 0, "oz")


FORGER = """
import gc
import json
import os
from multiprocessing.connection import Connection

from optgym.agents import make_agent


class Forger:
    \"\"\"Writes a well-formed line of its own episode, with a score it never earned, on its
    process's answer pipe, then leaves before the runner's own answer.\"\"\"

    problems = ("pass-ordering",)

    def solve(self, env, benchmark, budget, seed=None):
        state = make_agent("oz").solve(env, benchmark, budget, seed).state
        row = {"task": "pass-ordering", "agent": "forger:Forger", "benchmark": benchmark,
               "seed": seed, "score": 0.99 + state.reward, "reward": state.reward,
               "budget": str(budget), "budget_used": {"calls": 1, "steps": 1, "seconds": 0.1},
               "walltime": 0.1, "state": state.to_dict(), "error": None}
        pipe = [c for c in gc.get_objects() if isinstance(c, Connection) and c.writable]
        pipe[0].send_bytes(json.dumps({"ok": row}).encode())
        os._exit(0)
"""


def test_a_line_forged_on_the_pipe_is_never_tagged(tmp_path: Path, monkeypatch):
    """W2: the runner replays an episode's line in a process of its own before it tags it:
    a forged score becomes an error line, and the table never shows it."""
    from optgym.result_line import tag_matches

    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "forger.py").write_text(FORGER)
    monkeypatch.syspath_prepend(str(folder))
    rows = run_bench(TASK, ["forger:Forger", "oz"], SMALL[:1], [0], BUDGET,
                     tmp_path / "r.jsonl", progress=False)  # fmt: skip
    forged, honest = sorted(rows, key=lambda r: r["agent"] != "forger:Forger")
    assert forged["score"] is None
    assert forged["error"].startswith("ValueError: the runner's replay refused the episode's")
    assert "claimed score" in forged["error"]
    assert honest["error"] is None and honest["score"] == 1.0
    assert all(tag_matches(r) for r in rows)  # what is tagged is what was checked
