"""Schedule quality and search time of each ScheduleSearch-v0 agent against Adams2019.

For every pipeline of the test split of ``halide-ops-v0`` (or ``--benchmarks``), each agent
searches once, and its best schedule's runtime is printed next to Halide's Adams2019
autoscheduler at beam 32, all measured in this run by the env's protocol (one Halide
thread, minimum of 15 runs after a warm-up). Search time is the agent's wall time:
compiles, measurements and model time. Each agent has ``--calls`` measurements and
``--seconds`` (a measurement still running when they and the runner's grace end is
stopped); the baseline has the measurements only.

With ``--env optgym/ScheduleSearch-v1`` the agents search the expressive v1 actions (the
v0 learned agents and PPO policy do not run there; ``value-v1`` is the value agent trained
on v1; ``value-v1-climb`` the same network, hill climbing after its 8 best-predicted
schedules): ``--agents adams2019-b1 schedule-random value-v1 value-v1-climb schedule-local``.

Usage: python benchmarks/schedule_search.py [--calls 16] [--seconds 30] [--benchmarks URI ...]
       [--env optgym/ScheduleSearch-v0] [--agents NAME ...]
"""

from __future__ import annotations

import argparse
import math
import time

import gymnasium as gym
import numpy as np

import optgym  # noqa: F401  registers the env
from optgym.agents import make_agent
from optgym.budget import Budget
from optgym.datasets.schedule import HalideOpsDataset
from optgym.problem import aggregate

AGENTS = ("adams2019-b1", "mullapudi2016", "li2018", "schedule-random", "value", "value-beam")
BASELINE = "adams2019-b32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=16, help="measurements per search")
    parser.add_argument("--seconds", type=float, default=30.0, help="search seconds cap")
    parser.add_argument("--benchmarks", nargs="*")
    parser.add_argument("--agents", nargs="*", default=list(AGENTS))
    parser.add_argument("--env", default="optgym/ScheduleSearch-v0")
    args = parser.parse_args()
    ops = HalideOpsDataset()
    uris = args.benchmarks or list(ops.benchmark_uris("test"))
    env = gym.make(args.env, baseline_info=False).unwrapped
    budget = Budget(calls=args.calls, seconds=args.seconds)
    # the baseline is the yardstick, not a competitor: Adams2019 at beam 32 takes up to 73 s
    # to schedule a resblock, past the seconds its measurement may take under the budget
    unlimited = Budget(calls=args.calls)
    agents = [BASELINE, *args.agents]
    runtime: dict[str, dict[str, float]] = {a: {} for a in agents}
    search: dict[str, dict[str, float]] = {a: {} for a in agents}
    print(f"{'pipeline':<28}" + "".join(f"{a:>17}" for a in agents))
    for uri in uris:
        cells = []
        for name in agents:
            start = time.perf_counter()
            try:
                given = unlimited if name == BASELINE else budget
                result = make_agent(name).solve(env, uri, given, seed=0)
                t = result.state.extras.get("runtime_s", float("nan"))
            except Exception as e:  # noqa: BLE001  an agent's failure is one cell
                print(f"  {name} on {uri}: {type(e).__name__}: {e}")
                t = float("nan")
            search[name][uri] = time.perf_counter() - start
            runtime[name][uri] = t
            cells.append(f"{t * 1e3:9.3f}ms {search[name][uri]:5.1f}s")
        print(f"{uri.split('/')[-1]:<28}" + "".join(f"{c:>17}" for c in cells), flush=True)
    print()
    print(
        f"{'agent':<16} {'geomean x Adams2019-b32':>24} {'max search s':>13} {'mean search s':>14}"
    )
    ratios = {}
    for name in agents:
        # a failed cell (nan, printed above) has no ratio; a ratio <= 0 is an error
        ran = [u for u in uris if math.isfinite(runtime[BASELINE][u] / runtime[name][u])]
        ratios[name] = aggregate([runtime[BASELINE][u] / runtime[name][u] for u in ran], names=ran)
        s = list(search[name].values())
        print(f"{name:<16} {ratios[name]:>24.3f} {max(s):>13.1f} {np.mean(s):>14.1f}")
    print()
    if "value" in ratios:
        print(f"value_vs_adams2019_b32_geomean: {ratios['value']:.3f} (target: >= 1.2)")
        print(f"value_search_s_max: {max(search['value'].values()):.1f} (target: <= 30)")
    if "value-beam" in ratios:
        print(f"value_beam_vs_adams2019_b32_geomean: {ratios['value-beam']:.3f} (target: >= 1.2)")
        print(f"value_beam_search_s_max: {max(search['value-beam'].values()):.1f} (target: <= 30)")
    for learned in ("value-v1", "value-v1-climb"):  # the learned v1 agents
        if learned not in ratios:
            continue
        v1, key = ratios[learned], learned.replace("-", "_")
        print(f"{key}_vs_adams2019_b32_geomean: {v1:.3f} (target: >= 1.2)")
        print(f"{key}_search_s_max: {max(search[learned].values()):.1f} (target: <= 30)")
        if "schedule-random" in ratios:
            vr = v1 / ratios["schedule-random"]
            print(f"{key}_vs_random_equal_budget_geomean: {vr:.3f} (target: >= 1.2)")
    if "schedule-local" in ratios:
        local = ratios["schedule-local"]
        print(f"local_from_adams2019_b1_vs_adams2019_b32_geomean: {local:.3f} (target: >= 1.2)")
        if "schedule-random" in ratios:
            vr = local / ratios["schedule-random"]
            print(f"local_vs_random_equal_budget_geomean: {vr:.3f} (target: > 1)")
    if "value" in ratios and "schedule-random" in ratios:
        vr = ratios["value"] / ratios["schedule-random"]
        print(f"value_vs_random_equal_budget_geomean: {vr:.3f} (target: > 1)")
    env.close()


if __name__ == "__main__":
    main()
