"""Plan evaluations per second of PathPlanning2D-v0 on the maze map, batched against one at a time.

Both go through ``env.unwrapped.evaluate_batch`` (what black-box planners call: roll out,
score, count, keep the search picture), in the same process on the same random plans
(uniform in [-1, 1], T = 100): ``--batch`` plans per call, then one plan per call. A third
line times the NumPy batch path on one plan at a time (``evaluate_batch`` takes the
bit-identical plain-Python path, :func:`~optgym.envs.planning.geometry.rollout_one`, for a
single plan, since it is faster there).

Usage: python benchmarks/planning_eval.py [--map maze] [--batch 1000] [--seconds 2]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import optgym  # noqa: F401  registers the env
from optgym.envs.planning.geometry import rollout

MAP = "maze"  # a nav2d-v0 map; maze-hard has the most walls (15)


def rate(evaluate, plans: np.ndarray, per_call: int, seconds: float) -> float:
    """Plans per second of ``evaluate`` called on ``per_call`` plans at a time, for about
    ``seconds`` (at least one pass over ``plans``)."""
    done, start = 0, time.perf_counter()
    while True:
        for i in range(0, len(plans), per_call):
            evaluate(plans[i : i + per_call])
            done += min(per_call, len(plans) - i)
            if time.perf_counter() - start >= seconds:
                return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000, help="plans per batched call")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--map", default=MAP, help=f"nav2d-v0 map (default {MAP})")
    args = parser.parse_args()
    uri = f"benchmark://nav2d-v0/{args.map}"

    env = gym.make("optgym/PathPlanning2D-v0")
    env.reset(options={"benchmark": uri})
    nav = env.unwrapped.nav
    plans = np.random.default_rng(0).uniform(-1.0, 1.0, (args.batch * 4, 2 * nav.horizon))
    evaluate = env.unwrapped.evaluate_batch
    evaluate(plans[: args.batch])  # warm up the cached map geometry

    batched = rate(evaluate, plans, args.batch, args.seconds)
    single = rate(evaluate, plans, 1, args.seconds)
    numpy_one = rate(lambda p: rollout(nav, p), plans, 1, args.seconds)

    print(f"map: {uri} (T = {nav.horizon}, {len(nav.walls)} walls)")
    print(f"single_evals_per_s: {single:.0f} (evaluate_batch, one plan per call)")
    print(f"numpy_rollout_one_plan_per_s: {numpy_one:.0f} (batch path on one plan per call)")
    print(f"batched_evals_per_s: {batched:.0f} (target: >= 50000)")
    print(f"ratio_batched_over_single: {batched / single:.1f} (target: report)")


if __name__ == "__main__":
    main()
