"""The tamper fuzzer: change every field of real result lines and check validate refuses them.

:func:`tamperings` walks a result line and yields, for every field and every value nested in
it (the state, its actions, extras, versions and config included; long lists and objects by
their first, middle and last items), copies of the line with that one value changed: numbers
shifted and scaled, strings and types swapped, items dropped, added or reordered, fields
removed or added, seeds and benchmark URIs written another way. :func:`fuzz` validates every
tampered copy, in a file of its own beside the genuine lines, and counts what was refused
and what passed; a tampered line that passes must change nothing a report shows.

Run it on results files (``python -m optgym.tamper results/*.jsonl``); it prints one line
per figure. ``--submission DIR`` tells a whole open-track submission the lies that every
line's replay accepts (:func:`fuzz_submission`: its agent relabelled, its best seed copied
over the others, a larger budget's run labelled with the task's budget), each of which
``optgym leaderboard verify`` must refuse by running episodes again in the sandbox.
``--accept-untagged`` fuzzes what a replay alone catches (as for lines written by another
installation), without the integrity tag.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optgym.result_line import TAG_FIELD, line_tag

Path_ = tuple[Any, ...]

#: Lists and objects longer than this are sampled at their first, middle and last items.
_ALL_UP_TO = 16


def _keys(container: Any) -> list[Any]:
    keys = list(range(len(container))) if isinstance(container, list) else sorted(container)
    if len(keys) <= _ALL_UP_TO:
        return keys
    return [keys[0], keys[len(keys) // 2], keys[-1]]


def _leaves(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """``(path, value)`` for the value and (sampled) everything inside it."""
    yield path, value
    if isinstance(value, (list, dict)):
        for key in _keys(value):
            yield from _leaves(value[key], (*path, key))


def variants(value: Any) -> Iterator[tuple[str, Any]]:
    """``(what, new value)``: changes of one JSON value."""
    if isinstance(value, bool):
        yield "negated", not value
        yield "as int", int(value)
    elif isinstance(value, (int, float)):
        yield "plus one", value + 1
        yield "minus one", value - 1
        if value:
            yield "scaled by 1.01", value * 1.01
            yield "negated", -value
            yield "zero", 0 if isinstance(value, int) else 0.0
        yield "as string", str(value)
        if isinstance(value, int):
            yield "the same number as a float", float(value)
        elif not math.isfinite(value):
            pass
        elif value == int(value):
            yield "the same number as an int", int(value)
        else:
            yield "truncated to an int", int(value)
        yield "null", None
    elif isinstance(value, str):
        yield "suffixed", value + "x"
        if value:
            yield "empty", ""
        if value != value.upper():
            yield "upper case", value.upper()
        yield "as number", 0
    elif isinstance(value, list):
        if value:
            yield "last item dropped", value[:-1]
            yield "last item repeated", [*value, value[-1]]
            if len(value) > 1 and value != value[::-1]:
                yield "reversed", value[::-1]
        else:
            yield "an item added", [0]
        yield "as object", {}
    elif isinstance(value, dict):
        for key in _keys(value):
            yield f"key {key!r} removed", {k: v for k, v in value.items() if k != key}
        yield "unknown key added", {**value, "tampered": 1}
        yield "as list", []
    elif value is None:
        yield "zero", 0
        yield "string", "x"


def _set(row: dict, path: Path_, value: Any) -> dict:
    new = copy.deepcopy(row)
    target = new
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return new


def _uri_variants(uri: str) -> Iterator[tuple[str, str]]:
    """Other spellings of a benchmark URI: a leading zero, non-ASCII digits, case."""
    head, _, name = uri.rpartition("/")
    if name.isascii() and name.isdigit():
        yield "seed with a leading zero", f"{head}/0{name}"
        yield (
            "seed in Arabic-Indic digits",
            head + "/" + name.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        )
    yield "trailing slash", uri + "/"
    yield "scheme upper case", uri.replace("://", "://", 1).upper()


def tamperings(row: dict) -> Iterator[tuple[str, dict]]:
    """``(what was changed, tampered line)`` for the result line ``row``; tampered lines
    keep the tag of the genuine one (re-tagging is :func:`fuzz`'s choice)."""
    for path, value in _leaves(row):
        if not path or path == (TAG_FIELD,):
            continue
        where = ".".join(map(str, path))
        for what, new in variants(value):
            yield f"{where}: {what}", _set(row, path, new)
    for name in row:
        if name != TAG_FIELD:
            yield f"{name}: removed", {k: v for k, v in row.items() if k != name}
    yield "unknown field added", {**row, "comment": "x"}
    yield "large unknown field added", {**row, "padding": "x" * (1 << 20)}
    for what, uri in _uri_variants(row["benchmark"]):
        tampered = copy.deepcopy(row)
        tampered["benchmark"] = uri
        if isinstance(tampered.get("state"), dict):
            tampered["state"]["benchmark"] = uri
        yield f"benchmark: {what}", tampered


@dataclass
class FuzzReport:
    """What :func:`fuzz` found: counts, and the tamperings that passed (with validate's
    message) or raised."""

    genuine: int = 0
    genuine_passed: int = 0
    fuzzed: int = 0
    rejected: int = 0
    passed: list[tuple[str, str]] = field(default_factory=list)
    crashed: list[tuple[str, str]] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """The figures, one ``name: value (target: ...)`` line each."""
        out = [
            f"genuine_lines_passed: {self.genuine_passed}/{self.genuine} (target: all)",
            f"lines_fuzzed: {self.fuzzed}",
            f"tampered_rejected: {self.rejected}/{self.fuzzed}",
            f"tampered_passed: {len(self.passed)} (target: 0 that change what a report shows)",
            f"tracebacks: {len(self.crashed)} (target: 0)",
        ]
        return out


def fuzz(
    rows: Sequence[dict],
    accept_untagged: bool = False,
    retag: bool = False,
    limit: int | None = None,
    budget: Any = None,
) -> FuzzReport:
    """Validate every tampering of every line of ``rows`` (genuine, tagged lines of one
    task's results); ``retag`` gives each tampered line a valid tag (an attacker holding
    the key), ``accept_untagged`` validates as for lines from elsewhere. ``limit``: at most
    this many tamperings per line, spread evenly over its fields. ``budget``: the budget
    the lines were run with."""
    from optgym.validate import PASSED, Replayer, validate_results

    report = FuzzReport()
    replayer = Replayer()
    with replayer, tempfile.TemporaryDirectory(prefix="optgym-tamper-") as tmp:
        genuine = Path(tmp) / "genuine.jsonl"
        genuine.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        verdicts = validate_results(
            genuine, budget=budget, accept_untagged=accept_untagged, replayer=replayer
        )
        report.genuine = len(verdicts)
        report.genuine_passed = sum(v == PASSED for _, v, _ in verdicts)
        for row in rows:
            changes = list(tamperings(row))
            if limit is not None and len(changes) > limit:  # spread evenly over the fields
                changes = [changes[i * len(changes) // limit] for i in range(limit)]
            for what, tampered in changes:
                if retag and isinstance(tampered, dict):
                    tampered[TAG_FIELD] = line_tag(tampered)
                path = Path(tmp) / "tampered.jsonl"
                path.write_text(json.dumps(tampered, sort_keys=True) + "\n")
                report.fuzzed += 1
                try:
                    verdict = validate_results(path, budget=budget, accept_untagged=accept_untagged)
                except Exception as e:  # noqa: BLE001  counted: the target is none
                    report.crashed.append((what, f"{type(e).__name__}: {e}"[:300]))
                    continue
                (_, outcome, message), *_ = verdict
                if outcome == PASSED:
                    report.passed.append((f"{row['task']}: {what}", message))
                else:
                    report.rejected += 1
                    report.reasons[message.split(":")[0][:60]] += 1
    return report


# --- whole submissions: lies that every line's replay accepts -------------------------------


def _retagged(rows: list[dict]) -> bytes:
    """Lines as another installation's would read: without this one's tag."""
    return b"".join(
        json.dumps({k: v for k, v in r.items() if k != TAG_FIELD}, sort_keys=True).encode() + b"\n"
        for r in rows
    )


def relabelled(manifest: dict, rows: list[dict], agent: str) -> tuple[dict, list[dict]]:
    """The submission's lines and manifest claimed for another ``agent`` of the task."""
    rows = [{**copy.deepcopy(r), "agent": agent} for r in rows]
    return {**manifest, "agent": agent, "name": agent}, rows


def cherry_picked(manifest: dict, rows: list[dict]) -> tuple[dict, list[dict]]:
    """Each benchmark's best seed copied over its other seeds."""
    best: dict[str, dict] = {}
    for row in rows:
        if row["benchmark"] not in best or row["score"] > best[row["benchmark"]]["score"]:
            best[row["benchmark"]] = row
    out = []
    for row in rows:
        copied = copy.deepcopy(best[row["benchmark"]])
        copied["seed"] = row["seed"]
        copied["state"]["seed"] = row["seed"] if row["state"]["seed"] is not None else None
        out.append(copied)
    return manifest, out


def budget_relabelled(
    manifest: dict, rows: list[dict], task: Any, factor: int, folder: Path
) -> tuple[dict, list[dict]]:
    """The same episodes run with ``factor`` times the task's budget, labelled as run with
    the task's (their budget used cut to fit it, what the agent added to the state that
    would tell the search's length dropped)."""
    from optgym.bench import run_bench
    from optgym.budget import Budget

    budget = task.budget
    bigger = Budget(**{u: (None if getattr(budget, u) is None else getattr(budget, u) * factor)
                       for u in ("calls", "steps", "seconds")})  # fmt: skip
    seeds = sorted({r["seed"] for r in rows})
    benchmarks = list(dict.fromkeys(r["benchmark"] for r in rows))
    big = run_bench(task.name, [manifest["agent"]], benchmarks, seeds, bigger,
                    folder / "bigger.jsonl", progress=False)  # fmt: skip
    from optgym.tasks import env_entry

    own = env_entry(task).env_class().agent_extras  # a search's trace would tell its length
    out = []
    for row in big:
        row = {k: v for k, v in copy.deepcopy(row).items() if k != TAG_FIELD}
        row["state"]["extras"] = {k: v for k, v in row["state"]["extras"].items()
                                  if k not in own}  # fmt: skip
        row["budget"] = str(budget)
        for unit in ("calls", "steps"):
            limit = getattr(budget, unit)
            if limit is not None:
                row["budget_used"][unit] = min(row["budget_used"][unit], limit)
        out.append(row)
    return manifest, out


@dataclass
class SubmissionReport:
    """What :func:`fuzz_submission` found: each lie, and whether verify refused it."""

    genuine_ok: bool = False
    refused: list[tuple[str, str]] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        total = len(self.refused) + len(self.passed)
        return [
            f"genuine_submission_verified: {self.genuine_ok} (target: True)",
            f"submission_lies_refused: {len(self.refused)}/{total} (target: all)",
        ]


def fuzz_submission(
    path: Path, relabel_as: str | None = None, budget_factor: int = 10,
    reruns: int | None = None,
) -> SubmissionReport:  # fmt: skip
    """Tell the submission at ``path`` three lies that every line's replay accepts (its
    agent relabelled as ``relabel_as``, its best seed copied over the others, a run with
    ``budget_factor`` times the budget labelled with the task's) and verify each; the
    open track's reruns in the sandbox must refuse them. ``reruns``: episodes rerun per
    verification (default: every line, so that the verdict does not depend on the draw)."""
    from optgym.agents.registry import agents_for
    from optgym.leaderboard.submission import load_submission, write_submission
    from optgym.leaderboard.verify import verify_submission
    from optgym.tasks import get_task

    sub = load_submission(path)
    task = get_task(sub.manifest["task"])
    rows = [json.loads(raw) for raw in sub.results.splitlines() if raw.strip()]
    reruns = len(rows) if reruns is None else reruns
    report = SubmissionReport(genuine_ok=verify_submission(path, record="-", reruns=reruns).ok)
    if relabel_as is None:
        others = [a for a in agents_for(task.problem) if a != sub.manifest["agent"]]
        relabel_as = others[0]
    with tempfile.TemporaryDirectory(prefix="optgym-tamper-") as tmp:
        lies = {
            f"relabelled as {relabel_as}": relabelled(sub.manifest, rows, relabel_as),
            "best seed copied over the others": cherry_picked(sub.manifest, rows),
            f"run with {budget_factor}x the budget, labelled with the task's": (
                budget_relabelled(sub.manifest, rows, task, budget_factor, Path(tmp))
            ),
        }
        for what, (manifest, lines) in lies.items():
            folder = Path(tmp) / str(len(report.refused) + len(report.passed))
            write_submission(folder, manifest, _retagged(lines))
            verdict = verify_submission(folder, record="-", reruns=reruns)
            if verdict.ok:
                report.passed.append(what)
            else:
                report.refused.append((what, verdict.problems[0] if verdict.problems else ""))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m optgym.tamper RESULTS...``: fuzz the lines of each file, print figures;
    ``--submission DIR``: tell a whole submission's lies (see :func:`fuzz_submission`)."""
    from optgym.budget import Budget
    from optgym.state import json_lines

    parser = argparse.ArgumentParser(prog="python -m optgym.tamper", description=__doc__)
    parser.add_argument("results", nargs="*", help="results files of genuine, tagged lines")
    parser.add_argument("--accept-untagged", action="store_true")
    parser.add_argument("--retag", action="store_true", help="re-tag tampered lines")
    parser.add_argument("--limit", type=int, default=None, help="tamperings per line")
    parser.add_argument("--submission", action="append", default=[], metavar="DIR",
                        help="a genuine open-track submission whose lies to tell verify")
    parser.add_argument("--budget-factor", type=int, default=10, metavar="N",
                        help="the budget lie: a run with N times the task's budget")
    parser.add_argument("--relabel-as", default=None, metavar="AGENT",
                        help="the agent its lines are relabelled as (default: another one "
                        "of the task's)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.results and not args.submission:
        parser.error("give results files, or --submission DIR")
    refused = told = 0
    for name in args.submission:
        sub_report = fuzz_submission(Path(name), args.relabel_as, args.budget_factor)
        for what, why in sub_report.refused:
            print(f"{name}: refused: {what} ({why[:200]})")
        for what in sub_report.passed:
            print(f"{name}: PASSED: {what}")
        print("\n".join(sub_report.lines()))
        refused += len(sub_report.refused)
        told += len(sub_report.refused) + len(sub_report.passed)
    if not args.results:
        return 0 if refused == told else 1
    total = FuzzReport()
    for name in args.results:
        rows = [row for _, row, error in json_lines(name) if not error and isinstance(row, dict)]
        budget = Budget.parse(rows[0]["budget"]) if rows else None
        report = fuzz(rows, args.accept_untagged, args.retag, args.limit, budget)
        print(f"{name}: {report.fuzzed} fuzzed, {report.rejected} rejected, "
              f"{len(report.passed)} passed, {len(report.crashed)} tracebacks")  # fmt: skip
        for what, message in report.passed:
            print(f"  passed: {what} ({message})")
        for what, message in report.crashed:
            print(f"  traceback: {what} ({message})")
        total.genuine += report.genuine
        total.genuine_passed += report.genuine_passed
        total.fuzzed += report.fuzzed
        total.rejected += report.rejected
        total.passed += report.passed
        total.crashed += report.crashed
        total.reasons.update(report.reasons)
    for reason, count in total.reasons.most_common(12):
        print(f"  rejected {count:5d}: {reason}")
    print("\n".join(total.lines()))
    return 0 if not total.crashed else 1


if __name__ == "__main__":
    sys.exit(main())
