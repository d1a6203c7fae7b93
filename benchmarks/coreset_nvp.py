"""Coreset-NVP against its ablations and the baselines at 45 compilations, side by side, on
the test sets no training or selection decision looked at: debian-v0's real programs and
the csmith-v0 test split.

Every agent gets the task ``pass-ordering-45``'s budget (45 compilations: a pass, a pass
sequence or a reference pipeline each) on every program: ``coreset-nvp`` (the coreset ranked
by the Programl GNN), ``coreset-autophase`` (ranked by the Autophase MLP, the ablation),
``coreset-list`` (the coreset's fixed order, no model), ``ppo-gnn``, ``greedy``, ``random``
(seed 0), ``o3`` and ``oz`` (1.0). Scores are -Oz's instruction count over the episode's
(1.0 is -Oz, > 1 beats it); each figure is the geomean over a set's programs. The training
and discovery times are read from the shipped weights file (what ``optgym train
coreset-nvp`` measured).

Usage: python benchmarks/coreset_nvp.py [--csmith 10] [--workers 2] [--results DIR]
       [--weights agents/weights/coreset-nvp.pt]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from optgym.bench import run_bench
from optgym.budget import Budget
from optgym.problem import aggregate

TASK = "pass-ordering-45"
TARGET = 1.047  # the paper's 4.7% over -Oz on unseen programs


def main() -> None:
    from optgym.agents.passes.coreset import CoresetNvpAgent
    from optgym.datasets.passes.debian import NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csmith", type=int, default=10, help="csmith test programs (seeds 0-)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", default=None, help="folder for the result file")
    parser.add_argument("--weights", default=None, help="coreset-nvp weights (default: shipped)")
    args = parser.parse_args()
    folder = Path(args.results or tempfile.mkdtemp(prefix="coreset-nvp-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = f":path={args.weights}" if args.weights else ""
    agents = {
        "coreset_nvp": f"coreset-nvp{path}",
        "coreset_autophase": f"coreset-autophase{path}",
        "coreset_list": f"coreset-list{path}",
        "ppo_gnn": "ppo-gnn",
        "greedy": "greedy",
        "random": "random",
        "o3": "o3",
        "oz": "oz",
    }
    sets = {
        "debian": [f"benchmark://debian-v0/{n}" for n in NAMES],
        "csmith": [f"generator://csmith-v0/{s}" for s in range(args.csmith)],
    }
    rows = run_bench(
        TASK,
        list(agents.values()),
        sets["debian"] + sets["csmith"],
        [0],
        Budget(calls=45),
        folder / f"{TASK}.jsonl",
        workers=args.workers,
    )
    scores: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        name = next(n for n, spec in agents.items() if spec == row["agent"])
        where = next(s for s, uris in sets.items() if row["benchmark"] in uris)
        if row.get("error") is None and row.get("score") is not None:
            scores.setdefault((name, where), []).append(float(row["score"]))
    figures = []
    for where, uris in sets.items():
        means = {
            n: aggregate(scores.get((n, where), []) or [float("nan")], "geomean") for n in agents
        }
        print(
            f"{where} ({len(uris)} programs): "
            + ", ".join(f"{n} {len(scores.get((n, where), []))}" for n in agents)
        )
        for name in agents:
            target = (
                f">= {TARGET} and above greedy, random, ppo_gnn"
                if (name == "coreset_nvp" and where == "debian")
                else "reference"
            )
            figures.append(f"{name}_{where}_geomean_vs_oz: {means[name]:.4f} (target: {target})")
        best_other = max(means[n] for n in ("greedy", "random", "ppo_gnn"))
        figures.append(
            f"coreset_nvp_over_best_baseline_{where}: {means['coreset_nvp'] / best_other:.4f} "
            "(target: > 1)"
        )
    trained = CoresetNvpAgent(path=args.weights)
    for key in ("discovery_seconds", "matrix_seconds", "programl_train_seconds",
                "autophase_train_seconds", "seconds", "train_programs", "candidates",
                "coreset", "coreset_validation_geomean"):  # fmt: skip
        if key in trained.figures:
            figures.append(f"training_{key}: {trained.figures[key]:g} (target: reference)")
    print(f"results: {folder}")
    for line in figures:
        print(line)


if __name__ == "__main__":
    main()
