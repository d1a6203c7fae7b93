"""The tamper fuzzer: change every field of real result lines and check validate refuses them.

:func:`tamperings` walks a result line and yields, for every field and every value nested in
it (the state, its actions, extras, versions and config included; long lists and objects by
their first, middle and last items), copies of the line with that one value changed: numbers
shifted and scaled, strings and types swapped, items dropped, added or reordered, fields
removed or added, seeds and benchmark URIs written another way. :func:`fuzz` validates every
tampered copy, in a file of its own beside the genuine lines, and counts what was refused
and what passed; a tampered line that passes must change nothing a report shows.

Run it on results files (``python -m optgym.tamper results/*.jsonl``); it prints one line
per figure. ``--accept-untagged`` fuzzes what a replay alone catches (as for lines written
by another installation), without the integrity tag.
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


def _variants(value: Any) -> Iterator[tuple[str, Any]]:
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
        for what, new in _variants(value):
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m optgym.tamper RESULTS...``: fuzz the lines of each file, print figures."""
    from optgym.budget import Budget
    from optgym.state import json_lines

    parser = argparse.ArgumentParser(prog="python -m optgym.tamper", description=__doc__)
    parser.add_argument("results", nargs="+", help="results files of genuine, tagged lines")
    parser.add_argument("--accept-untagged", action="store_true")
    parser.add_argument("--retag", action="store_true", help="re-tag tampered lines")
    parser.add_argument("--limit", type=int, default=None, help="tamperings per line")
    args = parser.parse_args(argv)
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
