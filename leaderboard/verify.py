"""``optgym leaderboard verify``: re-execute a submission and say, with reasons, whether it
stands.

A submission passes only when every check ran and none failed:

* its manifest is well formed (:func:`~optgym.leaderboard.submission.manifest_problems`),
  names a known task and an agent that works on it, and says it is stochastic when the
  agent's class is;
* every line is for that task and agent, finished without an error, and was run with the
  manifest's OptGym version;
* the lines cover the task's leaderboard test set exactly (or the hidden round's, on the
  closed track), with the same seeds on every benchmark, and at least
  :data:`~optgym.leaderboard.submission.MIN_SEEDS` of them when the agent is stochastic;
* the declared training data holds no test-split benchmark;
* a task ranked within a hardware class carries a calibration record;
* every line passes ``optgym validate`` (schema, the task's budget and split, a replay that
  reproduces reward, work, versions, extras and score); lines written by another
  installation are accepted untagged, as their tag is not this one's key;
* where the env's reward is deterministic, every state replays a second time, in a fresh
  env, to exactly the claimed reward.

The outcome is a :class:`Verification` (a record with the verifier's version, host and
time), written next to the submission. Any exception inside a check is a failure: verify
never reports success after an error.

>>> v = verify_submission(Path("my-entry"))
>>> v.ok, v.problems[:3]
"""

from __future__ import annotations

import datetime
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optgym.leaderboard.submission import (
    MIN_SEEDS,
    VERIFICATION,
    Submission,
    load_submission,
    manifest_problems,
)

#: Problems listed in a verification record, at most (the count is always given).
MAX_PROBLEMS = 50


@dataclass
class Verification:
    """The verdict on one submission, as stored next to it (``verification.json``)."""

    submission: str  # its id
    ok: bool
    problems: list[str]
    task: str | None = None
    lines: int = 0
    passed: int = 0
    second_replays: int = 0
    seconds: float = 0.0
    verifier: dict[str, Any] = field(default_factory=dict)
    # one (benchmark, seed, score) per line that passed
    scores: list[tuple[str, int, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verification:
        """A record read back; ``ValueError`` when it does not have a record's form."""
        try:
            out = cls(**data)
            out.scores = [(str(b), int(s), float(x)) for b, s, x in out.scores]
        except (TypeError, ValueError):
            raise ValueError("verification record does not have the fields of one") from None
        if not isinstance(out.ok, bool) or not isinstance(out.problems, list):
            raise ValueError("verification record has a malformed verdict")
        return out

    def summary(self) -> str:
        """One line: the verdict, the lines that passed, the time."""
        verdict = "VERIFIED" if self.ok else "REFUSED"
        return (
            f"{verdict} {self.submission[:16]} ({self.task or 'unknown task'}): "
            f"{self.passed}/{self.lines} lines replayed, {self.second_replays} second "
            f"replays, {len(self.problems)} problems, {self.seconds:.1f} s"
        )


def _verifier() -> dict[str, Any]:
    import optgym
    from optgym.leaderboard.hardware import fingerprint

    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "optgym": optgym.__version__,
        "host": fingerprint(),
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _parse_rows(results: bytes) -> tuple[list[dict], list[str]]:
    """The lines that parse as objects, and a problem per line that does not."""
    rows, problems = [], []
    for lineno, raw in enumerate(results.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except (ValueError, RecursionError):
            problems.append(f"line {lineno}: not JSON")
            continue
        if not isinstance(row, dict):
            problems.append(f"line {lineno}: not a JSON object")
            continue
        rows.append(row)
    return rows, problems


def _check_agent(manifest: dict, task: Any) -> list[str]:
    from optgym.agents.registry import check_recorded_agent, registry, resolve_agent

    why = check_recorded_agent(manifest["agent"], task)
    if why:
        return [f"manifest agent: {why}"]
    if manifest["agent"].partition(":")[0] in registry():
        spec = resolve_agent(manifest["agent"])
        if spec.canonical != manifest["agent"]:
            return ["manifest agent is not in canonical form (as the runner writes it)"]
        if spec.stochastic and not manifest["stochastic"]:
            return [
                "manifest says the agent is not stochastic, but its class does not declare "
                "stochastic = False"
            ]
    return []


def _check_lines_match(manifest: dict, rows: list[dict]) -> list[str]:
    """Every line is the manifest's task and agent, finished, with its OptGym version, on
    one of its datasets; every dataset it lists is used."""
    wrong: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows, 1):
        if row.get("task") != manifest["task"]:
            wrong["is for another task than the manifest's"].append(i)
        if row.get("agent") != manifest["agent"]:
            wrong["has another agent than the manifest's"].append(i)
        if row.get("error") is not None:
            wrong["ended with an error (every episode must finish)"].append(i)
        state = row.get("state")
        versions = state.get("versions") if isinstance(state, dict) else None
        if (
            not isinstance(versions, dict)
            or versions.get("optgym") != manifest["versions"]["optgym"]
        ):
            wrong["was run with another OptGym version than the manifest's"].append(i)
        if _dataset_of(row.get("benchmark")) not in manifest["versions"]["datasets"]:
            wrong["is on a dataset (or dataset version) the manifest does not list"].append(i)
    out = [f"{len(lines)} lines {why} (lines {_span(lines)})" for why, lines in wrong.items()]
    used = {_dataset_of(row.get("benchmark")) for row in rows}
    unused = [d for d in manifest["versions"]["datasets"] if d not in used]
    if unused:
        out.append(f"the manifest lists datasets no line uses: {len(unused)}")
    return out


def _dataset_of(uri: Any) -> str | None:
    """The dataset URI (``generator://csmith-v0``) of a benchmark URI, None if malformed."""
    from optgym.datasets.uri import BenchmarkUri

    try:
        return BenchmarkUri.parse(uri).dataset_uri if isinstance(uri, str) else None
    except ValueError:
        return None


def _span(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:5]))
    return shown + (f" and {len(numbers) - 5} more" if len(numbers) > 5 else "")


def _check_coverage(rows: list[dict], expected: list[str], stochastic: bool) -> list[str]:
    """The lines cover ``expected`` exactly, with one seed set, enough seeds when stochastic,
    and one line per (benchmark, seed)."""
    seeds: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        seeds[str(row.get("benchmark"))].append(row.get("seed"))
    out = []
    missing = [b for b in expected if b not in seeds]
    extra = [b for b in seeds if b not in set(expected)]
    if missing:
        out.append(f"{len(missing)} benchmarks of the test set have no line: {_uris(missing)}")
    if extra:
        out.append(f"{len(extra)} benchmarks are not in the test set: {_uris(extra)}")
    sets = {json.dumps(sorted(map(str, s))) for s in seeds.values()}
    if len(sets) > 1:
        out.append("the benchmarks were run with different seeds (every one needs the same)")
    for uri, found in seeds.items():
        if len(set(map(str, found))) != len(found):
            out.append(f"a benchmark has two lines with one seed: {_uris([uri])}")
            break
    fewest = min((len(set(map(str, s))) for s in seeds.values()), default=0)
    if stochastic and fewest < MIN_SEEDS:
        out.append(f"a stochastic agent needs at least {MIN_SEEDS} seeds a benchmark, got {fewest}")
    return out


def _uris(uris: list[str]) -> str:
    from optgym.datasets.uri import BenchmarkUri

    shown = []
    for uri in uris[:3]:
        try:
            shown.append(str(BenchmarkUri.parse(uri)) if len(uri) <= 200 else "<a long URI>")
        except ValueError:
            shown.append("<a malformed URI>")
    return ", ".join(shown) + (f" and {len(uris) - 3} more" if len(uris) > 3 else "")


def _check_training_data(manifest: dict, task: Any) -> list[str]:
    """No declared training data lies in the test split of any dataset."""
    from optgym.datasets import all_datasets

    registry = all_datasets()
    out = []
    for item in manifest["training_data"]:
        if "benchmark" in item:
            try:
                split = registry.dataset(item["benchmark"]).split_of(item["benchmark"])
            except ValueError as e:
                out.append(f"manifest training_data: {e}")
                continue
            if split == "test":
                out.append(
                    f"manifest training_data holds a test benchmark: {_uris([item['benchmark']])}"
                )
        else:
            try:
                registry.dataset(item["dataset"])
            except ValueError as e:
                out.append(f"manifest training_data: {e}")
    return out


def _validate_lines(
    results: bytes, task: Any, replayer: Any, split: str | None
) -> tuple[list[str], list[tuple[int, bool, str]]]:
    from optgym.validate import PASSED, validate_results

    with tempfile.TemporaryDirectory(prefix="optgym-verify-") as tmp:
        path = Path(tmp) / "results.jsonl"
        path.write_bytes(results)
        verdicts = validate_results(path, split=split, accept_untagged=True, replayer=replayer)
    problems = [f"line {n}: {message}" for n, verdict, message in verdicts if verdict != PASSED]
    return problems, [(n, v == PASSED, m) for n, v, m in verdicts]


def _second_replays(rows: list[dict], task: Any) -> tuple[int, list[str]]:
    """Replay every distinct state once more in a fresh env: (replays, problems)."""
    import optgym
    from optgym.state import EpisodeState

    env = optgym.make(task.env_id, step_limit=False, **task.env_kwargs)
    done: set[str] = set()
    problems = []
    try:
        for i, row in enumerate(rows, 1):
            key = json.dumps({**row["state"], "walltime": 0}, sort_keys=True)
            if key in done:
                continue
            done.add(key)
            state = EpisodeState.from_dict(row["state"])
            reward = env.unwrapped.apply(state)
            if reward != state.reward:
                problems.append(
                    f"line {i}: a second replay gave reward {reward!r}, not {state.reward!r}: "
                    "the env is deterministic, so the two must be identical"
                )
    finally:
        env.close()
    return len(done), problems


def expected_benchmarks(manifest: dict, task: Any) -> list[str]:
    """The benchmarks a submission must cover: the task's leaderboard test set, or on the
    closed track its round's (which must be revealed or held here)."""
    from optgym.leaderboard.tasks import board_benchmarks

    if manifest["track"] == "closed":
        from optgym.leaderboard.rounds import round_benchmarks

        return round_benchmarks(task, manifest["round"])
    return board_benchmarks(task)


def check_submission(
    sub: Submission, replayer: Any = None, log: Callable[[str], None] | None = None
) -> Verification:
    """Every check of the module docstring on a loaded submission (see
    :func:`verify_submission`)."""
    from optgym.leaderboard.tasks import get_task, hardware_dependent

    log = log or (lambda message: None)
    out = Verification(submission=sub.id, ok=False, problems=[], verifier=_verifier())
    out.problems = manifest_problems(sub.manifest)
    if out.problems:
        return out
    manifest = sub.manifest
    try:
        task = get_task(manifest["task"])
    except ValueError as e:
        out.problems.append(f"manifest task: {e}")
        return out
    out.task = task.name
    rows, out.problems = _parse_rows(sub.results)
    out.lines = len(rows) + len(out.problems)
    if not rows:
        out.problems.append("the results file has no lines")
        return out
    log(f"checking the manifest against {len(rows)} lines")
    out.problems += _check_agent(manifest, task)
    out.problems += _check_lines_match(manifest, rows)
    try:
        expected = expected_benchmarks(manifest, task)
    except ValueError as e:
        out.problems.append(str(e))
        expected = []
    if expected:
        out.problems += _check_coverage(rows, expected, manifest["stochastic"])
    out.problems += _check_training_data(manifest, task)
    if hardware_dependent(task) and manifest.get("hardware") is None:
        out.problems.append(
            f"task {task.name} is ranked within a hardware class: the manifest needs the "
            "hardware record of optgym calibrate"
        )
    if out.problems:  # replaying lines of a malformed submission would prove nothing
        return out
    log(f"replaying {len(rows)} lines")
    # a closed-track round draws test benchmarks past the board set: still the test split
    problems, verdicts = _validate_lines(sub.results, task, replayer, None)
    out.problems += problems
    out.passed = sum(ok for _, ok, _ in verdicts)
    if out.problems:
        return out
    out.scores = [(str(r["benchmark"]), int(r["seed"]), float(r["score"])) for r in rows]
    from optgym.leaderboard.tasks import env_entry

    if not env_entry(task).nondeterministic:
        log(f"replaying {len(rows)} states a second time")
        out.second_replays, problems = _second_replays(rows, task)
        out.problems += problems
    out.ok = not out.problems
    return out


def verify_submission(
    path: str | Path,
    replayer: Any = None,
    record: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Verification:
    """Verify the submission at ``path`` (a folder or an archive) and write the record to
    ``record`` (default: ``verification.json`` inside a folder, ``<archive>.verification.json``
    beside an archive; ``False``-y path: ``"-"`` writes nothing). A submission that cannot
    even be read is refused with the reason; no exception escapes but ``OSError`` on
    writing the record."""
    start = time.monotonic()
    path = Path(path)
    try:
        sub = load_submission(path)
    except ValueError as e:
        out = Verification(submission="", ok=False, problems=[str(e)], verifier=_verifier())
    else:
        try:
            out = check_submission(sub, replayer, log)
        except Exception as e:  # noqa: BLE001  a crash in a check is a refusal, never a pass
            out = Verification(
                submission=sub.id, ok=False, verifier=_verifier(),
                problems=[f"verification failed: {type(e).__name__}: {str(e)[:300]}"],
            )  # fmt: skip
    out.seconds = round(time.monotonic() - start, 2)
    if len(out.problems) > MAX_PROBLEMS:
        more = len(out.problems) - MAX_PROBLEMS
        out.problems = out.problems[:MAX_PROBLEMS] + [f"and {more} more problems"]
    if record != "-" and out.submission:
        if record is None:
            record = path / VERIFICATION if path.is_dir() else Path(f"{path}.verification.json")
        Path(record).write_text(json.dumps(out.to_dict(), indent=1) + "\n")
    return out


def read_verification(path: str | Path) -> Verification:
    """A verification record from ``path``; ``ValueError`` when it is missing or malformed."""
    from optgym.datasets.files import read_json_object

    return Verification.from_dict(read_json_object(path, "verification record", 16 * 1024**2, 8))


__all__ = [
    "Verification",
    "check_submission",
    "expected_benchmarks",
    "read_verification",
    "verify_submission",
]
