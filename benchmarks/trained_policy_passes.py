"""The trained PPO + Programl GNN policy against random and greedy search at equal
compilation calls, on the csmith test split (programs no training run drew).

Every agent gets the same budget of compilation calls per program: ``sb3:path=ppo-passes``
(the shipped policy: one deterministic 45-pass episode, then episodes sampled from the
policy), ``random`` (random 32-pass episodes) and ``greedy`` (the best next pass, 124 calls
a step). Scores are the pass-ordering task's: -Oz's instruction count over the episode's,
so 1.0 is -Oz and > 1 beats it; each figure is the geomean over the programs.

Usage: python benchmarks/trained_policy_passes.py [--programs 20] [--first 0] [--calls 45,450]
       [--policy ppo-passes] [--workers 2] [--results DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from optgym.bench import run_bench
from optgym.budget import Budget
from optgym.problem import aggregate

DATASET = "generator://csmith-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=20, help="csmith test programs")
    parser.add_argument("--first", type=int, default=0, help="first test seed (default 0)")
    parser.add_argument("--calls", default="45,450", help="call budgets, comma-separated")
    parser.add_argument("--policy", default="ppo-passes", help="sb3 model (folder or name)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", default=None, help="folder for the result files")
    args = parser.parse_args()
    folder = Path(args.results or tempfile.mkdtemp(prefix="trained-passes-"))
    folder.mkdir(parents=True, exist_ok=True)
    if not 0 <= args.first and args.first + args.programs <= 1000:
        parser.error("the csmith test split is seeds 0-999")
    seeds = range(args.first, args.first + args.programs)
    benchmarks = [f"{DATASET}/{seed}" for seed in seeds]  # the test split
    agents = {"ppo_gnn": f"sb3:path={args.policy}", "random": "random", "greedy": "greedy"}
    figures: list[str] = []
    for calls in [int(c) for c in args.calls.split(",")]:
        rows = run_bench(
            "pass-ordering",
            list(agents.values()),
            benchmarks,
            [0],
            Budget(calls=calls),
            folder / f"calls{calls}.jsonl",
            workers=args.workers,
        )
        scores = {name: [] for name in agents}
        for row in rows:
            name = next(n for n, spec in agents.items() if spec == row["agent"])
            if row.get("error") is None and row.get("score") is not None:
                scores[name].append(float(row["score"]))
        means = {n: aggregate(s, "geomean") for n, s in scores.items() if s}
        print(f"calls={calls}: " + ", ".join(f"{n} {len(s)} programs" for n, s in scores.items()))
        for name in agents:
            if name in means:
                target = "> random" if name == "ppo_gnn" else "reference"
                figures.append(
                    f"{name}_geomean_vs_oz_calls{calls}: {means[name]:.4f} (target: {target})"
                )
        if "ppo_gnn" in means and "random" in means:
            ratio = means["ppo_gnn"] / means["random"]
            figures.append(f"ppo_gnn_over_random_calls{calls}: {ratio:.4f} (target: > 1)")
    print(f"results: {folder}")
    for line in figures:
        print(line)


if __name__ == "__main__":
    main()
