"""Run-to-run noise of ScheduleSearch-v0's timing protocol across fresh processes.

The same schedules (Halide's Adams2019 at beam 1, and the naive schedule) of a few test
pipelines are timed in ``--processes`` fresh worker processes, one Halide thread, minimum
of 15 runs after a warm-up each; the spread is (max - min) / min over the processes.

Usage: python benchmarks/schedule_timing_noise.py [--processes 5]
"""

from __future__ import annotations

import argparse

from optgym.datasets.schedule import HalideOpsDataset, load_spec
from optgym.envs.schedule.env import reference_schedule
from optgym.envs.schedule.measure import Timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--pipelines", type=int, default=4)
    args = parser.parse_args()
    ops = HalideOpsDataset()
    uris = list(ops.benchmark_uris("test"))[:: max(1, 12 // args.pipelines)][: args.pipelines]
    worst = 0.0
    for uri in uris:
        spec_json = load_spec(ops.benchmark(uri)).to_json()
        for name in ("Adams2019-beam1", "naive"):
            times = []
            for _ in range(args.processes):
                timer = Timer(threads=1, samples=15)
                try:
                    times.append(timer.measure(spec_json, reference_schedule(name)).time_s)
                finally:
                    timer.close()
            spread = (max(times) - min(times)) / min(times)
            worst = max(worst, spread)
            shown = " ".join(f"{t * 1e3:.3f}" for t in times)
            print(f"{uri.split('/')[-1]:<22} {name:<16} ms: {shown}  spread {spread:6.2%}")
    print(f"timing_spread_max_pct: {100 * worst:.2f} (target: <= 5)")


if __name__ == "__main__":
    main()
