"""LNS iterations of LB-RELAX in a fixed CPU time: the warm local-branching LP against SCIP's
from-scratch LP relaxation.

LB-RELAX solves the LP relaxation of the local-branching problem before every LNS step. The
SCIP worker now keeps that LP in SCIP's LP interface and re-solves it warm
(:mod:`optgym.envs.lns.lb_lp`); the old way (``freeTransform``, delete and re-add the
local-branching constraint, full SCIP on the relaxed model) stays reachable as the worker's
``warm=False``. Both run LB-RELAX (seed 0) on seed 0 of each family's S dataset in a fresh env
whose ``time_budget`` is ``--seconds`` CPU seconds (the initial incumbent's solve counts in
it, as in every episode), and count its LNS iterations (env steps). Every other setting is
the env's default (2 CPU s per sub-MIP, a 5 s initial solve, cached after the first run): the
ratio is bounded by the CPU time outside the LP (sub-MIPs, initial solve, the cold first LP),
which each line shows.

Usage: python benchmarks/lb_relax_iterations.py [--seconds 20]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np

import optgym  # noqa: F401  registers the env
from optgym.agents import resolve_agent
from optgym.budget import Budget
from optgym.envs.lns import ENV_ID, FAMILIES
from optgym.envs.lns.worker import ScipWorker

TARGET = 3.0


@contextmanager
def local_branching_requests(warm: bool) -> Iterator[dict[str, float]]:
    """Count the worker's CPU seconds for the local-branching requests of this process (the
    LP's share of the episode's clock); ``warm=False`` asks the worker for the old,
    from-scratch solve (the request's last field)."""
    stats = {"seconds": 0.0, "calls": 0}
    request = ScipWorker.request

    def counted(self: ScipWorker, message: tuple, timeout: float, doing: str) -> Any:
        if message[0] != "local_branching":
            return request(self, message, timeout, doing)
        if not warm:
            message = (*message, False)
        before = self.cpu_seconds
        try:
            return request(self, message, timeout, doing)
        finally:
            stats["seconds"] += self.cpu_seconds - before
            stats["calls"] += 1

    ScipWorker.request = counted  # type: ignore[method-assign]
    try:
        yield stats
    finally:
        ScipWorker.request = request  # type: ignore[method-assign]


def run(uri: str, seconds: float, warm: bool) -> dict[str, float]:
    """LB-RELAX for ``seconds`` CPU seconds (the env's ``time_budget``) on ``uri``: its
    iterations, CPU seconds (all, and the local-branching LP's) and objectives."""
    env = gym.make(ENV_ID, benchmark=uri, time_budget=seconds)
    try:
        with local_branching_requests(warm) as lp:
            result = resolve_agent("lb-relax").make().solve(env, uri, Budget(), seed=0)
        extras = result.state.extras
        return {
            "iterations": len(result.state.actions),
            "cpu": float(extras["cpu_seconds"]),
            "lp": lp["seconds"],
            "initial": float(extras["initial_objective"]),
            "objective": float(extras["objective"]),
        }
    finally:
        env.close()


def _describe(label: str, r: dict[str, float]) -> str:
    return (
        f"{label} {r['iterations']} iterations in {r['cpu']:.1f} CPU s ({r['lp']:.1f} s in the "
        f"LP; objective {r['initial']:.6g} -> {r['objective']:.6g})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    figures, ratios = [], []
    for family in FAMILIES:
        uri = f"generator://{family}-s-v0/0"
        old = run(uri, args.seconds, warm=False)
        new = run(uri, args.seconds, warm=True)
        ratio = new["iterations"] / max(old["iterations"], 1)
        ratios.append(ratio)
        print(
            f"{family}: {_describe('from-scratch LP', old)}; {_describe('warm LP', new)}; "
            f"{ratio:.2f}x"
        )
        figures.append(f"lb_relax_iterations_old_{family}: {old['iterations']} (target: reference)")
        figures.append(f"lb_relax_iterations_new_{family}: {new['iterations']} (target: reference)")
        figures.append(f"lb_relax_iteration_ratio_{family}: {ratio:.2f} (target: >= {TARGET:g})")
    figures.append(f"lb_relax_iteration_ratio_min: {min(ratios):.2f} (target: >= {TARGET:g})")
    figures.append(
        f"lb_relax_iteration_ratio_geomean: {float(np.exp(np.mean(np.log(ratios)))):.2f} "
        f"(target: >= {TARGET:g})"
    )
    print("\n".join(figures))


if __name__ == "__main__":
    main()
