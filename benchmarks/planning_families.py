"""Every open-loop planner on the test seeds of the generated map families, side by side.

Runs ``optgym bench path-planning`` (the same runner, one process per episode) on
``generator://nav2d-<family>-v0/<seed>`` for test seeds ``0 .. --seeds - 1`` of each family,
with the planners' own default settings and ``--evaluations`` plan evaluations per episode,
then prints the success rate (a goal reached) per family and planner and the mean seconds
per episode. The last lines give the figures against their targets: LaP3's success rate over
all the families run (each one a trap: its straight line to the goal is walled), the best
other planner's, and LaP3's mean seconds per episode (the runner's wall clock).

Usage: python benchmarks/planning_families.py [--seeds 10] [--evaluations 2000]
       [--agent lap3 --agent cem ...] [--workers 2] [--results results/planning-families.jsonl]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from optgym.agents import resolve_agent
from optgym.bench import latest_rows, run_bench
from optgym.budget import Budget
from optgym.datasets.planning.families import FAMILIES

PLANNERS = ("lap3", "la-mcts", "cem", "cmaes", "mppi", "voo", "shooting")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="test seeds per family")
    parser.add_argument("--evaluations", type=int, default=2000, help="plans per episode")
    parser.add_argument("--agent", action="append", help=f"planner (default: {PLANNERS})")
    parser.add_argument("--family", action="append", help="family (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--tuned", help="settings file of scripts/tune_planners.py (default: the defaults)"
    )
    parser.add_argument("--results", default="results/planning-families.jsonl")
    args = parser.parse_args()
    names = args.agent or list(PLANNERS)
    specs = dict(zip(names, names, strict=True))
    if args.tuned:  # each planner with the settings chosen on train seeds
        tuned = json.loads(Path(args.tuned).read_text())["specs"]
        specs = {a: tuned.get(a, a) for a in names}
    short = {resolve_agent(s).canonical: a for a, s in specs.items()}
    agents = list(specs.values())
    families = args.family or list(FAMILIES)
    uris = {f: [f"generator://nav2d-{f}-v0/{s}" for s in range(args.seeds)] for f in families}
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    rows = run_bench(
        "path-planning",
        agents,
        [u for f in families for u in uris[f]],
        [0],
        Budget(calls=args.evaluations),
        results,
        workers=args.workers,
    )
    rows = latest_rows(rows)
    family_of = {u: f for f, us in uris.items() for u in us}
    table: dict[tuple[str, str], list[bool]] = {}
    seconds: dict[str, list[float]] = {}
    errors = 0
    for r in rows:
        if r["agent"] not in short or r["benchmark"] not in family_of:
            continue
        agent = short[r["agent"]]
        if r.get("error"):
            errors += 1
            continue
        table.setdefault((agent, family_of[r["benchmark"]]), []).append(r["score"] > 0)
        seconds.setdefault(agent, []).append(r["walltime"])
    print(f"success rate over test seeds 0-{args.seeds - 1}, {args.evaluations} evaluations")
    for a, s in specs.items():
        print(f"  {a}: {s}")
    print(f"{'agent':10s}" + "".join(f"{f:>10s}" for f in families) + f"{'all':>8s}{'s/ep':>8s}")
    overall = {}
    for a in names:
        cells, wins = [], []
        for f in families:
            got = table.get((a, f), [])
            wins += got
            cells.append(f"{sum(got)}/{len(got)}")
        overall[a] = sum(wins) / max(len(wins), 1)
        mean_s = sum(seconds.get(a, [0.0])) / max(len(seconds.get(a, [])), 1)
        line = f"{a:10s}" + "".join(f"{c:>10s}" for c in cells)
        print(line + f"{overall[a]:>8.2f}{mean_s:>8.1f}")
    if errors:
        print(f"{errors} episodes ended with an error (see {results})")
    if "lap3" in overall:
        others = {a: v for a, v in overall.items() if a != "lap3"}
        best = max(others, key=others.get) if others else "-"
        lap3_s = seconds.get("lap3", [0.0])
        print(f"lap3_success_rate: {overall['lap3']:.2f} (target: >= 0.50)")
        if others:
            print(f"best_other_success_rate: {others[best]:.2f} ({best}; target: below lap3's)")
        print(f"lap3_seconds_per_episode: {sum(lap3_s) / len(lap3_s):.1f} (target: <= 10)")


if __name__ == "__main__":
    main()
