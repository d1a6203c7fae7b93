"""An open-track entry in one call: run an agent on a task's leaderboard test set and write
the submission (result lines and manifest) that ``optgym leaderboard verify`` checks.

>>> run_entry("path-planning", "cem:population=50", Path("my-entry"), authors=["Ada"])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from optgym.executors import DEFAULT_TIMEOUT
from optgym.leaderboard.submission import MIN_SEEDS, RESULTS, make_manifest, write_submission


def run_entry(
    task_name: str,
    agent: str,
    out: str | Path,
    seeds: Sequence[int] | None = None,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    memory_mb: float | None = None,
    name: str | None = None,
    authors: Sequence[str] = (),
    code_url: str = "",
    commit: str = "",
    training_data: Sequence[dict[str, str]] = (),
    license: str = "NOASSERTION",
    weights: str | Path | None = None,
    progress: bool = True,
    code: str | Path | None = None,
) -> Path:
    """Run ``agent`` on every benchmark of the task's test set with ``seeds`` (default
    ``0..MIN_SEEDS-1`` for a stochastic agent, ``0`` otherwise) into ``out/results.jsonl``
    (episodes already there are kept), then write ``out/manifest.json``; returns ``out``.

    ``code`` is the folder of what the entry ships for the verifier to rerun it (its plug-in
    modules, its weights): it is copied into ``out/code/`` and hashed in the manifest, and
    the agent runs from it (its settings name files relative to it). A plug-in
    (``module:Class``) must ship its module there: the verifier imports nothing from
    anywhere else. ``workers``, ``executor``, ``address``, ``timeout`` and ``memory_mb`` say
    where and under which limits episodes run, as for :func:`optgym.bench.run_bench`.
    ``ValueError`` for a bad task, agent, seed or code folder."""
    import contextlib
    import sys

    from optgym.agents import registry, resolve_agent
    from optgym.bench import run_bench
    from optgym.tasks import board_benchmarks, get_task

    task = get_task(task_name)
    out = Path(out).resolve()
    plugin = agent.partition(":")[0] not in registry()
    if code is None and plugin:
        raise ValueError(
            f"agent {agent!r} is a plug-in: give the folder of its code (--code DIR, with its "
            "module), which the submission ships so that the verifier can rerun it"
        )
    code = Path(code).resolve() if code is not None else None
    if code is not None and not code.is_dir():
        raise ValueError(f"--code {code} is not a folder (the agent's code and weights)")
    if code is not None and str(code) not in sys.path:
        sys.path.append(str(code))  # last: the entry's code shadows nothing installed
    with contextlib.chdir(code) if code is not None else contextlib.nullcontext():
        spec = resolve_agent(agent)
        spec.check_task(task)
        if seeds is None:
            seeds = list(range(MIN_SEEDS)) if spec.stochastic else [0]
        if spec.stochastic and len(set(seeds)) < MIN_SEEDS:
            raise ValueError(
                f"agent {spec.canonical!r} is stochastic: its entry needs at least {MIN_SEEDS} "
                f"seeds a benchmark, or verify refuses it; give --seeds 0-{MIN_SEEDS - 1} (the "
                "default), or declare stochastic = False on a class whose result does not "
                "depend on its seed"
            )
        out.mkdir(parents=True, exist_ok=True)
        run_bench(
            task.name, [spec.canonical], board_benchmarks(task), list(seeds), task.budget,
            out / RESULTS, workers=workers, executor=executor, address=address,
            timeout=timeout, memory_mb=memory_mb, progress=progress,
        )  # fmt: skip
        manifest = make_manifest(
            task, spec.canonical, spec.stochastic, name=name, authors=authors,
            code_url=code_url, commit=commit, training_data=training_data, license=license,
            weights=weights, code=code,
        )  # fmt: skip
    return write_submission(out, manifest, (out / RESULTS).read_bytes(), code=code)


__all__ = ["run_entry"]
