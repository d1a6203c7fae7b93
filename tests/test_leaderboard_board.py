"""The board OptGym ships: every task has entries, the fast ones re-verify by replay, and
its site shows in headless Chromium as many rows per task as the database holds."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from optgym.leaderboard.board import Board
from optgym.leaderboard.site import build_site
from optgym.leaderboard.verify import verify_submission
from optgym.tasks import all_tasks

#: Tasks whose committed entries replay in seconds, without building a stored dataset, and
#: the episodes of each entry run again in the sandbox (a closed-loop PPO episode trains for
#: its whole budget: a minute in the sandbox, so replays only).
FAST_TASKS = {"path-planning": 1, "path-planning-closed-loop": 0}


@pytest.mark.parametrize("task", FAST_TASKS)
def test_committed_entries_reverify(task: str) -> None:
    committed = Board(db=Path("/nonexistent/unused.sqlite"))
    folders = [f for f in committed.entry_dirs() if f.parent.name == task]
    assert folders, f"the board ships no entry for {task}"
    for folder in folders:
        record = verify_submission(folder, record="-", reruns=FAST_TASKS[task])
        assert record.ok, (folder.name, record.problems)


def test_committed_records_are_signed_by_the_boards_key() -> None:
    """Every committed entry's record carries the signature of the board's verifier key
    (``verifier.json``), which anyone can check without the organizer's private half."""
    import json

    from optgym.leaderboard.signing import signature_problem

    committed = Board(db=Path("/nonexistent/unused.sqlite"))
    for folder in committed.entry_dirs():
        record = json.loads((folder / "verification.json").read_text())
        assert signature_problem(record, "verification", committed.root) is None, folder.name
        assert record["ok"] and not (folder / "stale").exists(), folder.name


def test_every_task_has_committed_entries() -> None:
    committed = Board(db=Path("/nonexistent/unused.sqlite"))
    tasks_with_entries = {f.parent.name for f in committed.entry_dirs()}
    assert tasks_with_entries == set(all_tasks())


def test_committed_board_in_chromium(browser: Any, shown_rows: Any, tmp_path: Path) -> None:
    """The site of the board OptGym ships: every task page shows as many rows as the
    database holds entries for the task, and no page logs an error."""
    board = Board(db=tmp_path / "index.sqlite")
    data = board.site_data()
    paths = build_site(data, tmp_path / "site")
    counts = {t["name"]: len(board.entries(t["name"])) for t in data["tasks"]}
    assert sum(counts.values()) >= len(counts)  # every task has entries
    for task in data["tasks"]:
        pattern = re.compile(rf"task-{re.escape(task['name'])}-[0-9a-f]{{12}}\.html")
        page = next(p for p in paths if pattern.fullmatch(p.name))
        browser.get(page.as_uri())
        assert len(shown_rows(browser)) == counts[task["name"]], task["name"]
    severe = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, severe
    if os.environ.get("OPTGYM_BOARD_SCREENSHOT"):
        pattern = re.compile(r"task-pass-ordering-[0-9a-f]{12}\.html")
        browser.get(next(p for p in paths if pattern.fullmatch(p.name)).as_uri())
        browser.save_screenshot(os.environ["OPTGYM_BOARD_SCREENSHOT"])


def test_lns_task_pages_measure_gaps_across_entries(tmp_path: Path) -> None:
    """An LNS task's page has the problem's after-the-fact table: one row per entry, gaps
    against the best objective any entry found (recomputed here from the entries' lines);
    a results file that no longer reads leaves the page without it, not broken."""
    import json
    import shutil

    from optgym.envs.lns.report import lns_summary
    from optgym.leaderboard.submission import RESULTS

    shipped = Board(db=Path("/nonexistent/unused.sqlite"))
    root = tmp_path / "board"
    shutil.copytree(shipped.root, root)
    board = Board(root, db=tmp_path / "index.sqlite")
    tasks = {t["name"]: t for t in board.site_data()["tasks"]}
    task = tasks["lns-vertex-cover"]
    table = task["after_the_fact"]
    assert table["header"][:4] == ["entry", "episodes", "primal gap", "primal integral"]
    assert sorted(r[0] for r in table["rows"]) == sorted(e["name"] for e in task["entries"])
    rows = []
    for e in task["entries"]:
        lines = (board.entry_dir(e["id"]) / RESULTS).read_text().splitlines()
        rows += [{**json.loads(line), "agent": e["name"]} for line in lines]
    expected = {r[0]: r for r in lns_summary(rows)}
    for row in table["rows"]:
        assert 0.0 <= row[2] <= 1.0 and row[3] >= 0.0
        assert row == list(expected[row[0]])
    assert tasks["path-planning"]["after_the_fact"] is None  # its problem has no such table
    (board.entry_dir(task["entries"][0]["id"]) / RESULTS).write_text("{not json\n")
    again = {t["name"]: t for t in board.site_data()["tasks"]}
    assert again["lns-vertex-cover"]["after_the_fact"] is None
