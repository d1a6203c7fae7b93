"""What each executor adds to an episode, against running it in the parent process.

Short episodes (the ``oz`` agent on csmith programs of the pass-ordering task: one LLVM
pipeline each, about a tenth of a second) run one at a time on three executors:

* ``inline``: in this process, the env made once and reused: the reference;
* ``local``: each episode in its own process group (a fork from the fork server, a fresh
  env and LLVM worker, the guardian, the group kill), one at a time (``workers=1``);
* ``ray``: each episode a Ray task on a one-CPU Ray cluster on this machine (``ray.init``, or
  ``--address``), run in a child process of the Ray worker as the local executor runs it.

Per-episode time is measured at the steady state: from the first finished episode to the
last, divided by the episodes in between (process and cluster start-up come before and are
printed apart). The overhead of an executor is its per-episode time minus inline's. The
script checks that every executor wrote the same lines (timing fields aside).

The last lines turn the figures into the throughput of a cluster: ``--machines`` machines
of ``--cores`` cores, one episode per core, episodes of ``--episode-seconds`` seconds (the
length of a real episode; default 60, the LNS task's budget).

Usage: python benchmarks/executor_overhead.py [--episodes 30] [--address HOST:PORT]
       [--machines 100] [--cores 16] [--episode-seconds 60]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from optgym.bench import Collector, episode_rows, preload_task
from optgym.budget import Budget
from optgym.executors import InlineExecutor, LocalExecutor, OptGymExecutor, RayExecutor
from optgym.result_line import untimed
from optgym.state import StateWriter

TASK = "pass-ordering"
AGENT = "oz"
BUDGET = Budget(calls=20)


def measure(executor: OptGymExecutor, episodes: int) -> tuple[float, float, list[dict]]:
    """(seconds to the first finished episode, steady seconds per episode, the lines)."""
    jobs = [(TASK, AGENT, f"generator://csmith-v0/{i}", 0, BUDGET) for i in range(episodes + 1)]
    start = time.perf_counter()
    done: list[float] = []
    rows = []
    with executor:
        for row in episode_rows(jobs, executor):
            done.append(time.perf_counter())
            rows.append(row)
    errors = [r["error"] for r in rows if r["error"]]
    if errors:
        raise SystemExit(f"{len(errors)} episodes failed, e.g. {errors[0]}")
    return done[0] - start, (done[-1] - done[0]) / episodes, rows


def _same(a: list[dict], b: list[dict]) -> bool:
    def key(rows: list[dict]) -> list[str]:
        return sorted(json.dumps(untimed(r), sort_keys=True) for r in rows)

    return key(a) == key(b)


def driver_lines_per_second(row: dict, lines: int) -> float:
    """How many finished lines a second the driver takes in: tag, append and flush each to
    the results file, keep the latest lines and the running aggregate (``Collector``)."""
    rows = []
    for seed in range(lines):
        clone = copy.deepcopy(row)
        clone["seed"] = seed
        clone.pop("tag", None)
        rows.append(clone)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.jsonl"
        with StateWriter(path) as writer:
            collector = Collector(writer, [], [row["agent"]], "geomean")
            start = time.perf_counter()
            for clone in rows:
                collector.add(clone)
            seconds = time.perf_counter() - start
    return lines / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--address", default=None, help="a Ray cluster (default: ray.init here)")
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--cores", type=int, default=16)
    parser.add_argument("--episode-seconds", type=float, default=60.0)
    parser.add_argument("--lines", type=int, default=20000, help="lines for the driver figure")
    args = parser.parse_args()

    preload_task(TASK)  # as optgym bench does
    figures: dict[str, tuple[float, float, list[dict]]] = {}
    # the reference first: it also builds the benchmarks into the cache for the others
    figures["inline"] = measure(InlineExecutor(), args.episodes)
    figures["local"] = measure(LocalExecutor(workers=1), args.episodes)
    init: dict[str, Any] = {} if args.address else {"num_cpus": 1}
    figures["ray"] = measure(RayExecutor(args.address, init=init), args.episodes)
    for name, (first, _, rows) in figures.items():
        assert _same(rows, figures["inline"][2]), f"{name} wrote other lines than inline"
        print(f"# {name}: first episode after {first:.2f} s (start-up included)")

    inline = figures["inline"][1]
    lines = [f"inline_seconds_per_episode: {inline:.4f} (target: the reference)"]
    overheads = {}
    for name in ("local", "ray"):
        per = figures[name][1]
        overheads[name] = per - inline
        lines.append(f"{name}_seconds_per_episode: {per:.4f} (target: the reference + overhead)")
        lines.append(
            f"{name}_overhead_seconds_per_episode: {overheads[name]:.4f} "
            "(target: < 1.0, under 2% of a 60 s episode)"
        )
        lines.append(f"{name}_over_inline_ratio: {per / inline:.2f} (target: informational)")
    slots = args.machines * args.cores
    for name in ("local", "ray"):
        hourly = slots * 3600.0 / (args.episode_seconds + overheads[name])
        lines.append(
            f"{name}_episodes_per_hour_{args.machines}_machines: {hourly:.0f} "
            f"(target: informational; {args.cores} cores each, {args.episode_seconds:g} s "
            f"episodes, ideal {slots * 3600.0 / args.episode_seconds:.0f})"
        )
    rate = driver_lines_per_second(figures["inline"][2][0], args.lines)
    needed = slots / 5.0
    lines.append(
        f"driver_lines_per_second: {rate:.0f} (target: > {needed:.0f}, the lines a second of "
        f"{args.machines} machines running 5 s episodes)"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
