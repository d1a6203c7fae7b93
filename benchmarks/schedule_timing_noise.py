"""Run-to-run noise of ScheduleSearch-v0's timing across fresh processes, alone and paired.

For each test pipeline, Halide's Adams2019 schedule (beam 1) and the naive schedule are
timed in ``--processes`` fresh worker processes (one Halide thread, CPU clock):

- alone (``Timer.measure``, as the env timed its reward before paired timing): each
  schedule's minimum over at least 15 runs after a warm-up, in its own request; the spread
  of each absolute time, and of the ratio naive / Adams2019 made from two such requests;
- paired (``Timer.measure_paired``, the env's reward): both in one request, in alternating
  rounds of short bursts; the spread of the median of the rounds' ratios.

A spread is (max - min) / min over the processes; the target is 5% on every pipeline.

Usage: python benchmarks/schedule_timing_noise.py [--processes 5] [--pipelines 12]
"""

from __future__ import annotations

import argparse
import time

from optgym.datasets.schedule import HalideOpsDataset, load_spec
from optgym.envs.schedule.env import reference_schedule
from optgym.envs.schedule.measure import Timer


def spread(values: list[float]) -> float:
    """(max - min) / min."""
    return (max(values) - min(values)) / min(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--pipelines", type=int, default=12)
    args = parser.parse_args()
    ops = HalideOpsDataset()
    uris = list(ops.benchmark_uris("test"))[:: max(1, 12 // args.pipelines)][: args.pipelines]
    adams, naive = reference_schedule("Adams2019-beam1"), reference_schedule("naive")
    seen: dict[str, list[float]] = {"alone_time": [], "alone_ratio": [], "paired_ratio": []}
    started = time.perf_counter()
    for uri in uris:
        spec_json = load_spec(ops.benchmark(uri)).to_json()
        alone: dict[str, list[float]] = {"adams": [], "naive": []}
        paired: list[float] = []
        for _ in range(args.processes):
            timer = Timer(threads=1, samples=15)
            try:
                alone["adams"].append(timer.measure(spec_json, adams).time_s)
                alone["naive"].append(timer.measure(spec_json, naive).time_s)
            finally:
                timer.close()
            timer = Timer(threads=1)
            try:
                paired.append(timer.measure_paired(spec_json, adams, naive).ratio)
            finally:
                timer.close()
        ratios = [n / a for n, a in zip(alone["naive"], alone["adams"], strict=True)]
        spreads = {
            "alone_time": max(spread(alone["adams"]), spread(alone["naive"])),
            "alone_ratio": spread(ratios),
            "paired_ratio": spread(paired),
        }
        for k, v in spreads.items():
            seen[k].append(v)
        print(
            f"{uri.split('/')[-1]:<20} Adams2019-b1 {min(alone['adams']) * 1e3:8.3f} ms, naive "
            f"{min(alone['naive']) * 1e3:8.3f} ms; spread of times alone "
            f"{spreads['alone_time']:6.2%}, of naive/Adams ratio alone "
            f"{spreads['alone_ratio']:6.2%}, paired {spreads['paired_ratio']:6.2%} (paired "
            f"ratios {' '.join(f'{r:.2f}' for r in paired)})",
            flush=True,
        )
    print(f"({len(uris)} pipelines x {args.processes} processes in "
          f"{time.perf_counter() - started:.0f} s)")  # fmt: skip
    for name, label in (("alone_time", "timing"), ("alone_ratio", "alone_ratio"),
                        ("paired_ratio", "paired_ratio")):  # fmt: skip
        spreads = sorted(seen[name])
        print(f"{label}_spread_median_pct: {100 * spreads[len(spreads) // 2]:.2f} (target: -)")
        print(f"{label}_spread_max_pct: {100 * spreads[-1]:.2f} (target: <= 5)")


if __name__ == "__main__":
    main()
