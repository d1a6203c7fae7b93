"""The tamper fuzzer on real result lines of every env: changing any field of a line must
make validate refuse it, with a reason and never a traceback.

Lines are made by the runner on small real instances (small budgets, so that replays are
quick). With the integrity tag every tampering fails. Without it (``accept_untagged``, as
for lines from another installation) the replay alone must refuse every change except those
to what a replay cannot see (the seed, the times, the budget used, measured extras), which
the tag covers. The same holds for a line re-tagged by someone holding the key.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from optgym.bench import run_bench
from optgym.budget import Budget
from optgym.envs import problems
from optgym.tamper import fuzz
from optgym.tasks import get_task

# task: (agent, benchmark, budget); one task per env, on a small instance
EPISODES = {
    "pass-ordering": ("random", "generator://csmith-v0/1", "calls=20"),
    "path-planning": ("cem", "benchmark://nav2d-v0/maze", "calls=200"),
    "path-planning-closed-loop": ("ppo", "benchmark://nav2d-v0/maze", "calls=600"),
    "lns-vertex-cover": ("random-lns", "generator://vertex-cover-s-v0/0", "seconds=8"),
    "schedule-search": ("schedule-random", "benchmark://halide-ops-v0/matmul-192", "calls=3"),
    "data-selection-digits": ("random-select", "generator://digits-noisy-v0/0", "calls=5"),
    "surco-routes": ("surco-hybrid", "generator://routes-v0/5", "calls=20"),
    "surco-sharding": ("surco-zero", "generator://sharding-v0/11", "calls=20"),
}
# Tamperings the replay is asked to check per line (re-tagged): spread over the fields, to
# keep the suite quick (`python -m optgym.tamper --retag` runs them all); a data-selection
# replay retrains five times, an LNS replay reads its instance and checks its incumbent.
RETAGGED_SAMPLE = {"data-selection-digits": 12, "lns-vertex-cover": 30}
# What a replay cannot see: only the integrity tag protects these fields (a learned agent's
# own training figures among them).
UNSEEN = ("walltime", "budget_used.", "seed", "state.seed", "state.walltime", "state.extras.train_",
          "fingerprint")  # fmt: skip


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    out = {}
    folder = tmp_path_factory.mktemp("tamper")
    for task, (agent, benchmark, budget) in EPISODES.items():
        rows = run_bench(
            task, [agent], [benchmark], [0], Budget.parse(budget), folder / f"{task}.jsonl",
            progress=False,
        )  # fmt: skip
        assert [r["error"] for r in rows] == [None], rows[0]["error"]
        out[task] = rows
    return out


def _unseen(task: str, what: str) -> bool:
    """Whether the tampering ``what`` changed only what a replay cannot check."""
    where, _, change = what.removeprefix(f"{task}: ").partition(": ")
    if where.startswith(UNSEEN) or where in {u.rstrip(".") for u in UNSEEN}:
        return True
    env_class = next(
        e.env_class()
        for e in problems()[get_task(task).problem].envs
        if e.id == get_task(task).env_id
    )
    # A planning search's best-so-far curve is its own account of the search: replay checks
    # that it climbs, fits in the calls used and ends at the state's reward, not each point.
    if task.startswith("path-planning") and where.startswith(
        ("state.extras.trace.", "state.extras.evaluations")
    ):
        return True
    measured = {f"state.extras.{k}" for k in env_class.measured_extras}
    if any(where == m or where.startswith(m + ".") for m in measured):
        return True
    # 600.0 written as 600 is the same number: nothing a report shows changes
    if change.startswith("the same number"):
        return True
    # Another action that the replay shows earns the same reward (an LLVM pass that does
    # nothing to this program, a data-selection score that changes no choice): a valid
    # episode, with the score the line claims.
    # LNS records neighborhood sizes it does not replay: the trace and incumbent are checked.
    return where == "state.actions" or where.startswith("state.actions.")


@pytest.mark.parametrize("task", sorted(EPISODES))
def test_every_tampered_line_fails_validate(task: str, lines: dict[str, list[dict]]):
    budget = Budget.parse(EPISODES[task][2])
    report = fuzz(lines[task], budget=budget)
    assert report.genuine_passed == report.genuine == 1
    assert report.fuzzed > 50
    assert report.crashed == []
    assert report.passed == []
    assert report.rejected == report.fuzzed


@pytest.mark.parametrize("task", sorted(EPISODES))
def test_replay_refuses_every_change_it_can_see(task: str, lines: dict[str, list[dict]]):
    budget = Budget.parse(EPISODES[task][2])
    report = fuzz(
        lines[task], retag=True, budget=budget,
        limit=RETAGGED_SAMPLE.get(task, 60),
    )  # fmt: skip
    assert report.genuine_passed == 1
    assert report.crashed == []
    score = lines[task][0]["score"]
    seen = [
        (what, message)
        for what, message in report.passed
        if not _unseen(task, what) and not _within_score_tolerance(task, what, score)
    ]
    assert seen == []
    assert report.rejected >= math.ceil(0.6 * report.fuzzed)


def _within_score_tolerance(task: str, what: str, score: float) -> bool:
    """Whether ``what`` changed the line's score by less than the task's tolerance (a
    timing task's score is a measurement: a replay matches it within ``score_rtol``, and only
    the integrity tag protects the digits)."""
    from optgym.tamper import variants

    rtol = get_task(task).score_rtol
    where, _, change = what.removeprefix(f"{task}: ").partition(": ")
    if where != "score" or not rtol:
        return False
    new = dict(variants(score)).get(change)
    number = isinstance(new, (int, float)) and not isinstance(new, bool)
    return number and math.isclose(new, score, rel_tol=rtol)


def test_fuzzer_cli_prints_its_figures(lines: dict[str, list[dict]], tmp_path: Path, capsys):
    from optgym.tamper import main

    path = tmp_path / "po.jsonl"
    path.write_text("".join(__import__("json").dumps(r) + "\n" for r in lines["pass-ordering"]))
    assert main([str(path), "--limit", "20"]) == 0
    out = capsys.readouterr().out
    assert "lines_fuzzed: 20" in out
    assert "tampered_passed: 0 " in out and "tracebacks: 0 " in out
