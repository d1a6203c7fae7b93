"""The runner, the validator, the report and the ``optgym`` command line, on small real
Csmith programs (about 200 LLVM instructions each)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from optgym.agents import AGENTS
from optgym.bench import benchmark_uris, run_bench
from optgym.budget import Budget
from optgym.cli import main
from optgym.report import format_table, plot, summarize
from optgym.validate import validate_results

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
    assert main(["validate", str(results)]) == 0
    assert "4 passed, 0 failed" in capsys.readouterr().out
    assert all(ok for _, ok, _ in validate_results(results))


def _rewrite_line(path: Path, lineno: int, change) -> None:
    text = lines(path)
    row = json.loads(text[lineno - 1])
    change(row)
    text[lineno - 1] = json.dumps(row)
    path.write_text("\n".join(text) + "\n")


def test_tampered_reward_fails_naming_the_line(results: Path, capsys: pytest.CaptureFixture):
    def raise_reward(row: dict) -> None:
        row["state"]["reward"] += 0.25
        row["reward"] += 0.25

    _rewrite_line(results, 2, raise_reward)
    assert main(["validate", str(results)]) == 1
    out = capsys.readouterr().out
    assert f"{results}:2: claimed reward" in out
    assert "3 passed, 1 failed" in out


def test_tampered_score_fails(results: Path):
    def raise_score(row: dict) -> None:
        row["score"] *= 1.1

    _rewrite_line(results, 3, raise_score)
    checked = validate_results(results)
    assert [n for n, ok, _ in checked if not ok] == [3]
    assert "claimed score" in checked[2][2]


def test_malformed_line_fails_naming_the_line(results: Path, capsys: pytest.CaptureFixture):
    with results.open("a") as f:
        f.write('{"task": "pass-ordering", "agent": \n')
    assert main(["validate", str(results)]) == 1
    out = capsys.readouterr().out
    assert f"{results}:5: malformed JSON" in out
    assert "4 passed, 1 failed" in out


def test_validate_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main(["validate", str(tmp_path / "nothing.jsonl")]) == 1
    assert "nothing.jsonl" in capsys.readouterr().err


class _Broken:
    name = "broken"

    def solve(self, env, benchmark, budget, seed=None):
        raise RuntimeError("agent fell over")


class _Liar:
    """Claims a better reward than its actions earn."""

    name = "liar"

    def solve(self, env, benchmark, budget, seed=None):
        result = AGENTS["oz"][0]().solve(env, benchmark, budget, seed)
        result.state.reward += 1.0
        return result


def test_agent_errors_become_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(AGENTS, "broken", (_Broken, "raises"))
    monkeypatch.setitem(AGENTS, "liar", (_Liar, "claims too much"))
    path = tmp_path / "r.jsonl"
    rows = run_bench(TASK, ["broken", "liar", "oz"], SMALL[:1], [0], BUDGET, path, progress=False)
    by_agent = {r["agent"]: r for r in rows}
    assert "agent fell over" in by_agent["broken"]["error"]
    assert by_agent["broken"]["score"] is None
    assert "replay does not reproduce" in by_agent["liar"]["error"]
    assert by_agent["oz"]["score"] == 1.0  # the run went on after the failures
    checked = validate_results(path)
    assert [ok for _, ok, _ in checked] == [False, False, True]
    assert "agent fell over" in checked[0][2]


def test_process_pool_gives_the_same_lines(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    rows = run_bench(TASK, ["oz"], SMALL, [0], BUDGET, path, workers=2, progress=False)
    assert sorted(r["benchmark"] for r in rows) == sorted(SMALL)
    assert all(r["score"] == 1.0 for r in rows)
    assert all(ok for _, ok, _ in validate_results(path))


def test_ray_executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Without Ray: a clear error; with a stand-in Ray: the same lines as in-process."""
    path = tmp_path / "r.jsonl"
    if "ray" not in sys.modules:
        monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
        with pytest.raises(RuntimeError, match=r"pip install optgym\[ray\]"):
            run_bench(TASK, ["oz"], SMALL, [0], BUDGET, path, executor="ray", progress=False)
    ray = types.ModuleType("ray")
    ray.is_initialized = lambda: False
    ray.init = lambda address=None: None
    ray.remote = lambda f: types.SimpleNamespace(remote=lambda *a: f(*a))
    ray.wait = lambda refs, num_returns=1: (refs[:num_returns], refs[num_returns:])
    ray.get = lambda ref: ref
    monkeypatch.setitem(sys.modules, "ray", ray)
    rows = run_bench(TASK, ["oz"], SMALL, [0], BUDGET, path, executor="ray", progress=False)
    assert [r["score"] for r in rows] == [1.0, 1.0]


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
    from optgym.datasets.llvm.debian import build

    build(progress=False)  # idempotent: a no-op once the four programs are in the cache
    uris = benchmark_uris(TASK, ["debian-v0"], "test", 10)
    assert len(uris) == 4 and uris[0] == "benchmark://debian-v0/bzip2"
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
    from optgym.cli import _parse_seeds

    assert _parse_seeds("0-3,7,2") == [0, 1, 2, 3, 7]
    assert _parse_seeds("4") == [4]


def test_cli_envs_and_datasets_list(capsys: pytest.CaptureFixture):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "optgym/PassOrdering-v0" in out and "Autophase" in out and "IrInstructionCountOz" in out
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for text in ("generator://csmith-v0", "generator://llvm-stress-v0", "benchmark://debian-v0",
                 "test: seeds [0, 1000)", "license", "provenance", "built:"):  # fmt: skip
        assert text in out


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
