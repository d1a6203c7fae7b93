"""Hostile input to the command line and to the results-file reader: every bad budget, seed
list, path or line gives one clear line (never a traceback, never a file's contents), and a
bad line never stops the others from being checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from optgym.cli import main
from optgym.state import MAX_LINE_BYTES, json_lines
from optgym.validate import validate_results

BENCH = ["bench", "pass-ordering", "--agent", "random", "--benchmark", "generator://csmith-v0/1"]
SECRET = "hunter2-do-not-print"


@pytest.mark.parametrize(
    "option, value, why",
    [
        ("--budget", "seconds=nan", "positive finite"),
        ("--budget", "calls=inf", "positive finite"),
        ("--budget", "calls=1e400", "positive finite"),
        ("--budget", "calls=0.5", "whole number"),
        ("--budget", "calls=-1", "positive finite"),
        ("--budget", "calls=1,calls=2", "twice"),
        ("--budget", "bananas=3", "bad budget item"),
        ("--budget", "", "empty"),
        ("--seeds", "0-400000000", "more than 100000 seeds"),
        ("--seeds", "٣", "bad seed"),
        ("--seeds", "03", "bad seed"),
        ("--seeds", "1.5", "bad seed"),
        ("--seeds", "²", "bad seed"),
        ("--seeds", "9223372036854775808", "too large"),
    ],
)
def test_bad_budgets_and_seeds_are_one_line_errors(
    option: str, value: str, why: str, capsys: pytest.CaptureFixture
):
    """Refused quickly (a huge seed range is never expanded), in one line, no traceback."""
    assert main([*BENCH, option, value, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optgym bench: error: ") and why in err and err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("target", ["folder", "/dev/full", "/dev/zero"])
def test_results_must_be_a_regular_file(target: str, tmp_path: Path, capsys: pytest.CaptureFixture):
    path = tmp_path if target == "folder" else Path(target)
    args = [*BENCH, "--budget", "calls=3", "--results", str(path), "--no-progress"]
    assert main([*args, "--plot", str(tmp_path / "p.png")]) == 2
    assert "is not a regular file" in capsys.readouterr().err


def test_a_cache_that_is_a_file_is_one_line(tmp_path: Path):
    cache = tmp_path / "cache"
    cache.write_text(SECRET)
    run = subprocess.run(
        [sys.executable, "-m", "optgym.cli", *BENCH, "--budget", "calls=3", "--no-progress",
         "--results", str(tmp_path / "r.jsonl"), "--plot", str(tmp_path / "p.png")],
        env={**os.environ, "OPTGYM_CACHE": str(cache)}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and SECRET not in run.stderr + run.stdout
    assert f"cannot use {cache} as the cache" in run.stderr


def test_validate_never_echoes_a_file(tmp_path: Path, capsys: pytest.CaptureFixture):
    """Any file given as results (a password file, say) is refused as a whole, in one line
    quoting none of it."""
    path = tmp_path / "shadow"
    path.write_text(f'root:{SECRET}:19000:0:99999:7:::\n{{"{SECRET}": 1}}\n["{SECRET}"]\n')
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert "is not a results file: none of its 3 lines is a result line" in out.err
    assert len(out.err.strip().splitlines()) == 1


def test_every_malformed_line_fails_alone(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    with path.open("wb") as f:
        f.write(b"\xff\xfe\n")  # not UTF-8
        f.write(b"[" * 100_000 + b"\n")  # nested too deeply for the parser
        f.write(b'{"padding": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n')  # too long
        f.write(b"NaN\n")
        f.write(b"1" * 5000 + b"\n")  # an integer with too many digits
        f.write(b'{"task": 5}\n')  # not a string
        f.write(b"\n\n")  # blank lines are skipped
        f.write(b"{}\n")
    verdicts = validate_results(path)
    assert [n for n, _, _ in verdicts] == [1, 2, 3, 4, 5, 6, 9]
    assert all(v == "failed" for _, v, _ in verdicts)
    messages = [m for _, _, m in verdicts]
    assert messages[0] == "malformed JSON: not UTF-8 (byte 0)"
    assert messages[1] == "malformed JSON: nested too deeply"
    assert messages[2].startswith("line longer than")
    assert "a JSON object" in messages[3]
    assert all(len(m) < 400 for m in messages)


def test_json_lines_skips_an_overlong_line_without_holding_it(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"x" * (3 * MAX_LINE_BYTES) + b"\n" + b'{"a": 1}\n')
    got = list(json_lines(path))
    assert got[0][0] == 1 and got[0][1] is None and "longer than" in got[0][2]
    assert got[1] == (2, {"a": 1}, None)


def test_empty_and_missing_results_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["validate", str(empty)]) == 1
    assert "no result lines" in capsys.readouterr().out
    assert main(["validate", str(tmp_path)]) == 2  # a folder
    assert "is not a regular file" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.jsonl")]) == 1
    assert "no results file" in capsys.readouterr().err


def test_unknown_field_names_are_not_echoed(tmp_path: Path):
    from optgym.result_line import schema_problem

    row = dict.fromkeys(
        ["task", "agent", "benchmark", "seed", "score", "reward", "budget", "budget_used",
         "walltime", "state", "error"]
    )  # fmt: skip
    row[SECRET + " " * 3] = 1
    why = schema_problem(row)
    assert why is not None and SECRET not in why and "characters" in why
    assert json.dumps(why)
