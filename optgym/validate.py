"""Check every line of a results file: its fields against its task, then its replay.

A line passes when it is a well-formed result of a known task; its agent is registered for
the task; its budget is the task's (or the one the caller names) and what it used fits in it;
its benchmark is in the task's split; its state was made on the task's env with the task's
config; and the state replays, in an env rebuilt from that config, to the reward it claims,
with no more work than the line says it used, and to the score it claims. Anything else
fails with a reason. An errored line followed by a later line of the same episode (a rerun
retried it) is superseded; two lines of one finished episode are a duplicate.

>>> for lineno, verdict, message in validate_results(Path("results/pass-ordering.jsonl")):
...     print(lineno, verdict, message)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from optgym.bench import RESULT_KEYS, ROW_FIELDS
from optgym.budget import SECONDS_GRACE, SECONDS_GRACE_MIN, Budget
from optgym.problem import Task
from optgym.state import EpisodeState, json_lines

#: Relative tolerance between a line's claimed score and the replayed one.
SCORE_RTOL = 1e-9
#: What ``split`` may be: a split name, or ``"any"`` to accept benchmarks outside the task's.
SPLIT_CHOICES = ("train", "validation", "test", "any")
#: A line's verdicts: a pass, a failure, or an errored line that a later line retried.
PASSED, FAILED, SUPERSEDED = "passed", "failed", "superseded"


def _close(a: float, b: float, rtol: float) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Replayer:
    """One env per task (made with the task's config on first use), closed on failure."""

    def __init__(self) -> None:
        self._envs: dict[str, Any] = {}

    def env(self, task: Task) -> Any:
        import optgym

        if task.name not in self._envs:
            self._envs[task.name] = optgym.make(task.env_id, **task.env_kwargs)
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


def _check_budget(row: dict, task: Task, expected: Budget | None) -> str | None:
    """Why the line's budget or its use is wrong, or None."""
    wanted = expected if expected is not None else task.budget
    if not isinstance(row["budget"], str):
        return f"budget must be a string such as {str(wanted)!r}"
    try:
        budget = Budget.parse(row["budget"])
    except ValueError as e:
        return f"bad budget: {e}"
    if budget != wanted:
        return f"budget {row['budget']!r} differs from the task's {str(wanted)!r}"
    used = row["budget_used"]
    if not isinstance(used, dict) or set(used) != {"calls", "steps", "seconds"}:
        return "budget_used must hold calls, steps and seconds"
    if not all(_is_number(v) and v >= 0 for v in used.values()):
        return "budget_used values must be finite non-negative numbers"
    for unit in ("calls", "steps"):
        limit = getattr(budget, unit)
        if limit is not None and used[unit] > limit:
            return f"budget_used {unit}={used[unit]:g} exceeds the budget's {limit}"
    if budget.seconds is not None:
        late = used["seconds"] - budget.seconds
        if late > max(SECONDS_GRACE * budget.seconds, SECONDS_GRACE_MIN):
            return f"budget_used seconds={used['seconds']:g} exceed the budget's {budget.seconds:g}"
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


def _check_line(
    row: Any, replayer: _Replayer, budget: Budget | None, split: str | None
) -> tuple[bool, str]:
    """(ok, message) for one parsed line."""
    from optgym.agents.registry import check_recorded_agent
    from optgym.leaderboard.tasks import get_task

    if not isinstance(row, dict):
        return False, f"malformed line: expected a JSON object, got {type(row).__name__}"
    missing = [k for k in ROW_FIELDS if k not in row]
    if missing:
        return False, f"missing fields: {', '.join(missing)}"
    unknown = sorted(set(row) - set(ROW_FIELDS))
    if unknown:
        return False, f"unknown fields: {', '.join(map(str, unknown))[:200]}"
    if row["error"] is not None:
        return False, "the episode errored when it was run: nothing to replay"
    try:
        task = get_task(row["task"])
    except ValueError as e:
        return False, str(e)
    seed = row["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        return False, "seed must be a non-negative integer"
    why = check_recorded_agent(row["agent"], task)
    if why:
        return False, f"agent: {why}"
    why = _check_budget(row, task, budget) or _check_split(row["benchmark"], task, split)
    if why:
        return False, why
    try:
        state = EpisodeState.from_dict(row["state"])
    except (ValueError, TypeError) as e:
        return False, f"bad state: {e}"
    if state.env_id != task.env_id:
        return False, f"state is for {state.env_id!r}, task {task.name!r} uses {task.env_id!r}"
    if state.benchmark != row["benchmark"]:
        return False, f"state is for {state.benchmark}, the line names {row['benchmark']}"
    if not _is_number(row["reward"]) or row["reward"] != state.reward:
        return False, "claimed reward differs from the state's"
    if not _is_number(row["score"]):
        return False, "claimed score is not a finite number"
    steps = len(state.actions) + (state.reference is not None)
    if steps > row["budget_used"]["steps"]:
        return False, f"the state has {steps} steps, budget_used says {row['budget_used']['steps']}"
    try:
        env = replayer.env(task)
        base = env.unwrapped
        if state.config != base.config:
            diff = sorted(
                k
                for k in set(state.config) | set(base.config)
                if state.config.get(k) != base.config.get(k)
            )
            return False, f"state config differs from the task's in: {', '.join(diff)[:200]}"
        result = base.validate(state)
        if not result.ok:
            return False, f"replay failed: {result.error}"
        if result.work > row["budget_used"]["calls"]:
            return False, (
                f"the replay spent {result.work} {base.work_unit}, budget_used says "
                f"{row['budget_used']['calls']:g}"
            )
        score = float(task.score(env))
    except Exception as e:  # noqa: BLE001  a crash replaying one line fails that line only
        replayer.drop(task)
        return False, f"replay failed: {type(e).__name__}: {e}"
    if not _close(float(row["score"]), score, max(SCORE_RTOL, task.score_rtol)):
        return False, f"claimed score {row['score']!r}, replay gives {score!r}"
    return True, f"ok: {row['agent']} on {row['benchmark']} seed {seed}: score {score:.6g}"


def _episode_key(row: Any) -> str | None:
    if not isinstance(row, dict) or not all(k in row for k in RESULT_KEYS):
        return None
    return json.dumps([row[k] for k in RESULT_KEYS], sort_keys=True)


def validate_results(
    path: Path, budget: Budget | None = None, split: str | None = None
) -> list[tuple[int, str, str]]:
    """``(line number, verdict, message)`` for every non-empty line of the results file
    ``path``; the verdict is ``"passed"``, ``"failed"`` or ``"superseded"``.

    ``budget``: the budget every line must have (default: its task's). ``split``: the split
    its benchmark must be in (default: the task's), or ``"any"``. ``FileNotFoundError`` when
    there is no such file; ``ValueError`` for a bad ``split``.
    """
    if split is not None and split not in SPLIT_CHOICES:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLIT_CHOICES)}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file {path}")
    lines = list(json_lines(path))
    last: dict[str, int] = {}
    for lineno, row, _ in lines:
        key = _episode_key(row)
        if key is not None:
            last[key] = lineno
    out: list[tuple[int, str, str]] = []
    seen: dict[str, int] = {}
    replayer = _Replayer()
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
            ok, message = _check_line(row, replayer, budget, split)
            out.append((lineno, PASSED if ok else FAILED, message))
    finally:
        replayer.close()
    return out
