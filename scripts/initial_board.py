"""Make the initial leaderboard: every task's reference and baseline agents, as entries.

    .venv/bin/python scripts/initial_board.py [--reuse DIR] [--work DIR] [--only TASK] [--fresh]
        [--workers N] [--agent AGENT]
    .venv/bin/python scripts/initial_board.py --reverify [--only TASK]
    .venv/bin/python scripts/initial_board.py --new-key [--only TASK]

For each task and each of its ``reference_agents`` (the task record says which: references
first, then baselines) it runs the agent on the task's test set (``optgym leaderboard run``)
into ``WORK/<task>/<agent>``, then verifies and files it (``optgym leaderboard add``) into
the board (``$OPTGYM_BOARD``, default the one OptGym ships), named by the agent's description
in its problem's record (or by its name); then the closed-track entries of ``ROUNDS``.
Lines already in ``DIR/<task>.jsonl``
(an earlier ``optgym bench`` run) for that agent and the test set are reused; the run then
resumes from them. Seconds-budget tasks (LNS, schedule search) measure time: run them on an
otherwise idle machine.

``--reverify`` verifies every committed entry again on this machine and signs its record
with the board's verifier key (a new board organizer: remove the board's
``verifier.json`` first, and a new key is made): by replay, and, where the task counts work,
by running ``RERUNS`` episodes of each entry again in the sandbox. Where a task counts time
(LNS, schedules), reruns would measure this machine's load against the entry's: its lines
replay only. An entry that no longer passes is marked stale.

``--new-key`` is for an organizer on a machine whose cache lacks the board key's private
half: the key is retired (the records it signed still check against its public half, listed
in ``verifier.json``) and a new pair signs the entries filed from then on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from optgym.agents.registry import registry
from optgym.leaderboard.board import Board
from optgym.leaderboard.rounds import rerun
from optgym.leaderboard.run import run_entry
from optgym.leaderboard.submission import RESULTS
from optgym.tasks import all_tasks, board_benchmarks


def entries() -> dict[str, list[tuple[str, str]]]:
    """Task -> (agent, display name) of its initial entries: the task's ``reference_agents``,
    each named by its description in the problem's record (or, without one, its name); an
    agent with settings (``lap3:anchors=10``) by its name and its settings."""
    return {
        name: [(agent, display_name(agent)) for agent in task.reference_agents]
        for name, task in all_tasks().items()
    }


#: The longest display name a manifest takes.
NAME_CHARS = 80


def display_name(agent: str) -> str:
    """The board's name for the entry of ``agent`` (a built-in's name, maybe with settings)."""
    base, _, settings = agent.partition(":")
    if not settings:
        return registry()[base].description or base
    name = f"{base} ({settings.replace(',', ', ')})"
    if len(name) <= NAME_CHARS:
        return name
    return f"{base} ({settings.count(',') + 1} settings, in the entry's agent spec)"


#: Closed-track entries: (task, revealed round, agent, display name); ``rerun`` runs them on
#: the round's benchmarks (its ``reveal.json``, or the organizer's secret).
ROUNDS = [("path-planning", "2026-11", "cem", "CEM (closed track, round 2026-11)")]


def _reuse(source: Path, task: str, agent: str, out: Path) -> int:
    """Copy the lines of ``agent`` on the task's test set from ``source`` into ``out``."""
    if not source.is_file():
        return 0
    wanted = set(board_benchmarks(all_tasks()[task]))
    kept = []
    for raw in source.read_bytes().splitlines():
        row = json.loads(raw)
        if row["agent"] == agent and row["benchmark"] in wanted and row["error"] is None:
            kept.append(raw)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS).write_bytes(b"".join(line + b"\n" for line in kept))
    return len(kept)


def _commit() -> str:
    """This checkout's commit (the agents' code), or "" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).parent,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.strip()


#: Episodes of each entry of a work-counting task that ``--reverify`` runs again.
RERUNS = 3


def reverify(board: Board, only: list[str] | None) -> None:
    """Verify and sign every committed entry (of the tasks ``only``) again."""
    from optgym.leaderboard.verify import verify_submission
    from optgym.tasks import hardware_dependent

    for folder in list(board.entry_dirs()):
        task = all_tasks()[folder.parent.name]
        if only and task.name not in only:
            continue
        reruns = 0 if hardware_dependent(task) else RERUNS
        record = verify_submission(folder, record="-", reruns=reruns)
        board.file_verification(folder, record)
        print(record.summary())
        for problem in record.problems:
            print(f"  - {problem}")
    board.rebuild()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", type=Path, default=None, help="folder of TASK.jsonl files")
    parser.add_argument("--work", type=Path, default=Path("results/board"))
    parser.add_argument("--only", action="append", help="only this task (repeatable)")
    parser.add_argument(
        "--agent", action="append", help="only this agent's entries (repeatable; no rounds)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="remove the board's entries of these tasks first"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="episodes run at once (default 1; time-counting "
        "tasks want 1 on an otherwise idle machine)",
    )
    parser.add_argument(
        "--new-key",
        action="store_true",
        help="retire the board's verifier key (its records stay valid) and sign with a new "
        "one from now on: for an organizer on a machine without the key's private half",
    )
    parser.add_argument(
        "--reverify",
        action="store_true",
        help="verify and sign the committed entries again, run nothing new",
    )
    args = parser.parse_args()
    board = Board()
    if args.new_key:
        from optgym.leaderboard.signing import new_key

        print(f"the board {board.root} now signs with verifier key {new_key(board.root)}")
    if args.reverify:
        reverify(board, args.only)
        return 0
    commit = _commit()
    for task, agents in entries().items():
        if args.only and task not in args.only:
            continue
        if args.fresh:
            shutil.rmtree(board.root / "entries" / task, ignore_errors=True)
        for agent, name in agents:
            if args.agent and agent not in args.agent:
                continue
            out = args.work / task / agent
            if args.reuse is not None:
                reused = _reuse(args.reuse / f"{task}.jsonl", task, agent, out)
                print(f"{task} {agent}: {reused} lines reused", file=sys.stderr)
            run_entry(
                task, agent, out, name=name, authors=["OptGym maintainers"], license="MIT",
                commit=commit, progress=False, workers=args.workers,
            )  # fmt: skip
            _add(board, out)
    for task, round_name, agent, name in ROUNDS:
        if (args.only and task not in args.only) or args.agent:
            continue
        out = args.work / task / f"{agent}-{round_name}"
        rerun(agent, task, round_name, out, display_name=name, authors=("OptGym maintainers",),
              license="MIT", progress=False)  # fmt: skip
        _add(board, out)
    return 0


def _add(board: Board, out: Path) -> None:
    record, _ = board.add(out)
    print(record.summary())
    for problem in record.problems:
        print(f"  - {problem}")


if __name__ == "__main__":
    sys.exit(main())
