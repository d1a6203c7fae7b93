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
  env, to exactly the claimed reward;
* the code it ships (``code/``) is what its manifest lists, and a plug-in agent ships its
  module: the agent is described (stochastic or not, the problems it works on) by its own
  class, asked in the sandbox, never imported here;
* on the open track, ``reruns`` episodes drawn at random after submission (benchmark and
  seed) run again in the sandbox (:mod:`optgym.sandbox`) from that code, with the task's
  budget, and must give the line back: the same actions and reward where the task counts
  work (agents must be deterministic given their seed), a score within the task's
  ``rerun_rtol`` where it counts time. A relabelled agent, a copied seed or a run with a
  larger budget than the line says do not;
* on the closed track, the entry carries the attestation of the board's verifier that its
  own ``optgym leaderboard rerun`` made it (:mod:`.signing`): no one else can claim the
  track.

The outcome is a :class:`Verification` (a record with the verifier's version, host and
time), written next to the submission. Any exception inside a check is a failure: verify
never reports success after an error.

>>> v = verify_submission(Path("my-entry"))
>>> v.ok, v.problems[:3]
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optgym.datasets.files import write_file
from optgym.leaderboard.submission import (
    ATTESTATION,
    MIN_SEEDS,
    VERIFICATION,
    Submission,
    load_submission,
    manifest_problems,
)

#: Problems listed in a verification record, at most (the count is always given).
MAX_PROBLEMS = 50
#: Open-track episodes run again in the sandbox by default.
DEFAULT_RERUNS = 3



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
    # episodes run again in the sandbox (the open track's check of the agent and its seeds)
    reruns: int = 0
    # the board verifier's signature (:mod:`.signing`), added when the board files the entry
    signature: dict[str, str] | None = None

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
            f"replays, {self.reruns} reruns, {len(self.problems)} problems, "
            f"{self.seconds:.1f} s"
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
    """The lines that parse as objects, and a problem per line that does not (at most
    :data:`~optgym.state.MAX_RESULT_LINES`: ``ValueError`` for a longer file, before any
    line is parsed)."""
    from optgym.leaderboard.submission import check_result_lines

    check_result_lines(results, "the results file")
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


def _check_agent(sub: Submission, task: Any) -> list[str]:
    """The manifest's agent works on the task, is written as the runner writes it, and is
    stochastic exactly when its class says so. A plug-in must ship its module; its class is
    asked in the sandbox, never imported here."""
    from optgym.agents.registry import (
        check_problems,
        check_recorded_agent,
        registry,
        resolve_agent,
    )

    manifest = sub.manifest
    why = check_recorded_agent(manifest["agent"], task)
    if why:
        return [f"manifest agent: {why}"]
    if manifest["agent"].partition(":")[0] in registry():
        spec = resolve_agent(manifest["agent"])
        canonical, stochastic = spec.canonical, spec.stochastic
    else:
        module = manifest["agent"].partition(":")[0].split(".")[0]
        if not any(n.split("/")[0] in (module, f"{module}.py") for n in sub.code):
            return [
                f"manifest agent is a plug-in whose module {module!r} the submission does "
                "not ship (code/): a plug-in's code must be in the submission to be verified"
            ]
        try:
            with _shipped_code(sub) as code:
                described = _describe(manifest["agent"], code)
            check_problems(manifest["agent"], described["problems"], task)
        except (ValueError, RuntimeError) as e:
            return [f"manifest agent: {e}"]
        canonical, stochastic = described["canonical"], described["stochastic"]
    if canonical != manifest["agent"]:
        return ["manifest agent is not in canonical form (as the runner writes it)"]
    if stochastic and not manifest["stochastic"]:
        return [
            "manifest says the agent is not stochastic, but its class does not declare "
            "stochastic = False"
        ]
    return []


def _describe(agent: str, code: Path | None) -> dict[str, Any]:
    """What the agent's class says of itself, asked in the sandbox under limits."""
    from optgym.executors import Limits, run_in_child
    from optgym.sandbox import MAX_PIDS, describe_agent

    limits = Limits(timeout=300, memory_mb=2048, pids=MAX_PIDS, require_cgroup=True)
    return run_in_child(describe_agent, agent, code, limits=limits)


@contextlib.contextmanager
def _shipped_code(sub: Submission) -> Iterator[Path | None]:
    """The submission's code in a private folder of its own (None when it ships none)."""
    from optgym.leaderboard.submission import extract_code

    if not sub.code:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="optgym-code-") as tmp:
        os.chmod(tmp, 0o755)  # the sandbox's user reads it
        yield extract_code(sub, Path(tmp) / "code")


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
    """Validate every line, replaying in ``replayer`` (which then holds what each replay
    gave); (problems, (line, passed, message) per line)."""
    from optgym.validate import PASSED, validate_results

    with tempfile.TemporaryDirectory(prefix="optgym-verify-") as tmp:
        path = Path(tmp) / "results.jsonl"
        path.write_bytes(results)
        verdicts = validate_results(path, split=split, accept_untagged=True, replayer=replayer)
    problems = [f"line {n}: {message}" for n, verdict, message in verdicts if verdict != PASSED]
    return problems, [(n, v == PASSED, m) for n, v, m in verdicts]


def _second_replays_if(
    rows: list[dict], task: Any, first: Any, log: Callable[[str], None]
) -> tuple[int, list[str]] | None:
    """The second replays where the task's env is deterministic, else None."""
    from optgym.tasks import env_entry

    if env_entry(task).nondeterministic:
        return None
    log(f"replaying {len(rows)} states a second time")
    return _second_replays(rows, task, first)


def _second_replays(rows: list[dict], task: Any, first: Any) -> tuple[int, list[str]]:
    """Replay every distinct state once more in a fresh env, which must give the very reward
    the first replay gave here (``first``, the replayer validate used: on another machine,
    floats of a retraining may differ from the line's within the task's tolerance, but not
    from one replay to the next); (replays, problems)."""
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
            before = first.replayed_reward(task.name, row)
            if reward != (state.reward if before is None else before):
                problems.append(
                    f"line {i}: a second replay gave reward {reward!r}, the first "
                    f"{state.reward if before is None else before!r}: the env is "
                    "deterministic, so the two must be identical"
                )
    finally:
        env.close()
    return len(done), problems


def _same_result(claimed: dict, rerun: dict, task: Any) -> str | None:
    """Why a rerun line does not give back the claimed one, or None."""
    from optgym.tasks import hardware_dependent

    if rerun.get("error") is not None:
        return f"ended with an error: {str(rerun['error'])[:300]}"
    if hardware_dependent(task):  # a time budget or measured times: within the tolerance
        a, b = float(claimed["score"]), float(rerun["score"])
        if abs(a - b) <= task.rerun_rtol * max(1.0, abs(a)):
            return None
        return (f"scored {b:.6g}, the line {a:.6g} (the task allows a relative "
                f"{task.rerun_rtol:g})")  # fmt: skip
    old, new = claimed["state"], rerun["state"]
    keys = ("actions", "reference", "reward")
    if all(old.get(k) == new.get(k) for k in keys) and claimed["reward"] == rerun["reward"]:
        return None
    return (f"gave reward {rerun['reward']!r}, the line {claimed['reward']!r}, or other "
            "actions (the task counts work: an agent must be deterministic given its seed, "
            "and a line what its agent ran with the task's budget)")  # fmt: skip


def _rerun_sample(
    sub: Submission, rows: list[dict], task: Any, reruns: int,
    log: Callable[[str], None],
) -> tuple[int, list[str]]:  # fmt: skip
    """Run ``reruns`` of the lines, drawn now at random, again in the sandbox from the
    submission's code, until one does not give its line back: (episodes drawn, problems)."""
    import random
    from functools import partial

    from optgym.bench import sandboxed_episode
    from optgym.budget import Budget
    from optgym.executors import DEFAULT_TIMEOUT, Limits, LocalExecutor, stream
    from optgym.sandbox import MAX_PIDS, unavailable
    from optgym.tasks import problem_of_task

    why = unavailable()
    if why is not None:
        return 0, [f"the episodes cannot be run again in the sandbox here ({why}); "
                   "--reruns 0 verifies by replay alone"]  # fmt: skip
    drawn = random.SystemRandom().sample(range(len(rows)), min(reruns, len(rows)))
    log(f"running {len(drawn)} episodes again in the sandbox")
    limits = Limits(DEFAULT_TIMEOUT, problem_of_task(task).resources.limit_mb,
                    cpu_seconds=task.cpu_seconds, pids=MAX_PIDS, require_cgroup=True)  # fmt: skip
    problems = []
    with _shipped_code(sub) as code:
        episode = partial(sandboxed_episode, code_dir=str(code) if code else None)
        jobs = [(task.name, rows[i]["agent"], rows[i]["benchmark"], rows[i]["seed"],
                 Budget.parse(str(task.budget))) for i in drawn]  # fmt: skip
        with LocalExecutor(1, limits) as executor:
            for job, future in stream(executor, episode, jobs):
                i = drawn[jobs.index(job)]
                try:
                    line = future.result()
                except Exception as e:  # noqa: BLE001  the episode's process failed
                    line = {"error": f"{type(e).__name__}: {e}"}
                why = _same_result(rows[i], line, task)
                if why:
                    problems.append(
                        f"line {i + 1}: run again in the sandbox from the submission's code "
                        f"(benchmark {rows[i]['benchmark']}, seed {rows[i]['seed']}), it {why}"
                    )
                    break  # the entry is refused: the other draws would tell nothing more
    return len(drawn), problems


def _check_attestation(sub: Submission) -> list[str]:
    """A closed-track entry carries the board verifier's attestation that its own rerun
    made it."""
    from optgym.leaderboard import board_dir
    from optgym.leaderboard.signing import signature_problem

    attestation = sub.attestation
    why = None
    if attestation is None:
        why = "it carries none"
    else:
        why = signature_problem(attestation, "attestation", board_dir())
        if why is None and (attestation.get("submission") != sub.id
                            or attestation.get("round") != sub.manifest["round"]):  # fmt: skip
            why = "it attests another submission or round"
    if why is None:
        return []
    return [f"closed-track entries are made by optgym leaderboard rerun only, and carry the "
            f"board verifier's attestation ({ATTESTATION}): {why}"]  # fmt: skip


def expected_benchmarks(manifest: dict, task: Any) -> list[str]:
    """The benchmarks a submission must cover: the task's leaderboard test set, or on the
    closed track its round's (which must be revealed or held here)."""
    from optgym.tasks import board_benchmarks

    if manifest["track"] == "closed":
        from optgym.leaderboard.rounds import round_benchmarks

        return round_benchmarks(task, manifest["round"])
    return board_benchmarks(task)


def check_submission(
    sub: Submission, replayer: Any = None, log: Callable[[str], None] | None = None,
    reruns: int = DEFAULT_RERUNS,
) -> Verification:  # fmt: skip
    """Every check of the module docstring on a loaded submission (see
    :func:`verify_submission`)."""
    from optgym.tasks import get_task, hardware_dependent

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
    from optgym.leaderboard.submission import code_problems

    out.problems += code_problems(sub)
    if manifest["track"] == "closed":
        out.problems += _check_attestation(sub)
    if not out.problems:
        out.problems += _check_agent(sub, task)
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
    from optgym.validate import Replayer

    own = replayer is None  # a replayer of this check's own, kept for the second replays
    replayer = Replayer() if own else replayer
    try:
        # a closed-track round draws test benchmarks past the board set: still the test split
        problems, verdicts = _validate_lines(sub.results, task, replayer, None)
        second = _second_replays_if(rows, task, replayer, log) if not problems else None
    finally:
        if own:
            replayer.close()
    out.problems += problems
    out.passed = sum(ok for _, ok, _ in verdicts)
    if out.problems:
        return out
    out.scores = [(str(r["benchmark"]), int(r["seed"]), float(r["score"])) for r in rows]
    if second is not None:
        out.second_replays, problems = second
        out.problems += problems
    if not out.problems and manifest["track"] == "open" and reruns > 0:
        out.reruns, problems = _rerun_sample(sub, rows, task, reruns, log)
        out.problems += problems
    out.ok = not out.problems
    return out


def verify_submission(
    path: str | Path,
    replayer: Any = None,
    record: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    reruns: int = DEFAULT_RERUNS,
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
            out = check_submission(sub, replayer, log, reruns)
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
        # by a new file renamed into place: a link there is replaced, never written through
        write_file(Path(record), (json.dumps(out.to_dict(), indent=1) + "\n").encode())
    return out


def read_verification(path: str | Path) -> Verification:
    """A verification record from ``path``; ``ValueError`` when it is missing or malformed."""
    from optgym.datasets.files import read_json_object

    return Verification.from_dict(read_json_object(path, "verification record", 16 * 1024**2, 8))


__all__ = [
    "ATTESTATION",
    "DEFAULT_RERUNS",
    "Verification",
    "check_submission",
    "expected_benchmarks",
    "read_verification",
    "verify_submission",
]
