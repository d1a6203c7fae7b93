"""Replay every line of a results file and check its claimed reward and score.

A line passes when its episode state replays in a fresh env to the reward it claims and the
task's score of the replayed program equals the score it claims. Anything else fails with a
reason: malformed JSON, a missing field, an episode that errored when it was run, a state
for another env, a tampered reward or score, a duplicated episode.

>>> for lineno, ok, message in validate_results(Path("results/pass-ordering.jsonl")):
...     print(lineno, ok, message)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from optgym.bench import RESULT_KEYS, REWARD_RTOL, ROW_FIELDS
from optgym.state import EpisodeState, json_lines

#: Relative tolerance between a line's claimed score and the replayed one.
SCORE_RTOL = 1e-9


def _close(a: float, b: float, rtol: float) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Replayer:
    """One env per (env id, reward space), made on first use."""

    def __init__(self) -> None:
        self._envs: dict[tuple[str, str], Any] = {}

    def env(self, state: EpisodeState) -> Any:
        import optgym

        key = (state.env_id, state.reward_space)
        if key not in self._envs:
            self._envs[key] = optgym.make(state.env_id, reward_space=state.reward_space)
        return self._envs[key]

    def drop(self, state: EpisodeState) -> None:
        env = self._envs.pop((state.env_id, state.reward_space), None)
        if env is not None:
            try:
                env.close()
            except Exception:  # noqa: BLE001  a crashed env may fail to close
                pass

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def _check_line(row: Any, replayer: _Replayer) -> tuple[bool, str]:
    """(ok, message) for one parsed line."""
    from optgym.leaderboard.tasks import get_task

    if not isinstance(row, dict):
        return False, f"malformed line: expected a JSON object, got {type(row).__name__}"
    missing = [k for k in ROW_FIELDS if k not in row]
    if missing:
        return False, f"missing fields: {', '.join(missing)}"
    if row["error"]:
        return False, f"episode errored when it was run, nothing to replay: {row['error']}"
    try:
        task = get_task(row["task"])
    except ValueError as e:
        return False, str(e)
    try:
        state = EpisodeState.from_dict(row["state"])
    except (ValueError, TypeError) as e:
        return False, f"bad state: {e}"
    if state.env_id != task.env_id:
        return False, f"state is for {state.env_id!r}, task {task.name!r} uses {task.env_id!r}"
    wanted = task.env_kwargs.get("reward_space")
    if wanted is not None and state.reward_space != wanted:
        return False, (
            f"state is scored with {state.reward_space!r}, task {task.name} uses {wanted!r}"
        )
    if state.benchmark != row["benchmark"]:
        return False, f"state is for {state.benchmark}, the line names {row['benchmark']}"
    if not _is_number(row["reward"]) or not _close(row["reward"], state.reward, REWARD_RTOL):
        return False, f"claimed reward {row['reward']!r} differs from the state's {state.reward!r}"
    if not _is_number(row["score"]):
        return False, f"claimed score {row['score']!r} is not a number"
    try:
        env = replayer.env(state)
        result = env.unwrapped.validate(state)
        if not result.ok:
            if result.error:
                return False, f"replay failed: {result.error}"
            return False, f"claimed reward {state.reward!r}, replay gave {result.reward!r}"
        score = float(task.score(env))
    except Exception as e:  # noqa: BLE001  a crash replaying one line fails that line only
        replayer.drop(state)
        return False, f"replay failed: {type(e).__name__}: {e}"
    if not _close(float(row["score"]), score, max(SCORE_RTOL, task.score_rtol)):
        return False, f"claimed score {row['score']!r}, replay gives {score!r}"
    return True, f"ok: {row['agent']} on {row['benchmark']} seed {row['seed']}: score {score:.6g}"


def validate_results(path: Path) -> list[tuple[int, bool, str]]:
    """``(line number, ok, message)`` for every non-empty line of the results file ``path``.

    ``FileNotFoundError`` when there is no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file {path}")
    out: list[tuple[int, bool, str]] = []
    seen: dict[tuple, int] = {}
    replayer = _Replayer()
    try:
        for lineno, row, error in json_lines(path):
            if error:
                out.append((lineno, False, error))
                continue
            if isinstance(row, dict) and all(k in row for k in RESULT_KEYS):
                key = json.dumps([row[k] for k in RESULT_KEYS])
                if key in seen:
                    out.append((lineno, False, f"duplicate of the episode on line {seen[key]}"))
                    continue
                seen[key] = lineno
            ok, message = _check_line(row, replayer)
            out.append((lineno, ok, message))
    finally:
        replayer.close()
    return out
