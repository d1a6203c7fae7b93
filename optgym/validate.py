"""Check every line of a results file: its fields against its task, then its replay.

A line passes when:

* it has the form of a result line (:mod:`optgym.result_line`), and its integrity tag shows
  that this installation's runner wrote it as it is (or the caller accepts lines from
  elsewhere: then what a replay cannot recompute, the seed, the times and the budget used,
  is checked only for consistency);
* its task is known and its agent is registered for it;
* its budget is the task's (or the one the caller names) and what it used fits in it;
* its benchmark is in the task's split;
* its state was made on the task's env with the task's config;
* the state replays, in an env rebuilt from that config, to the reward it claims, with no
  more work than the line says it used, with the same versions (backend, benchmark hash),
  to the extras it claims (those the env recomputes; an agent's trace for consistency), and
  to the score it claims.

Anything else fails with a reason. An errored line followed by a later line of the same
episode (a rerun retried it) is superseded; two lines of one finished episode are a
duplicate.

>>> for lineno, verdict, message in validate_results(Path("results/pass-ordering.jsonl")):
...     print(lineno, verdict, message)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optgym.budget import Budget
from optgym.problem import Task
from optgym.result_line import (
    RESULT_KEYS,
    ROW_FIELDS,
    TAG_FIELD,
    names,
    schema_problem,
    tag_matches,
)
from optgym.state import EpisodeState, json_lines

#: Relative tolerance between a line's claimed score and the replayed one.
SCORE_RTOL = 1e-9
#: What ``split`` may be: a split name, or ``"any"`` to accept benchmarks outside the task's.
SPLIT_CHOICES = ("train", "validation", "test", "any")
#: Seconds by which a line's wall times may differ (the meter and the runner read the clock
#: a moment apart).
TIME_SLACK = 0.5
#: A line's verdicts: a pass, a failure, or an errored line that a later line retried.
PASSED, FAILED, SUPERSEDED = "passed", "failed", "superseded"


def _close(a: float, b: float, rtol: float) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)


class Replayer:
    """What validate replays in: one env per task (made with the task's config on first
    use, closed on failure), and the outcomes of recent replays."""

    #: Replays remembered (a state met again, with other top-level fields, is not replayed).
    MEMO_SIZE = 256

    def __init__(self) -> None:
        self._envs: dict[str, Any] = {}
        # key -> (why it failed or None, the score, the reward the replay gave)
        self.memo: dict[str, tuple[str | None, float, float | None]] = {}

    def remember(self, key: str, outcome: tuple[str | None, float, float | None]) -> None:
        if len(self.memo) >= self.MEMO_SIZE:
            del self.memo[next(iter(self.memo))]
        self.memo[key] = outcome

    def replayed_reward(self, task_name: str, row: dict) -> float | None:
        """The reward this replayer's replay of ``row``'s state gave (None: not replayed
        here, or it failed): what a second replay must give back exactly."""
        outcome = self.memo.get(replay_key(task_name, row))
        return None if outcome is None or outcome[0] else outcome[2]

    def env(self, task: Task) -> Any:
        import optgym

        if task.name not in self._envs:
            self._envs[task.name] = optgym.make(task.env_id, step_limit=False, **task.env_kwargs)
        return self._envs[task.name]

    def drop(self, task: Task) -> None:
        env = self._envs.pop(task.name, None)
        if env is not None:
            try:
                env.close()
            except Exception:  # noqa: BLE001  a crashed env may fail to close
                pass

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_budget(row: dict, task: Task, expected: Budget | None) -> str | None:
    """Why the line's budget or its use is wrong, or None (the schema is checked)."""
    wanted = expected if expected is not None else task.budget
    try:
        budget = Budget.parse(row["budget"])
    except ValueError as e:
        return f"bad budget: {e}"
    if budget != wanted or row["budget"] != str(wanted):
        return f"budget differs from the task's {str(wanted)!r} (or is not written as it is)"
    used = row["budget_used"]
    for unit in ("calls", "steps"):
        limit = getattr(budget, unit)
        if limit is not None and used[unit] > limit:
            return f"budget_used {unit}={used[unit]:g} exceeds the budget's {limit}"
    if budget.seconds_late(used["seconds"]) is not None:
        return f"budget_used seconds={used['seconds']:g} exceed the budget's {budget.seconds:g}"
    return None


def _check_times(row: dict) -> str | None:
    """Why the line's times do not hold together, or None: the agent's wall time is what
    the budget meter counted as seconds, and the state was read within it."""
    walltime, seconds = row["walltime"], row["budget_used"]["seconds"]
    if abs(walltime - seconds) > TIME_SLACK + 0.05 * walltime:
        return f"walltime {walltime:g} s differs from budget_used seconds {seconds:g}"
    if row["state"]["walltime"] > walltime + TIME_SLACK:
        return f"the state's walltime exceeds the episode's ({walltime:g} s)"
    return None


def _check_split(benchmark: str, task: Task, split: str | None) -> str | None:
    """Why the benchmark is not in the task's split (or ``split``), or None."""
    from optgym.datasets import all_datasets
    from optgym.datasets.uri import BenchmarkUri

    try:
        parsed = BenchmarkUri.parse(benchmark)
    except ValueError as e:
        return str(e)
    if split == "any":
        return None
    splits = task.splits()
    if parsed.scheme == "file" or parsed.dataset_uri not in splits:
        return (
            f"benchmark {benchmark} is not in the task's datasets "
            f"({', '.join(splits)}); --split any accepts it"
        )
    wanted = split or splits[parsed.dataset_uri]
    try:
        found = all_datasets().dataset(benchmark).split_of(benchmark)
    except ValueError as e:
        return str(e)
    if found != wanted:
        return f"benchmark {benchmark} is in the {found or 'no'} split, the task scores {wanted}"
    return None


def _check_file(benchmark: str, allowed_files: Sequence[str]) -> str | None:
    """Why a line may not replay its benchmark, a local file the caller did not name, or
    None: a results file never makes validate read a file (its existence, hash or size
    would be an answer)."""
    if not benchmark.startswith("file:"):
        return None
    named = {f if f.startswith("file:") else f"file://{Path(f).resolve()}" for f in allowed_files}
    if benchmark in named:
        return None
    return (
        "the benchmark is a local file not named on the command line (optgym validate "
        "--allow-file PATH replays it): a results file never makes validate read one"
    )


def _check_fields(
    row: Any, budget: Budget | None, split: str | None, accept_untagged: bool,
    allowed_files: Sequence[str] = (),
) -> tuple[str | None, Task | None]:  # fmt: skip
    """(why the line fails before any replay or None, its task)."""
    from optgym.agents.registry import check_recorded_agent, registry, resolve_agent
    from optgym.tasks import get_task

    why = schema_problem(row)
    if why:
        return why, None
    if row["error"] is not None:
        return "the episode errored when it was run: nothing to replay", None
    try:
        task = get_task(row["task"])
    except ValueError as e:
        return str(e), None
    why = check_recorded_agent(row["agent"], task)
    if why:
        return f"agent: {why}", task
    if (
        row["agent"].partition(":")[0] in registry()
        and resolve_agent(row["agent"]).canonical != row["agent"]
    ):
        return "agent is not written as the runner writes it (its canonical form)", task
    why = (
        _check_budget(row, task, budget)
        or _check_file(row["benchmark"], allowed_files)
        or _check_split(row["benchmark"], task, split)
        or _check_times(row)
    )
    if why:
        return why, task
    if not accept_untagged and not tag_matches(row):
        had = "a tag that does not match" if TAG_FIELD in row else "no integrity tag"
        return (
            f"the line has {had}: it was changed after the runner wrote it, or written by "
            "another installation (--accept-untagged replays it, but cannot check its agent, "
            "seed, walltime, budget_used or measured extras)"
        ), task
    return None, task


def _check_line(
    row: Any,
    replayer: Replayer,
    budget: Budget | None,
    split: str | None,
    accept_untagged: bool = False,
    allowed_files: Sequence[str] = (),
) -> tuple[bool, str]:
    """(ok, message) for one parsed line."""
    why, task = _check_fields(row, budget, split, accept_untagged, allowed_files)
    if why:
        return False, why
    assert task is not None
    state = EpisodeState.from_dict(row["state"])
    if state.env_id != task.env_id:
        return False, f"state is for another env; task {task.name!r} uses {task.env_id!r}"
    if state.benchmark != row["benchmark"]:
        return False, "the state's benchmark differs from the line's"
    if row["reward"] != state.reward:
        return False, "claimed reward differs from the state's"
    used = row["budget_used"]
    steps = len(state.actions) + (state.reference is not None)
    if steps > used["steps"]:
        return False, f"the state has {steps} steps, budget_used says {used['steps']}"
    key = replay_key(task.name, row)
    if key not in replayer.memo:
        replayer.remember(key, _replay(replayer, task, state, used))
    why, score, _ = replayer.memo[key]
    if why:
        return False, why
    if not _close(float(row["score"]), score, max(SCORE_RTOL, task.score_rtol)):
        return False, f"claimed score {row['score']!r}, replay gives {score!r}"
    note = "" if tag_matches(row) else (
        " (untagged: its agent, seed, times and budget_used not checked)"
    )
    episode = f"{row['agent']} on {row['benchmark']} seed {row['seed']}"
    return True, f"ok: {episode}: score {score:.6g}{note}"


def _differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The keys whose values differ between ``a`` and ``b`` (missing counts), sorted."""
    missing = object()
    return sorted(k for k in set(a) | set(b) if a.get(k, missing) != b.get(k, missing))


def replay_key(task_name: str, row: dict) -> str:
    """What identifies a line's replay: its task, state (less its wall time) and budget use."""
    return json.dumps([task_name, {**row["state"], "walltime": 0}, row["budget_used"]],
                      sort_keys=True)  # fmt: skip


def _replay(
    replayer: Replayer, task: Task, state: EpisodeState, used: dict[str, Any]
) -> tuple[str | None, float, float | None]:
    """(why the state does not replay as it claims or None, the score the replay gives, the
    reward it gives)."""
    try:
        env = replayer.env(task)
        base = env.unwrapped
        if state.config != base.config:
            diff = _differing(state.config, base.config)
            return f"state config differs from the task's in: {names(diff)}", 0.0, None
        result = base.validate(state)
        if not result.ok:
            return f"replay failed: {result.error}", 0.0, None
        if result.work > used["calls"]:
            return (
                f"the replay spent {result.work} {base.work_unit}, budget_used says {used['calls']}"
            ), 0.0, None
        replayed = base.state
        if state.versions != replayed.versions:
            diff = _differing(state.versions, replayed.versions)
            return f"versions differ from this replay's in: {names(diff)}", 0.0, None
        why = base.check_extras(state.extras, used)
        if why:
            return why, 0.0, None
        return None, float(task.score(env)), float(replayed.reward)
    except Exception as e:  # noqa: BLE001  a crash replaying one line fails that line only
        replayer.drop(task)
        return f"replay failed: {type(e).__name__}: {str(e)[:300]}", 0.0, None


def _episode_key(row: Any) -> str | None:
    if not isinstance(row, dict) or not all(k in row for k in RESULT_KEYS):
        return None
    return json.dumps([row[k] for k in RESULT_KEYS], sort_keys=True)


def replay_problem(row: dict, allowed_files: Sequence[str] = ()) -> str | None:
    """Why a finished line does not hold (its fields, its budget, its replay in a fresh env)
    or None: what the runner checks before it tags a line, in a process that runs no
    agent. The line's own budget is the one it must fit; any split is accepted."""
    try:
        budget = Budget.parse(row["budget"])
    except (ValueError, KeyError, TypeError) as e:
        return f"bad budget: {e}"
    with Replayer() as replayer:
        ok, message = _check_line(row, replayer, budget, "any", True, allowed_files)
    return None if ok else message


def validate_results(
    path: Path,
    budget: Budget | None = None,
    split: str | None = None,
    accept_untagged: bool = False,
    replayer: Replayer | None = None,
    allowed_files: Sequence[str] = (),
) -> list[tuple[int, str, str]]:
    """``(line number, verdict, message)`` for every non-empty line of the results file
    ``path``; the verdict is ``"passed"``, ``"failed"`` or ``"superseded"``.

    ``budget``: the budget every line must have (default: its task's). ``split``: the split
    its benchmark must be in (default: the task's), or ``"any"``. ``accept_untagged``: replay
    lines whose integrity tag is not this installation's (written elsewhere) instead of
    failing them; their agent, seed, times and ``budget_used`` cannot then be checked
    (a relabelled agent is the leaderboard's reruns to catch). ``allowed_files``: the
    ``file://`` benchmarks (URIs or paths) a line may replay; any other is refused unread.
    ``replayer``: the envs to replay in, kept open by the caller across files (default: made
    and closed here). ``FileNotFoundError`` when there is no such file; ``ValueError`` for
    a bad ``split``.
    """
    if split is not None and split not in SPLIT_CHOICES:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLIT_CHOICES)}")
    path = Path(path)
    import stat

    try:
        mode = path.stat().st_mode  # a stat never opens it: a FIFO cannot block here
    except FileNotFoundError:
        raise FileNotFoundError(f"no results file {path}") from None
    except OSError as e:
        raise ValueError(f"cannot read results {path}: {e.strerror}") from None
    if stat.S_ISDIR(mode) and (path / "manifest.json").exists():
        raise ValueError(
            f"{path} is a leaderboard submission: `optgym leaderboard verify {path}` checks it "
            "(its lines come from another installation: `optgym validate "
            f"{path / 'results.jsonl'} --accept-untagged` replays them alone)"
        )
    if not stat.S_ISREG(mode):
        raise ValueError(
            f"{path} is not a regular file (a FIFO/device/folder); name a JSON-lines results file"
        )
    lines = list(json_lines(path))
    if lines and not any(
        isinstance(row, dict) and not set(row).isdisjoint(ROW_FIELDS) for _, row, _ in lines
    ):
        raise ValueError(
            f"{path} is not a results file: none of its {len(lines)} lines is a result line "
            "(the JSON lines optgym bench writes, one an episode)"
        )
    last: dict[str, int] = {}
    for lineno, row, _ in lines:
        key = _episode_key(row)
        if key is not None:
            last[key] = lineno
    out: list[tuple[int, str, str]] = []
    seen: dict[str, int] = {}
    own = replayer is None
    replayer = replayer if replayer is not None else Replayer()
    try:
        for lineno, row, error in lines:
            if error:
                out.append((lineno, FAILED, error))
                continue
            key = _episode_key(row)
            if key is not None and row.get("error") is not None and last[key] != lineno:
                out.append((lineno, SUPERSEDED, f"errored, then run again on line {last[key]}"))
                continue
            if key is not None:
                if key in seen:
                    out.append((lineno, FAILED, f"duplicate of the episode on line {seen[key]}"))
                    continue
                seen[key] = lineno
            ok, message = _check_line(row, replayer, budget, split, accept_untagged,
                                      allowed_files)  # fmt: skip
            out.append((lineno, PASSED if ok else FAILED, message))
    finally:
        if own:
            replayer.close()
    return out
