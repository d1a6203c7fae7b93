"""Can ``ScheduleSearch-v1``'s action space say what Halide's Adams2019 finds?

For each test pipeline of ``halide-ops-v0``, Adams2019 (one Halide thread, ``--beam``)
schedules the pipeline in a fresh worker; :func:`optgym.envs.schedule.express.express`
re-expresses its ``schedule_source`` as v1 stage actions; those actions are stepped through
``optgym/ScheduleSearch-v1`` (every one must be legal under the env's mask; ``model`` mode,
so nothing is timed there); and the schedule they give is timed paired against Adams2019's
own in one worker (``Timer.measure_paired``: alternating rounds, the median ratio). The
target: every pipeline within 10% (a ratio in [0.9, 1.1]). Where Adams2019's schedule reads
past the inputs, the worker clamps them and Adams2019 may also schedule their boundary
wrappers; the v1 actions leave those out (they are no stages), which the output names.

Usage: python benchmarks/schedule_space_adams.py [--beam 32] [--pipelines 12]
"""

from __future__ import annotations

import argparse
import math
import time

import gymnasium as gym

import optgym  # noqa: F401  registers the envs
from optgym.datasets.schedule import HalideOpsDataset, load_spec
from optgym.envs.schedule.env import reference_schedule
from optgym.envs.schedule.express import express, wrappers_scheduled
from optgym.envs.schedule.measure import Timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beam", type=int, default=32, choices=(1, 32))
    parser.add_argument("--pipelines", type=int, default=12)
    args = parser.parse_args()
    ops = HalideOpsDataset()
    uris = list(ops.benchmark_uris("test"))[: args.pipelines]
    adams = reference_schedule(f"Adams2019-beam{args.beam}")
    env = gym.make("optgym/ScheduleSearch-v1", mode="model", baseline_info=False)
    ratios: list[float] = []
    failed: list[str] = []
    wrapped: list[str] = []
    started = time.perf_counter()
    print(f"{'pipeline':28} {'stages':>6} {'adams ms':>9} {'v1 ms':>9} {'v1/adams speed':>15}")
    for uri in uris:
        spec = load_spec(ops.benchmark(uri))
        timer = Timer(threads=1)
        try:
            source = timer.measure(spec.to_json(), adams).schedule_source
            try:
                actions = express(source, spec)
            except ValueError as e:
                failed.append(f"{uri}: {e}")
                print(f"{uri.rsplit('/', 1)[1]:28} not expressible: {e}")
                continue
            if wrappers_scheduled(source):
                wrapped.append(uri.rsplit("/", 1)[1])
            env.reset(options={"benchmark": uri})
            base = env.unwrapped
            for name in base.stage_names:
                env.step(actions[name])
            m = timer.measure_paired(spec.to_json(), base.schedules, adams)
        finally:
            timer.close()
        ratios.append(m.ratio)
        print(
            f"{uri.rsplit('/', 1)[1]:28} {len(spec.stages):6d} {m.reference_s * 1e3:9.3f} "
            f"{m.time_s * 1e3:9.3f} {m.ratio:15.3f}"
        )
    env.close()
    within = sum(0.9 <= r <= 1.1 for r in ratios)
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else float("nan")
    print(f"({time.perf_counter() - started:.0f} s; ratio > 1: the v1 actions ran faster)")
    for line in failed:
        print("not expressible:", line)
    if wrapped:
        print(
            "Adams2019 also scheduled clamped inputs' boundary wrappers (left out of the v1 "
            f"actions, they stay inlined) on: {', '.join(wrapped)}"
        )
    print(f"v1_expresses_adams2019_b{args.beam}: {len(ratios)}/{len(uris)} (target: all)")
    print(f"v1_within_10pct_of_adams2019_b{args.beam}: {within}/{len(uris)} (target: all)")
    print(f"v1_over_adams2019_b{args.beam}_geomean: {geomean:.3f} (target: 0.9-1.1)")


if __name__ == "__main__":
    main()
