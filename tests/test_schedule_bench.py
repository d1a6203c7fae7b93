"""The schedule-search task through the ``optgym`` command line: bench, table, plots,
validate, on one small Halide pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optgym.cli import main

SMALL = "benchmark://halide-ops-v0/matmul-192"


def test_bench_schedule_search_prints_speedups_and_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    # A cache of its own: the claims are measured now, as the replay is (a measurement
    # cached hours earlier, under other load, need not replay within 20% on a shared VM).
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))
    results, png = tmp_path / "r.jsonl", tmp_path / "r.png"
    status = main([
        "bench", "schedule-search", "--agent", "adams2019-b1", "--agent", "schedule-random",
        "--benchmark", SMALL, "--budget", "calls=2", "--results", str(results),
        "--plot", str(png), "--no-progress",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert {r["agent"] for r in rows} == {"adams2019-b1", "schedule-random"}
    assert all(r["error"] is None and r["score"] > 0 for r in rows), rows
    assert "x Adams2019-b32" in out and "schedule-random" in out
    assert png.exists() and (tmp_path / "r-time.png").exists()
    # The lines were made in cache mode (the task's config) and replay in cache mode,
    # reading back the measurements they made: no timing noise.
    assert all(r["state"]["config"]["mode"] == "cache" for r in rows)
    assert main(["validate", str(results), "--budget", "calls=2"]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out
