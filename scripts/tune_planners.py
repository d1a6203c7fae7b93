"""Choose every open-loop planner's settings on train seeds of the generated map families.

For each planner, a coordinate search over a small grid (:data:`GRID`): starting from the
planner's defaults, each setting in turn takes the grid value that does best with the
others held, judged on train seeds ``2000 .. 2000 + --maps - 1`` of every family
(``generator://nav2d-<family>-v0/<seed>``) at ``--evaluations`` plan evaluations, agent
seed 0: the most goals reached, ties broken by the mean plan reward. No validation or test
seed is looked at. Episodes run through ``optgym bench``'s runner into ``--results`` (a
rerun resumes, and a setting tried twice is run once). The chosen settings, the figures
and the command are written to ``--out`` (``agents/planning/tuned.json`` is the shipped
one); ``benchmarks/planning_families.py --tuned FILE`` runs the planners with them.

Usage: python scripts/tune_planners.py [--maps 2] [--evaluations 2000] [--agent lap3 ...]
       [--workers 2] [--out agents/planning/tuned.json]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from optgym.agents import resolve_agent
from optgym.bench import latest_rows, run_bench
from optgym.budget import Budget
from optgym.datasets.planning.families import FAMILIES

#: The values each planner's settings may take (the planner's default among them).
GRID: dict[str, dict[str, list[Any]]] = {
    "lap3": {
        "plan_space": ["moves", "anchors"],
        "cp": [1.0, 3.0, 10.0],
        "sigma": [0.3, 0.5, 1.0],
        "anchors": [4, 6, 10],
        "waypoints": [4, 8, 16],
        "batch": [50, 100],
        "leaf_size": [20, 50],
    },
    "la-mcts": {"cp": [0.1, 1.0, 3.0], "sigma": [0.2, 0.5]},
    "cem": {"population": [50, 100, 200], "init_std": [0.5, 1.0], "elite_frac": [0.1, 0.2]},
    "cmaes": {"sigma0": [0.3, 0.5, 1.0], "popsize": [10, 20, 50]},
    "mppi": {"noise_std": [0.3, 0.5, 1.0], "temperature": [0.03, 0.1, 0.3]},
    "voo": {"exploit_prob": [0.3, 0.5, 0.7], "batch": [25, 50, 100]},
    "shooting": {},
}
TRAIN_FIRST_SEED = 2000


def spec(agent: str, settings: dict[str, Any]) -> str:
    """The agent spec ``agent:key=value,...`` (the bare name without settings)."""
    if not settings:
        return agent
    return agent + ":" + ",".join(f"{k}={v}" for k, v in sorted(settings.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=2, help="train seeds per family")
    parser.add_argument("--evaluations", type=int, default=2000, help="plans per episode")
    parser.add_argument("--agent", action="append", help=f"planner (default: {list(GRID)})")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", default="results/tune-planners.jsonl")
    parser.add_argument("--out", default="agents/planning/tuned.json")
    args = parser.parse_args()
    agents = args.agent or list(GRID)
    unknown = [a for a in agents if a not in GRID]
    if unknown:
        sys.exit(f"tune_planners: unknown planner {unknown[0]!r}; allowed: {', '.join(GRID)}")
    seeds = range(TRAIN_FIRST_SEED, TRAIN_FIRST_SEED + args.maps)
    uris = [f"generator://nav2d-{f}-v0/{s}" for f in FAMILIES for s in seeds]
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    budget = Budget(calls=args.evaluations)
    start = time.perf_counter()

    def judge(candidates: list[str]) -> dict[str, tuple[int, float]]:
        rows = run_bench("path-planning", candidates, uris, [0], budget, results,
                         workers=args.workers, progress=False)  # fmt: skip
        out: dict[str, tuple[int, float]] = {}
        for c in candidates:
            canonical = resolve_agent(c).canonical
            mine = [r for r in latest_rows(rows)
                    if r["agent"] == canonical and r["benchmark"] in uris]  # fmt: skip
            scores = [r["score"] if not r.get("error") else -1e9 for r in mine]
            out[c] = (sum(s > 0 for s in scores), sum(scores) / max(len(scores), 1))
        return out

    chosen: dict[str, dict[str, Any]] = {}
    figures: dict[str, dict[str, Any]] = {}
    for agent in agents:
        best: dict[str, Any] = {}
        for name, values in GRID[agent].items():
            tries = {spec(agent, {**best, name: v}): v for v in values}
            marks = judge(list(tries))
            for s, (wins, mean) in marks.items():
                print(f"{s}: {wins}/{len(uris)} goals, mean reward {mean:.3f}", flush=True)
            top = max(marks, key=lambda s: marks[s])
            best[name] = tries[top]
        final = judge([spec(agent, best)])[spec(agent, best)]
        chosen[agent] = best
        figures[agent] = {"train_goals": final[0], "train_maps": len(uris),
                          "train_mean_reward": round(final[1], 4)}  # fmt: skip
        print(f"chosen: {spec(agent, best)} ({final[0]}/{len(uris)} train goals)", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_file():  # planners tuned before by another run keep their settings
        old = json.loads(out.read_text())
        chosen = {**old.get("settings", {}), **chosen}
        figures = {**old.get("figures", {}), **figures}
    record = {
        "made_by": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "train_benchmarks": f"generator://nav2d-<{'|'.join(FAMILIES)}>-v0/"
        f"{TRAIN_FIRST_SEED}-{TRAIN_FIRST_SEED + args.maps - 1}",
        "evaluations": args.evaluations,
        "wall_seconds": round(time.perf_counter() - start),
        "settings": chosen,
        "specs": {a: spec(a, v) for a, v in chosen.items()},
        "figures": figures,
    }
    out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
