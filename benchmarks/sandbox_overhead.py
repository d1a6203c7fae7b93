"""What the sandbox costs a leaderboard episode, against the same episode run by the runner.

Two figures, each measured against its reference in the same run:

* **per episode**: ``cem`` on the path-planning task's maps (2000 plan evaluations, a tenth
  of a second of search), one episode at a time on the local executor: as ``optgym bench``
  runs it (the agent in the episode's process, the line replayed by a check before it is
  tagged: the reference) and as ``optgym leaderboard rerun`` runs it (the agent in the
  sandbox, the env behind the proxy, the episode in a cgroup). Per-episode time is measured
  from the first finished episode to the last.
* **per env call**: the trained closed-loop PPO policy (``ppo-trained``) for ``--steps``
  moves, one env step a move: in process (the reference) and in the sandbox, where every
  step is a request over the channel to the harness. The agent's own wall time (the line's
  ``walltime``) is compared.

Usage: python benchmarks/sandbox_overhead.py [--episodes 9] [--steps 20000]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

from optgym.bench import episode_rows, preload_task, run_episode, sandboxed_episode
from optgym.budget import Budget
from optgym.executors import Limits, LocalExecutor
from optgym.sandbox import MAX_PIDS, unavailable
from optgym.tasks import board_benchmarks, get_task

TASK = "path-planning"
AGENT = "cem"
CLOSED = "path-planning-closed-loop"


def per_episode(sandboxed: bool, episodes: int) -> float:
    """Steady seconds per episode of ``cem``, in the sandbox or as the runner runs it."""
    task = get_task(TASK)
    maps = board_benchmarks(task)
    jobs = [(TASK, AGENT, maps[i % len(maps)], i, task.budget) for i in range(episodes + 1)]
    limits = Limits(timeout=600, memory_mb=2048)
    if sandboxed:
        limits = Limits(timeout=600, memory_mb=2048, cpu_seconds=task.cpu_seconds,
                        pids=MAX_PIDS, require_cgroup=True)  # fmt: skip
    episode = partial(sandboxed_episode, code_dir=None) if sandboxed else run_episode
    check = {"check": None} if sandboxed else {}  # a sandbox's harness replays its lines
    done = []
    with LocalExecutor(1, limits) as executor:
        for row in episode_rows(jobs, executor, episode, **check):
            if row["error"]:
                raise SystemExit(f"an episode failed: {row['error']}")
            done.append(time.perf_counter())
    return (done[-1] - done[0]) / episodes


def per_step(sandboxed: bool, steps: int) -> float:
    """The agent's seconds per env step of ``ppo-trained`` over ``steps`` moves."""
    task = get_task(CLOSED)
    run = sandboxed_episode if sandboxed else run_episode
    row = run(CLOSED, "ppo-trained", board_benchmarks(task)[0], 0, Budget(calls=steps))
    if row["error"]:
        raise SystemExit(f"the closed-loop episode failed: {row['error']}")
    return row["walltime"] / row["budget_used"]["steps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    why = unavailable()
    if why is not None:
        raise SystemExit(f"no sandbox here: {why}")
    preload_task(TASK)
    bench = per_episode(False, args.episodes)
    sandbox = per_episode(True, args.episodes)
    in_process = per_step(False, args.steps)
    proxied = per_step(True, args.steps)
    print("\n".join([
        f"bench_seconds_per_episode: {bench:.3f} (target: the reference)",
        f"sandbox_seconds_per_episode: {sandbox:.3f} (target: informational)",
        f"sandbox_overhead_seconds_per_episode: {sandbox - bench:.3f} (target: < 2.0, "
        "3% of a 60 s episode)",
        f"in_process_ms_per_step: {1000 * in_process:.3f} (target: the reference)",
        f"sandbox_ms_per_step: {1000 * proxied:.3f} (target: informational)",
        f"sandbox_over_in_process_step_ratio: {proxied / in_process:.2f} (target: < 5)",
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
