"""Verify time per leaderboard entry against the time its episodes took to run.

Re-verifies every committed entry of the board (or of ``--task``) and compares the seconds
``optgym leaderboard verify`` takes (schema and coverage checks, a replay of every line,
a second replay where the env is deterministic) with the agent's own walltime summed over
the entry's lines (the reference: running the episodes). Ends with one line per figure.

Usage: python benchmarks/leaderboard_verify.py [--task TASK ...]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from optgym.leaderboard.board import Board
from optgym.leaderboard.submission import RESULTS
from optgym.leaderboard.verify import verify_submission


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", help="only this task (repeatable)")
    args = parser.parse_args()
    board = Board(db=Path("/nonexistent/unused.sqlite"))
    per_task: dict[str, list[tuple[float, float, bool]]] = defaultdict(list)
    for folder in board.entry_dirs():
        task = folder.parent.name
        if args.task and task not in args.task:
            continue
        run = sum(
            json.loads(line)["walltime"] for line in (folder / RESULTS).read_text().splitlines()
        )
        start = time.monotonic()
        record = verify_submission(folder, record="-")
        seconds = time.monotonic() - start
        per_task[task].append((seconds, run, record.ok))
        print(f"{task} {folder.name[:12]}: verified={record.ok} verify {seconds:.1f} s, "
              f"episodes ran {run:.1f} s")  # fmt: skip
    entries = sum(len(v) for v in per_task.values())
    verified = sum(ok for v in per_task.values() for _, _, ok in v)
    for task, found in per_task.items():
        verify = sum(s for s, _, _ in found) / len(found)
        ratio = sum(s for s, _, _ in found) / max(sum(r for _, r, _ in found), 1e-9)
        print(f"{task}_entries: {len(found)} (target: >= 1, the reference)")
        print(f"{task}_verify_seconds_per_entry: {verify:.1f} (target: none)")
        print(f"{task}_verify_over_run_time: {ratio:.2f} (target: <= 1.0)")
    print(f"entries_verified: {verified}/{entries} (target: all)")


if __name__ == "__main__":
    main()
