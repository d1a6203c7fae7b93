"""What a result line's result depends on besides its key, so that a rerun never serves a
stale result as a new one.

A line is keyed by (task, agent spec, benchmark, seed): that key alone ignores the budget,
the agent's code, the model its settings name and the OptGym version, any of which changes
the result. Every line the runner writes holds its budget and a fingerprint of the rest
(``fingerprint``: the OptGym version, the sha256 of the agent class's module, the sha256
of the files its settings name: a model file, or a model folder's files). A run into a
file whose lines were run with another budget or fingerprint is refused before anything
runs, with one line naming the difference and ``--fresh``, which moves the old file aside.

>>> print_ = agent_fingerprint(resolve_agent("cem"))
>>> check_mix(Path("results/path-planning.jsonl"), rows, {"cem": print_}, Budget(calls=2000))
"""

from __future__ import annotations

import hashlib
import inspect
import os
from pathlib import Path
from typing import Any

#: The largest file a setting may name that is hashed whole (a larger one counts by its
#: size and modification time).
MAX_HASHED_BYTES = 1024**3
#: What a fingerprint's fields say, for messages.
FIELDS = {"optgym": "OptGym version", "code": "agent code", "model": "model or file its "
          "settings name"}  # fmt: skip


def _digest(path: Path) -> str:
    info = path.stat()
    if info.st_size > MAX_HASHED_BYTES:
        return f"size {info.st_size}, modified {info.st_mtime_ns}"
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # in chunks, as datasets do


def files_digest(paths: list[Path]) -> str:
    """One sha256 over regular files (their names and contents); "" for none."""
    if not paths:
        return ""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(f"{path.name}\0{_digest(path)}\n".encode())
    return digest.hexdigest()


def _named_files(value: Any) -> list[Path]:
    """The file a setting names, or the regular files of the folder it names (not its
    subfolders: checkpoints and logs)."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        return []
    path = Path(value)
    try:
        if path.is_file():
            return [path]
        if path.is_dir():
            return [f for f in path.iterdir() if f.is_file()]
    except OSError:
        pass
    return []


def agent_fingerprint(spec: Any) -> dict[str, str]:
    """The fingerprint of an agent spec (an :class:`~optgym.agents.AgentSpec`): the OptGym
    version, its class's module source, the files its settings name."""
    import optgym

    cls = spec.entry.agent_class()
    try:
        source = inspect.getsourcefile(cls)
        code = _digest(Path(source)) if source else ""
    except (OSError, TypeError):
        code = ""
    named = [f for value in spec.settings.values() for f in _named_files(value)]
    return {"optgym": optgym.__version__, "code": code, "model": files_digest(named)}


def code_fingerprint(code_dir: str | Path | None) -> dict[str, str]:
    """The fingerprint of a sandboxed run: the OptGym version and the code it ships."""
    import optgym

    files = [p for p in Path(code_dir).rglob("*") if p.is_file()] if code_dir else []
    return {"optgym": optgym.__version__, "code": files_digest(files), "model": ""}


def check_mix(
    results: Path, rows: list[dict], fingerprints: dict[str, dict[str, str]], budget: Any
) -> None:
    """``ValueError`` (one line: the difference, and ``--fresh``) when the lines ``rows``
    already in ``results`` were run with another budget than ``budget``, or, for an agent
    of ``fingerprints`` (agent spec -> fingerprint), with another fingerprint."""
    from optgym.result_line import FINGERPRINT_FIELD

    fresh = (f"; name another --results file, or add --fresh to move {results.name} aside "
             "and start afresh")  # fmt: skip
    budgets = sorted({str(r.get("budget")) for r in rows} - {str(budget)})
    if budgets:
        raise ValueError(
            f"{results} holds episodes run with budget {budgets[0]}; this run's is {budget}"
            + fresh
        )
    for row in rows:
        new = fingerprints.get(row.get("agent"))
        if new is None:
            continue
        old = row.get(FINGERPRINT_FIELD)
        if not isinstance(old, dict):
            raise ValueError(
                f"{results} holds episodes of agent {row['agent']} whose code and model were "
                "not recorded (written by an older OptGym)" + fresh
            )
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                what = FIELDS.get(key, key)
                then = f" ({old.get(key)} then, {new.get(key)} now)" if key == "optgym" else ""
                raise ValueError(
                    f"{results} holds episodes of agent {row['agent']} run with another "
                    f"{what}{then}" + fresh
                )


def move_aside(results: Path) -> Path | None:
    """Move ``results`` to ``<results>.previous`` (replacing an older one); returns where
    the lines went, None when there was no file."""
    if not results.exists():
        return None
    target = results.with_name(results.name + ".previous")
    os.replace(results, target)
    return target


__all__ = ["agent_fingerprint", "check_mix", "code_fingerprint", "files_digest", "move_aside"]
