"""How reliably ``validate`` passes a genuine measured ScheduleSearch-v0 state, and rejects a
tampered one.

One short measured episode (real Halide JIT, ``mode="measure"``, one thread) on a small
pipeline with a fixed fast schedule gives a state; that state is then validated ``--runs``
times, each time by a fresh env (a fresh Halide worker that measures the naive reference
again, as ``optgym validate`` does in a new process), and ``--runs`` tampered copies of it
(the reward plus ``--forge`` in log speedup, 0.2 as issue 28 asks, with the measured extras
forged to agree) are validated the same way.

Usage: python benchmarks/schedule_validate_reliability.py [--runs 20] [--forge 0.2]
"""

from __future__ import annotations

import argparse
import math
import time

import gymnasium as gym

import optgym  # noqa: F401  registers the env ids
from optgym.state import EpisodeState

BENCHMARK = "benchmark://halide-ops-v0/matmul-192"
# compute root, x tiles of 4, y tiles of 16, order 2, vectorize by 16, parallel outer loop:
# about 0.3 ms against a naive 7 ms on the 2-core development machine (reward ~3.2).
ACTION = [0, 2, 4, 0, 2, 3, 0, 1, 0]


def forge(state: EpisodeState, reward: float) -> EpisodeState:
    """``state`` claiming ``reward``, its measured extras scaled to agree with it (a faster
    ``runtime_s`` and ``times``), so that only measuring the schedule again can tell."""
    scale = math.exp(state.reward - reward)  # the runtime that reward implies, over the real
    extras = dict(state.extras)
    extras["runtime_s"] = extras["naive_s"] / math.exp(reward)
    extras["times"] = [t * scale for t in extras["times"]]
    extras["speedup_vs_naive"] = extras["naive_s"] / extras["runtime_s"]
    return EpisodeState.from_dict(dict(state.to_dict(), reward=reward, extras=extras))


def validate_fresh(state: EpisodeState) -> tuple[bool, str]:
    """Validate ``state`` in a fresh env (a new worker) built with the state's config."""
    env = gym.make("optgym/ScheduleSearch-v0", **state.config).unwrapped
    try:
        result = env.validate(state)
    finally:
        env.close()
    shown = "-" if result.reward is None else f"{result.reward:.4f}"
    return result.ok, shown if result.ok else f"{shown} ({result.error})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--benchmark", default=BENCHMARK)
    parser.add_argument("--forge", type=float, default=0.2, help="log speedup added")
    args = parser.parse_args()
    start = time.monotonic()
    env = gym.make("optgym/ScheduleSearch-v0", mode="measure", baseline_info=False).unwrapped
    try:
        env.reset(options={"benchmark": args.benchmark})
        done = False
        while not done:
            *_, terminated, truncated, info = env.step(ACTION)
            done = terminated or truncated
        if "error" in info:
            raise SystemExit(f"the episode failed: {info['error']}")
        state = env.state
    finally:
        env.close()
    print(
        f"{args.benchmark}: reward {state.reward:.4f} (runtime {info['runtime_s'] * 1e3:.3f} ms, "
        f"naive {info['naive_s'] * 1e3:.3f} ms)"
    )
    passed = 0
    for i in range(args.runs):
        ok, shown = validate_fresh(state)
        passed += ok
        print(f"genuine  {i:2d}: {'pass' if ok else 'FAIL'} replay {shown}")
    rejected = 0
    for i in range(args.runs):
        forged = forge(state, state.reward + args.forge)
        ok, shown = validate_fresh(forged)
        rejected += not ok
        print(f"tampered {i:2d}: claimed {forged.reward:.4f} {'PASS' if ok else 'rejected'}")
    print(f"seconds: {time.monotonic() - start:.0f}")
    print(f"genuine_pass_rate: {passed}/{args.runs} (target: >= 19/20)")
    print(f"tampered_reject_rate: {rejected}/{args.runs} (forged +{args.forge:g}; target: 20/20)")


if __name__ == "__main__":
    main()
