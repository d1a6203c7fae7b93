"""Hidden rounds, the closed track: the verifier runs an agent on benchmarks nobody has seen,
and reveals them afterwards so that every hidden episode becomes replayable.

A round of a task draws, from a secret made with :mod:`secrets`, ``size`` benchmarks of each
of the task's datasets (test-split benchmarks past the public leaderboard set) and the agent
seeds. Its public record, ``round.json`` in the board's ``rounds/<task>/<round>/`` folder,
holds the SHA-256 of the secret (a commitment, published up front); the secret itself stays
with the organizer (``<cache>/rounds/...``, mode 600). ``optgym leaderboard rerun`` runs an
agent on the round in worker processes cut off the network and writes a closed-track
submission; ``optgym leaderboard reveal`` publishes the secret as ``reveal.json``, which
anyone can check against the commitment.

>>> make_round("pass-ordering", "2026-12", size=2)
>>> rerun("oz", "pass-ordering", "2026-12", Path("entry"))
>>> reveal("pass-ordering", "2026-12")
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from optgym.datasets.files import read_json_object
from optgym.executors import DEFAULT_TIMEOUT

ROUND_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,39}")
MAX_ROUND_BYTES = 1024**2
#: Agent seeds are drawn from [0, SEED_RANGE).
SEED_RANGE = 2**31


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not ROUND_NAME.fullmatch(name):
        raise ValueError(
            "a round name is 1-40 letters, digits or ._+- starting with a letter or digit"
        )
    return name


def round_dir(task: str, name: str) -> Path:
    """The public folder of round ``name`` of ``task`` in the board."""
    from optgym.leaderboard.board import board_dir

    return board_dir() / "rounds" / task / _check_name(name)


def secret_path(task: str, name: str) -> Path:
    """Where the organizer keeps a round's secret: outside the board, in the cache."""
    from optgym.datasets.cache import cache_dir

    return cache_dir() / "rounds" / task / f"{_check_name(name)}.secret.json"


def _read_json(path: Path, what: str) -> dict[str, Any]:
    return read_json_object(path, what, MAX_ROUND_BYTES, 6)


def _draw(task: Any, size: int, seeds: int, salt: str) -> dict[str, Any]:
    """The hidden benchmarks and seeds a salt gives (the same on any machine)."""
    from optgym.bench import task_datasets
    from optgym.leaderboard.tasks import board_benchmarks

    rng = np.random.default_rng(int.from_bytes(bytes.fromhex(salt), "big"))
    public = set(board_benchmarks(task))
    registry = task_datasets(task)
    chosen: list[str] = []
    for uri, split in task.datasets:
        dataset = registry.dataset(uri)
        if dataset.infinite:
            from optgym.datasets.seeded import SPLIT_SEEDS

            lo, hi = SPLIT_SEEDS[split]
            lo += task.board_size  # the public set is the split's first benchmarks
            picks = rng.choice(hi - lo, size=min(size, hi - lo), replace=False) + lo
            names = [f"{uri}/{int(p)}" for p in sorted(picks)]
        else:
            left = [u for u in dataset.benchmark_uris(split) if u not in public]
            picks = rng.choice(len(left), size=min(size, len(left)), replace=False)
            names = [left[int(i)] for i in sorted(picks)]
        chosen.extend(names)
    agent_seeds = sorted(int(s) for s in rng.choice(SEED_RANGE, size=seeds, replace=False))
    return {"benchmarks": chosen, "seeds": agent_seeds}


def make_round(task_name: str, name: str, size: int = 2, seeds: int = 3) -> dict[str, Any]:
    """Start round ``name`` of the task: write its secret (organizer only) and its public
    record with the commitment; returns the public record. ``ValueError`` when the round
    exists or a setting is out of range."""
    from optgym.leaderboard.tasks import get_task

    task = get_task(task_name)
    if not 1 <= size <= 100 or not 1 <= seeds <= 20:
        raise ValueError(f"size must be in [1, 100] and seeds in [1, 20], got {size}, {seeds}")
    public_dir, secret = round_dir(task.name, name), secret_path(task.name, name)
    if (public_dir / "round.json").exists() or secret.exists():
        raise ValueError(f"round {name} of task {task.name} exists already")
    salt = secrets.token_hex(32)
    drawn = _draw(task, size, seeds, salt)
    content = {"task": task.name, "round": name, "salt": salt, **drawn}
    secret.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(content, f, indent=1)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {
        "task": task.name, "round": name, "size": size, "seeds": seeds, "created": now,
        "commitment": hashlib.sha256(_canonical(content)).hexdigest(),
    }  # fmt: skip
    public_dir.mkdir(parents=True, exist_ok=True)
    (public_dir / "round.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def _public(task: str, name: str) -> dict[str, Any]:
    path = round_dir(task, name) / "round.json"
    if not path.exists():
        raise ValueError(f"task {task} has no round {name} (optgym leaderboard round new)")
    record = _read_json(path, "round record")
    if not isinstance(record.get("commitment"), str):
        raise ValueError(f"round record {path} has no commitment")
    return record


def _checked(task: Any, name: str, content: dict[str, Any], what: str) -> dict[str, Any]:
    """``content`` (a secret or a reveal) when it hashes to the round's commitment and is
    what its salt draws; ``ValueError`` otherwise."""
    record = _public(task.name, name)
    if hashlib.sha256(_canonical(content)).hexdigest() != record["commitment"]:
        raise ValueError(f"the {what} of round {name} does not match its published commitment")
    salt = content.get("salt")
    if not isinstance(salt, str) or not re.fullmatch(r"[0-9a-f]{64}", salt):
        raise ValueError(f"the {what} of round {name} has no salt")
    drawn = _draw(task, int(record["size"]), int(record["seeds"]), salt)
    if {k: content.get(k) for k in drawn} != drawn:
        raise ValueError(f"the {what} of round {name} is not what its salt draws")
    return content


def round_content(task: Any, name: str) -> dict[str, Any]:
    """The round's benchmarks and seeds: from its ``reveal.json`` when revealed, else from
    the organizer's secret; ``ValueError`` when neither is here or they do not match the
    commitment."""
    revealed = round_dir(task.name, name) / "reveal.json"
    if revealed.exists():
        return _checked(task, name, _read_json(revealed, "round reveal"), "reveal")
    secret = secret_path(task.name, name)
    if secret.exists():
        return _checked(task, name, _read_json(secret, "round secret"), "secret")
    raise ValueError(
        f"round {name} of task {task.name} is not revealed yet: its lines can be checked only "
        "by the organizer until optgym leaderboard reveal"
    )


def round_benchmarks(task: Any, name: str) -> list[str]:
    """The benchmarks a closed-track entry of round ``name`` covers."""
    return list(round_content(task, _check_name(name))["benchmarks"])


def reveal(task_name: str, name: str) -> Path:
    """Publish the round's secret as ``reveal.json`` beside its record, after checking it
    against the commitment; returns the path."""
    from optgym.leaderboard.tasks import get_task

    task = get_task(task_name)
    secret = secret_path(task.name, name)
    if not secret.exists():
        raise ValueError(f"no secret of round {name} of task {task.name} at {secret}")
    content = _checked(task, name, _read_json(secret, "round secret"), "secret")
    path = round_dir(task.name, name) / "reveal.json"
    path.write_text(json.dumps(content, indent=1) + "\n")
    return path


def _probe() -> bool:
    from optgym.isolation import network_reachable, no_network

    no_network()
    return network_reachable()


def check_isolation() -> None:
    """``RuntimeError`` when a worker process cannot be cut off the network here."""
    from optgym.executors import Limits, run_in_child

    if run_in_child(_probe, limits=Limits(timeout=120)):
        raise RuntimeError("a worker cut off the network could still reach it")


def rerun(
    agent: str,
    task_name: str,
    name: str,
    out: str | Path,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    memory_mb: float | None = None,
    display_name: str | None = None,
    authors: tuple[str, ...] = ("optgym verifier",),
    license: str = "NOASSERTION",
    progress: bool = True,
) -> Path:
    """Run ``agent`` on round ``name`` of the task in worker processes without network and
    write a closed-track submission (manifest and lines) into ``out``; returns it.
    Episodes already in ``out/results.jsonl`` are kept (a rerun resumes). Each episode runs
    in its own process cut off the network, on this machine (``executor="local"``,
    ``workers`` at a time) or on the Ray cluster at ``address`` (``executor="ray"``); the
    other settings are :func:`optgym.bench.run_bench`'s."""
    from optgym.agents import resolve_agent
    from optgym.bench import run_bench
    from optgym.leaderboard.submission import RESULTS, make_manifest, write_submission
    from optgym.leaderboard.tasks import get_task

    task = get_task(task_name)
    spec = resolve_agent(agent)
    spec.check_task(task)
    content = round_content(task, _check_name(name))
    check_isolation()
    seeds = content["seeds"] if spec.stochastic else content["seeds"][:1]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_bench(
        task.name, [spec.canonical], content["benchmarks"], seeds, task.budget, out / RESULTS,
        workers=workers, executor=executor, address=address, timeout=timeout,
        memory_mb=memory_mb, progress=progress, isolate=True,
    )  # fmt: skip
    manifest = make_manifest(
        task, spec, name=display_name, authors=authors, license=license, round=name
    )
    return write_submission(out, manifest, (out / RESULTS).read_bytes())


__all__ = [
    "check_isolation",
    "make_round",
    "rerun",
    "reveal",
    "round_benchmarks",
    "round_content",
    "round_dir",
    "secret_path",
]
