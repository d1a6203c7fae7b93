"""``optgym leaderboard ...`` and ``optgym calibrate``: the commands parse arguments and call
the leaderboard's Python API (:mod:`.run`, :mod:`.verify`, :mod:`.board`, :mod:`.rounds`,
:mod:`.site`, :mod:`.hardware`).

    optgym leaderboard run path-planning --agent cem --out my-entry --author "Ada L."
    optgym leaderboard verify my-entry
    optgym leaderboard verify --entry 950dc9ecdf54   # an entry of the board, by its id
    optgym leaderboard add my-entry
    optgym leaderboard show path-planning
    optgym leaderboard build --out site
    optgym leaderboard round new pass-ordering 2026-12 --size 2
    optgym leaderboard rerun oz --task pass-ordering --round 2026-12 --out oz-closed
    optgym leaderboard reveal pass-ordering 2026-12
    optgym leaderboard reverify [--all]
    optgym leaderboard rebuild
    optgym calibrate [--json] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def _log(message: str) -> None:
    print(f"  {message}", file=sys.stderr)


def _print_verification(record: Any) -> None:
    for problem in record.problems:
        print(f"  - {problem}")
    print(record.summary())


def _board(args: argparse.Namespace) -> Any:
    from optgym.leaderboard.board import Board

    return Board()


def cmd_run(args: argparse.Namespace) -> int:
    from optgym.cli_options import executor_settings, parse_seeds
    from optgym.leaderboard.run import run_entry

    training = []
    for item in args.trained_on or []:
        if "://" in item and item.count("/") >= 3:
            training.append({"benchmark": item})
        else:
            uri, _, split = item.rpartition(":")
            if not uri or "://" not in uri:
                raise ValueError(
                    f"--trained-on takes DATASET_URI:SPLIT or a benchmark URI, got {item!r}"
                )
            training.append({"dataset": uri, "split": split})
    out = run_entry(
        args.task, args.agent, Path(args.out),
        seeds=parse_seeds(args.seeds) if args.seeds else None, **executor_settings(args),
        name=args.name, authors=args.author or (), code_url=args.code_url, commit=args.commit,
        training_data=training, license=args.license, weights=args.weights,
        progress=not args.no_progress, code=args.code,
    )  # fmt: skip
    _print_score(out)
    print(f"submission: {out}")
    print(f"verify:     optgym leaderboard verify {out}")
    return 0


def _print_score(out: Path) -> None:
    """The entry's score, as the board will show it, and its episodes that failed."""
    import json

    from optgym.leaderboard.stats import interval, score, shape_label
    from optgym.leaderboard.submission import RESULTS
    from optgym.tasks import get_task

    rows = [json.loads(raw) for raw in (out / RESULTS).read_bytes().splitlines() if raw.strip()]
    if not rows:
        return
    task = get_task(rows[0]["task"])
    scores = [(r["benchmark"], r["seed"], r["score"]) for r in rows if r["error"] is None]
    failed = len(rows) - len(scores)
    if scores:
        low, high = interval(scores, task.aggregate)
        print(f"score:      {score(scores, task.aggregate):.4f} [{low:.4f}, {high:.4f}] "
              f"({task.score_name}; test set {shape_label(scores)})")  # fmt: skip
    if failed:
        print(f"            {failed} of {len(rows)} episodes ended with an error: verify "
              "refuses the entry until a rerun of this command finishes them")  # fmt: skip


def cmd_verify(args: argparse.Namespace) -> int:
    from optgym.leaderboard.verify import verify_submission

    if (args.submission is None) == (args.entry is None):
        raise ValueError("give a submission (a folder or archive) or --entry ID, one of them")
    if args.entry is not None:  # the board's own copy: its signed record is never overwritten
        path, where = _board(args).entry_dir(args.entry), args.record or "-"
    else:
        path, where = Path(args.submission), args.record
    record = verify_submission(path, record=where, log=_log, reruns=args.reruns)
    _print_verification(record)
    return 0 if record.ok else 1


def cmd_add(args: argparse.Namespace) -> int:
    record, folder = _board(args).add(Path(args.submission), log=_log, reruns=args.reruns)
    _print_verification(record)
    if folder is None:
        return 1
    print(f"added:      {folder}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from optgym.tasks import get_task

    if args.task is not None:
        get_task(args.task)  # ValueError naming the known tasks
    print(_board(args).table(args.task))
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    board = _board(args)
    count = board.rebuild()
    print(f"indexed {count} entries from {board.root} into {board.db}")
    return 0


def cmd_reverify(args: argparse.Namespace) -> int:
    results = _board(args).reverify(everything=args.all, log=_log, reruns=args.reruns)
    stale = [name for name, record in results if not record.ok]
    for name, record in results:
        print(f"{name[:16]}: {record.summary()}")
    print(f"re-verified {len(results)} entries, {len(stale)} now stale")
    return 1 if stale else 0


def cmd_build(args: argparse.Namespace) -> int:
    from optgym.leaderboard.site import build_site

    board = _board(args)
    written = build_site(board.site_data(), Path(args.out))
    print(f"wrote {len(written)} files into {args.out}; open {Path(args.out) / 'index.html'}")
    return 0


def cmd_round_new(args: argparse.Namespace) -> int:
    from optgym.leaderboard.rounds import make_round, round_dir, secret_path

    record = make_round(args.task, args.name, size=args.size, seeds=args.seeds)
    print(f"round {args.name} of {args.task}: commitment {record['commitment']}")
    print(f"public: {round_dir(args.task, args.name) / 'round.json'}")
    print(f"secret: {secret_path(args.task, args.name)} (keep it until the reveal)")
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    from optgym.cli_options import executor_settings
    from optgym.leaderboard.rounds import rerun
    from optgym.leaderboard.verify import verify_submission

    out = rerun(
        args.agent, args.task, args.round, Path(args.out), code=args.code,
        **executor_settings(args), display_name=args.name, progress=not args.no_progress,
    )  # fmt: skip
    print(f"submission: {out}")
    record = verify_submission(out, log=_log)
    _print_verification(record)
    return 0 if record.ok else 1


def cmd_reveal(args: argparse.Namespace) -> int:
    from optgym.leaderboard.rounds import reveal

    print(f"revealed: {reveal(args.task, args.name)}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from optgym.leaderboard.hardware import calibrate

    record = calibrate(args.repeats)
    if args.json:
        print(json.dumps(record, indent=1))
        return 0
    print(f"hardware class: {record['class']}")
    print(f"calibration:    {record['calibration']} (reference machine = 1.0)")
    for key, value in record["fingerprint"].items():
        print(f"  {key}: {value}")
    return 0


def _reruns_option(q: argparse.ArgumentParser) -> None:
    from optgym.leaderboard.verify import DEFAULT_RERUNS

    q.add_argument(
        "--reruns", type=int, default=DEFAULT_RERUNS, metavar="N",
        help="open track: episodes drawn at random and run again in the sandbox from the "
        f"submission's code (default {DEFAULT_RERUNS}; 0: none; a number past the lines: "
        "all)",
    )  # fmt: skip


def _with_board(run: Any) -> Any:
    """``run`` with ``--board`` applied: the board folder for this command."""

    def wrapped(args: argparse.Namespace) -> int:
        if getattr(args, "board", None):
            os.environ["OPTGYM_BOARD"] = str(Path(args.board).resolve())
        return run(args)

    return wrapped


def add_commands(commands: Any) -> None:
    """Add ``leaderboard`` (with its sub-commands) and ``calibrate`` to the ``optgym``
    sub-command parsers ``commands``."""
    from optgym.cli_options import executor_options

    p = commands.add_parser("leaderboard", help="submit, verify, rank and publish entries")
    sub = p.add_subparsers(dest="action", required=True, parser_class=type(p))

    def command(name: str, run: Any, help: str) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help)
        q.add_argument("--board", default=None, help="board folder (default $OPTGYM_BOARD or "
                       "the one OptGym ships)")  # fmt: skip
        q.set_defaults(run=_with_board(run))
        return q

    q = command("run", cmd_run, "run an agent on a task's test set, write a submission")
    q.add_argument("task", metavar="TASK")
    q.add_argument("--agent", required=True, metavar="SPEC")
    q.add_argument("--out", required=True, help="submission folder to write")
    q.add_argument("--seeds", default=None, help="default 0,1,2 (stochastic agents) or 0")
    executor_options(q, "episodes")
    q.add_argument("--name", default=None, help="the entry's display name")
    q.add_argument("--author", action="append", help="an author (repeatable)")
    q.add_argument("--code-url", default="", help="where the agent's code is (http(s))")
    q.add_argument("--commit", default="", help="the code's commit (hex)")
    q.add_argument("--license", default="NOASSERTION", help="SPDX id of the code and weights")
    q.add_argument("--weights", default=None, help="the weights file the agent loads (hashed)")
    q.add_argument("--code", default=None, metavar="DIR",
                   help="the folder the entry ships (plug-in modules, weights; required for a "
                   "plug-in): copied into the submission, the agent runs from it")  # fmt: skip
    q.add_argument(
        "--trained-on",
        action="append",
        metavar="DATA",
        help="training data: DATASET_URI:train|validation or a benchmark URI",
    )
    q.add_argument("--no-progress", action="store_true")

    q = command("verify", cmd_verify, "replay a submission and check it against its task")
    q.add_argument("submission", metavar="SUBMISSION", nargs="?", default=None,
                   help="folder or .tar.gz/.zip archive")  # fmt: skip
    q.add_argument("--entry", default=None, metavar="ID",
                   help="instead of SUBMISSION: the board's entry whose id starts with ID (8 "
                   "or more hex digits; the site's replay command); writes no record unless "
                   "--record says where")  # fmt: skip
    q.add_argument("--record", default=None, help="where to write the record ('-': nowhere)")
    _reruns_option(q)

    q = command("add", cmd_add, "verify a submission and add it to the board")
    q.add_argument("submission", metavar="SUBMISSION")
    _reruns_option(q)

    q = command("show", cmd_show, "the board as a table")
    q.add_argument("task", nargs="?", default=None, metavar="TASK")

    command("rebuild", cmd_rebuild, "rebuild the SQLite index from the entry files")

    q = command("reverify", cmd_reverify, "verify again entries of older OptGym versions")
    q.add_argument("--all", action="store_true", help="every entry")
    _reruns_option(q)

    q = command("build", cmd_build, "write the static web site")
    q.add_argument("--out", required=True, help="folder for the site")

    q = command("round", cmd_round_new, "start a hidden round: round new TASK NAME")
    q.add_argument("verb", choices=("new",))
    q.add_argument("task", metavar="TASK")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--size", type=int, default=2, help="hidden benchmarks per dataset")
    q.add_argument("--seeds", type=int, default=3, help="agent seeds (stochastic agents)")

    q = command("rerun", cmd_rerun, "closed track: run an agent on a hidden round, no network")
    q.add_argument("agent", metavar="AGENT", help="NAME[:settings], module:Class[:settings]")
    q.add_argument("--task", required=True)
    q.add_argument("--round", required=True)
    q.add_argument("--out", required=True, help="submission folder to write")
    q.add_argument("--code", default=None, metavar="DIR",
                   help="the submission's code and weights (the agent sees them read-only)")
    executor_options(q, "episodes")
    q.add_argument("--name", default=None, help="the entry's display name")
    q.add_argument("--no-progress", action="store_true")

    q = command("reveal", cmd_reveal, "publish a round's seeds (checked against its hash)")
    q.add_argument("task", metavar="TASK")
    q.add_argument("name", metavar="NAME")

    p = commands.add_parser("calibrate", help="this machine's hardware class and speed")
    p.add_argument("--json", action="store_true", help="the record a manifest holds, as JSON")
    from optgym.leaderboard.hardware import MIN_REPEATS, REPEATS

    p.add_argument("--repeats", type=int, default=REPEATS, metavar="N",
                   help=f"runs of the workload (default {REPEATS}, at least {MIN_REPEATS}): the "
                   "median speed counts; a loaded machine is refused, saying why")  # fmt: skip
    p.set_defaults(run=cmd_calibrate)


__all__ = ["add_commands"]
