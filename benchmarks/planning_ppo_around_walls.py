"""Closed-loop PPO that observes the way around the walls (``ppo:around_walls=true``).

Two figures:

* trained within the budget: ``ppo:around_walls=true`` trains from scratch on one map for
  ``--moves`` moves (the ``path-planning-closed-loop`` task's 20000) and then drives one
  episode, for agent seeds ``0 .. --seeds - 1`` on each of ``--map`` (default: the wall and
  bug-trap maps); plain ``ppo`` (range sensors and the straight distance) beside it with
  ``--compare``;
* the shipped policies: ``agents/weights/ppo-way-<family>.zip`` (each trained by ``optgym
  train`` on its family's train seeds, see the README) driving one episode on each of test
  seeds ``0 .. --test-maps - 1`` of its family, and the older ``ppo-nav`` policy (range
  sensors, trained on random maps) on the same maps.

Usage: python benchmarks/planning_ppo_around_walls.py [--seeds 10] [--test-maps 10]
       [--map benchmark://nav2d-v0/wall ...] [--compare] [--workers 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from optgym.agents import resolve_agent
from optgym.bench import latest_rows, run_bench
from optgym.budget import Budget
from optgym.datasets.planning.families import FAMILIES

TASK = "path-planning-closed-loop"
WEIGHTS = Path(__file__).resolve().parents[1] / "agents" / "weights"


def successes(rows: list[dict], agent: str, uris: list[str]) -> tuple[int, int]:
    """(goals reached, episodes) of ``agent``'s latest lines on ``uris``."""
    canonical = resolve_agent(agent).canonical
    mine = [r for r in latest_rows(rows) if r["agent"] == canonical and r["benchmark"] in uris]
    won = sum(1 for r in mine if not r.get("error") and r["state"]["extras"].get("success"))
    return won, len(mine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="agent seeds per map")
    parser.add_argument("--moves", type=int, default=20000, help="moves per episode")
    parser.add_argument("--map", action="append", help="maps to train on from scratch")
    parser.add_argument("--compare", action="store_true", help="plain ppo beside it")
    parser.add_argument("--test-maps", type=int, default=10, help="test seeds per family")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", default="results/planning-ppo-around-walls.jsonl")
    args = parser.parse_args()
    maps = args.map or ["benchmark://nav2d-v0/wall", "benchmark://nav2d-v0/bug-trap"]
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    agents = ["ppo:around_walls=true"] + (["ppo"] if args.compare else [])
    lines = []
    rows = []
    if args.seeds > 0:  # --seeds 0: the shipped policies only
        rows = run_bench(TASK, agents, maps, list(range(args.seeds)), Budget(calls=args.moves),
                         results, workers=args.workers)  # fmt: skip
    for agent in agents if rows else []:
        for uri in maps:
            won, n = successes(rows, agent, [uri])
            name = uri.rsplit("/", 1)[-1]
            print(f"{agent} trained on {uri} alone: goal reached in {won} of {n} seeds")
            if agent != "ppo" and name == "wall":
                lines.append(f"ppo_around_walls_wall_seeds: {won}/{n} (target: >= 8/10)")
    uris = {f: [f"generator://nav2d-{f}-v0/{s}" for s in range(args.test_maps)] for f in FAMILIES}
    shipped = {f: f"ppo:path={WEIGHTS / f'ppo-way-{f}.zip'}" for f in FAMILIES}
    shipped = {f: a for f, a in shipped.items() if (WEIGHTS / f"ppo-way-{f}.zip").is_file()}
    total = [0, 0, 0]
    for f, agent in shipped.items():
        old = f"ppo:path={WEIGHTS / 'ppo-nav' / 'model.zip'}"
        rows = run_bench(TASK, [agent, old], uris[f], [0], Budget(calls=1000), results,
                         workers=args.workers, progress=False)  # fmt: skip
        won, n = successes(rows, agent, uris[f])
        before, _ = successes(rows, old, uris[f])
        total = [total[0] + won, total[1] + n, total[2] + before]
        print(f"{f}: ppo-way-{f} reached the goal on {won} of {n} test maps (ppo-nav: {before})")
    if total[1]:
        lines.append(f"ppo_way_test_success: {total[0] / total[1]:.2f} over {total[1]} test maps "
                     f"(ppo-nav: {total[2] / total[1]:.2f}; target: none set)")  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
