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

from optgym.datasets.files import read_json_object, write_file
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
    from optgym.leaderboard import board_dir

    return board_dir() / "rounds" / task / _check_name(name)


def secret_path(task: str, name: str) -> Path:
    """Where the organizer keeps a round's secret: outside the board, in the cache."""
    from optgym.datasets.cache import cache_dir

    return cache_dir() / "rounds" / task / f"{_check_name(name)}.secret.json"


def _read_json(path: Path, what: str) -> dict[str, Any]:
    return read_json_object(path, what, MAX_ROUND_BYTES, 6)


def _draw(task: Any, size: int, seeds: int, salt: str) -> dict[str, Any]:
    """The hidden benchmarks and seeds a salt gives (the same on any machine)."""
    from optgym.tasks import board_benchmarks, task_datasets

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
    from optgym.leaderboard.submission import MIN_SEEDS
    from optgym.tasks import get_task

    task = get_task(task_name)
    if not 1 <= size <= 100 or not MIN_SEEDS <= seeds <= 20:
        raise ValueError(
            f"size must be in [1, 100] and seeds in [{MIN_SEEDS}, 20] (a stochastic agent's "
            f"entry needs {MIN_SEEDS} seeds a benchmark), got {size}, {seeds}"
        )
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
    write_file(public_dir / "round.json", (json.dumps(record, indent=1) + "\n").encode())
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
    from optgym.tasks import get_task

    task = get_task(task_name)
    secret = secret_path(task.name, name)
    if not secret.exists():
        raise ValueError(f"no secret of round {name} of task {task.name} at {secret}")
    content = _checked(task, name, _read_json(secret, "round secret"), "secret")
    path = round_dir(task.name, name) / "reveal.json"
    write_file(path, (json.dumps(content, indent=1) + "\n").encode())
    return path


def rerun(
    agent: str,
    task_name: str,
    name: str,
    out: str | Path,
    code: str | Path | None = None,
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
    """Run ``agent`` on round ``name`` of the task in the sandbox and write a closed-track
    submission (manifest, lines, the submission's code) into ``out``; returns it.

    ``code`` is the folder of what the submission ships (its plug-in modules, weights): the
    agent sees it read-only as its working folder. The agent is never imported here: its
    class is asked, in a sandbox, what it is (:func:`optgym.sandbox.describe_agent`), and
    each episode runs it in one (:func:`optgym.bench.sandboxed_episode`: no network, no
    view of the cache, the secrets or the board, the env behind a metered proxy, a cgroup
    with the task's CPU-time cap). Episodes already in ``out/results.jsonl`` are kept (a
    rerun resumes). ``RuntimeError`` when the sandbox cannot run here; the other settings
    are :func:`optgym.bench.run_bench`'s."""
    from optgym.agents.registry import check_problems
    from optgym.bench import run_bench
    from optgym.executors import Limits, run_in_child
    from optgym.leaderboard import board_dir
    from optgym.leaderboard.signing import sign
    from optgym.leaderboard.submission import (
        ATTESTATION,
        RESULTS,
        load_submission,
        make_manifest,
        write_submission,
    )
    from optgym.sandbox import MAX_PIDS, describe_agent, require
    from optgym.tasks import get_task

    task = get_task(task_name)
    content = round_content(task, _check_name(name))
    require()
    code_dir = Path(code).resolve() if code is not None else None
    if code_dir is not None and not code_dir.is_dir():
        raise ValueError(f"--code {code} is not a folder (the submission's code and weights)")
    limits = Limits(timeout=300, memory_mb=2048, pids=MAX_PIDS, require_cgroup=True)
    described = run_in_child(describe_agent, agent, code_dir, limits=limits)
    check_problems(described["canonical"], described["problems"], task)
    stochastic = described["stochastic"]
    seeds = content["seeds"] if stochastic else content["seeds"][:1]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_bench(
        task.name, [described["canonical"]], content["benchmarks"], seeds, task.budget,
        out / RESULTS, workers=workers, executor=executor, address=address, timeout=timeout,
        memory_mb=memory_mb, progress=progress, isolate=True, sandbox=True, code_dir=code_dir,
    )  # fmt: skip
    manifest = make_manifest(
        task, described["canonical"], stochastic, name=display_name, authors=authors,
        license=license, round=name, code=code_dir,
    )  # fmt: skip
    write_submission(out, manifest, (out / RESULTS).read_bytes(), code=code_dir)
    # the board verifier attests that its own rerun made this entry: the closed track
    attestation = sign({"submission": load_submission(out).id, "task": task.name,
                        "round": name, "agent": described["canonical"]},
                       "attestation", board_dir())  # fmt: skip
    write_file(out / ATTESTATION, (json.dumps(attestation, indent=1) + "\n").encode())
    return out


__all__ = [
    "make_round",
    "rerun",
    "reveal",
    "round_benchmarks",
    "round_content",
    "round_dir",
    "secret_path",
]
