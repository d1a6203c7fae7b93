"""The result line: the one record ``optgym bench`` writes per episode, and its schema.

A line is a JSON object with exactly the fields of :data:`ROW_FIELDS` plus ``tag``:

* ``task``, ``agent`` (canonical spec), ``benchmark`` (canonical URI): strings;
* ``seed``: the agent's seed, an integer in [0, 2**63);
* ``budget``: the budget in its canonical text (``"calls=2000"``);
* ``budget_used``: ``{"calls": int, "steps": int, "seconds": float}``, all >= 0;
* ``walltime``: seconds the agent spent, >= 0;
* ``error``: None, or the message of the failure that ended the episode;
* ``score``, ``reward``: finite numbers (None on an errored line), and ``state``: the
  :class:`~optgym.state.EpisodeState` (every field present, typed), None on a line that
  errored before the agent returned one;
* ``fingerprint``: what the result depends on besides the line's key (an object of at
  most 8 short strings: the OptGym version, hashes of the agent's code and of its model),
  which the runner adds when it writes the line (:mod:`optgym.fingerprint`);
* ``tag``: the integrity tag the runner adds when it writes the line (:func:`line_tag`).

:func:`schema_problem` says what is wrong with a line's form (never quoting it);
``optgym validate`` then checks its numbers by replay.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

ROW_FIELDS = (
    "task", "agent", "benchmark", "seed", "score", "reward", "budget", "budget_used",
    "walltime", "state", "error",
)  # fmt: skip
#: The field that holds a line's integrity tag (:func:`line_tag`), added when it is written.
TAG_FIELD = "tag"
#: The field that holds what a line's result depends on besides its key (the agent's code,
#: its model, the OptGym version: :mod:`optgym.fingerprint`), added when it is written.
FINGERPRINT_FIELD = "fingerprint"
#: What names an episode: a results file holds one finished line per key.
RESULT_KEYS = ("task", "agent", "benchmark", "seed")
#: Seeds are integers in [0, MAX_SEED).
MAX_SEED = 2**63
#: The longest string field a line may hold (characters); an error message included.
MAX_TEXT = 4096
USED_UNITS = ("calls", "steps", "seconds")
STATE_TYPES: dict[str, tuple[type, ...]] = {
    "env_id": (str,), "benchmark": (str,), "reward_space": (str,), "actions": (list,),
    "reward": (int, float), "seed": (int, type(None)), "reference": (str, type(None)),
    "walltime": (int, float), "versions": (dict,), "extras": (dict,), "config": (dict,),
}  # fmt: skip


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,40}")


def names(keys: Any) -> str:
    """Field names read from a line, for a message: each as it is when it looks like a name,
    else only its length (a message never carries an arbitrary string from the input)."""
    shown = [
        k if isinstance(k, str) and _NAME.fullmatch(k) else f"<a name of {len(str(k))} characters>"
        for k in sorted(map(str, keys))[:8]
    ]
    more = len(keys) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_count(value: Any) -> bool:
    """A non-negative int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def line_tag(row: dict[str, Any]) -> str:
    """The integrity tag of a result line (every field but the tag, as JSON with sorted
    keys) under this installation's key (:mod:`optgym.integrity`)."""
    from optgym import integrity

    body = {k: v for k, v in row.items() if k != TAG_FIELD}
    return integrity.tag(json.dumps(body, sort_keys=True).encode(), "result-line")


def untimed(row: dict[str, Any]) -> dict[str, Any]:
    """The line without what depends on the machine's speed and load: ``walltime``, the
    seconds in ``budget_used`` and in the state, and the tag over them. Two runs of a
    deterministic task give equal untimed lines wherever they ran."""
    body = {k: v for k, v in row.items() if k not in (TAG_FIELD, "walltime")}
    if isinstance(body.get("budget_used"), dict):
        body["budget_used"] = {k: v for k, v in body["budget_used"].items() if k != "seconds"}
    if isinstance(body.get("state"), dict):
        body["state"] = {k: v for k, v in body["state"].items() if k != "walltime"}
    return body


def tag_matches(row: dict[str, Any]) -> bool:
    """Whether the line's ``tag`` is the one this installation gives its fields."""
    from optgym import integrity

    body = {k: v for k, v in row.items() if k != TAG_FIELD}
    return integrity.matches(
        json.dumps(body, sort_keys=True).encode(), "result-line", row.get(TAG_FIELD)
    )


def _fingerprint_ok(value: Any) -> bool:
    return (
        isinstance(value, dict) and len(value) <= 8
        and all(isinstance(k, str) and _NAME.fullmatch(k) and isinstance(v, str)
                and len(v) <= 200 for k, v in value.items())
    )  # fmt: skip


def _text(row: dict, name: str) -> str | None:
    value = row[name]
    if not isinstance(value, str) or not value:
        return f"{name} must be a non-empty string"
    if len(value) > MAX_TEXT:
        return f"{name} is {len(value)} characters; at most {MAX_TEXT}"
    return None


def state_problem(state: Any) -> str | None:
    """What is wrong with the form of a line's ``state``, or None."""
    if not isinstance(state, dict):
        return "state must be a JSON object"
    missing = [k for k in STATE_TYPES if k not in state]
    if missing:
        return f"state lacks {', '.join(missing)}"
    unknown = sorted(set(state) - set(STATE_TYPES))
    if unknown:
        return f"state has unknown fields {names(unknown)}"
    for name, types in STATE_TYPES.items():
        value = state[name]
        if isinstance(value, bool) or not isinstance(value, types):
            allowed = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            return f"state {name} must be {allowed}"
    if not is_number(state["reward"]):
        return "state reward must be a finite number"
    if not (is_number(state["walltime"]) and state["walltime"] >= 0):
        return "state walltime must be a finite number >= 0"
    if state["seed"] is not None and not (is_count(state["seed"]) and state["seed"] < MAX_SEED):
        return "state seed must be null or an integer in [0, 2**63)"
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in state["versions"].items()):
        return "state versions must map names to version strings"
    return None


def schema_problem(row: Any) -> str | None:
    """What is wrong with the form of the result line ``row`` (a parsed JSON value), or None.
    Errored lines need only the fields that name the episode and a string ``error``."""
    if not isinstance(row, dict):
        return f"a result line must be a JSON object, got {type(row).__name__}"
    missing = [k for k in ROW_FIELDS if k not in row]
    if missing:
        return f"missing fields: {', '.join(missing)}"
    unknown = sorted(set(row) - set(ROW_FIELDS) - {TAG_FIELD, FINGERPRINT_FIELD})
    if unknown:
        return f"unknown fields: {names(unknown)}"
    if FINGERPRINT_FIELD in row and not _fingerprint_ok(row[FINGERPRINT_FIELD]):
        return "fingerprint must be an object of at most 8 names with strings of at most 200"
    for name in ("task", "agent", "benchmark", "budget"):
        why = _text(row, name)
        if why:
            return why
    if not (is_count(row["seed"]) and row["seed"] < MAX_SEED):
        return "seed must be an integer in [0, 2**63)"
    if TAG_FIELD in row and not isinstance(row[TAG_FIELD], str):
        return "tag must be a string"
    if row["error"] is not None:
        return _text(row, "error")
    for name in ("score", "reward"):
        if not is_number(row[name]):
            return f"{name} must be a finite number"
    if not (is_number(row["walltime"]) and row["walltime"] >= 0):
        return "walltime must be a finite number >= 0"
    used = row["budget_used"]
    if not isinstance(used, dict) or sorted(used) != sorted(USED_UNITS):
        return f"budget_used must hold exactly {', '.join(USED_UNITS)}"
    if not (is_count(used["calls"]) and is_count(used["steps"])):
        return "budget_used calls and steps must be integers >= 0"
    if not (is_number(used["seconds"]) and used["seconds"] >= 0):
        return "budget_used seconds must be a finite number >= 0"
    return state_problem(row["state"])
