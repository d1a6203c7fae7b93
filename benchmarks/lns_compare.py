"""The LNS agents side by side on held-out test instances: primal gap, primal integral over
CPU seconds and over the work axis, and survival, per family (the CL-LNS paper's table).

Every agent runs each instance once (seed 0) with the task's 60 CPU seconds
(``lns-<family>``); the gaps are measured after the fact against the best objective known
for the instance over every source (``best_known.json`` and every episode here), as the
bench report does. A second part runs on instances nobody has a reference for (fresh test
seeds past those in ``best_known.json``, which no decision looked at, and a hand-written
MPS file) and checks that the integrals differ between agents and rank them as their
final objectives do.

Usage: python benchmarks/lns_compare.py [--instances 5] [--seconds 60] [--workers 2]
       [--agents scip,random-lns,lb-relax,lb-lns,cl-lns] [--out results/lns-compare]
       [--fresh-seconds 20] [--no-fresh]
It resumes: lines already in ``--out`` are kept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from optgym.budget import Budget
from optgym.envs.lns import FAMILIES
from optgym.envs.lns.report import (
    episode_horizon,
    episode_metrics,
    lns_table,
    maximizes,
    references,
    work_gap,
    work_horizons,
)

AGENTS = ("scip", "random-lns", "lb-relax", "lb-lns", "cl-lns")
FRESH_SEEDS = (900, 901, 902)  # test seeds outside best_known.json


def hand_written_mps(path: Path) -> str:
    """A small weighted vertex cover written here (a user's own file): 300 nodes, 3000
    edges, weights 1..100, seeded; its ``file://`` URI."""
    import pyscipopt

    rng = np.random.default_rng(7)
    m = pyscipopt.Model()
    m.hideOutput()
    x = [m.addVar(f"x{i}", vtype="B", obj=int(rng.integers(1, 101))) for i in range(300)]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < 3000:
        a, b = (int(v) for v in rng.integers(0, 300, 2))
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    for a, b in sorted(pairs):
        m.addCons(x[a] + x[b] >= 1, name=f"e{a}_{b}")
    path.parent.mkdir(parents=True, exist_ok=True)
    m.writeProblem(str(path), verbose=False)
    return f"file://{path.resolve()}"


def per_instance(rows: list[dict]) -> dict[str, dict[str, tuple[float, float, float | None]]]:
    """uri -> agent -> (final objective, time integral, mean gap over work)."""
    refs, spans = references(rows), work_horizons(rows)
    out: dict[str, dict[str, tuple[float, float, float | None]]] = {}
    for r in rows:
        if r.get("error"):
            continue
        uri = r["benchmark"]
        _, integral = episode_metrics(r, refs[uri], episode_horizon(r))
        on_work = work_gap(r, refs[uri], spans.get(uri, 0))
        out.setdefault(uri, {})[r["agent"]] = (r["state"]["extras"]["objective"], integral, on_work)
    return out


def agrees(values: dict[str, tuple[float, float, float | None]], maximize: bool) -> bool:
    """Whether the integrals order the agents as their final objectives do (ties allowed
    only where the objectives tie)."""
    names = sorted(values)
    for a in names:
        for b in names:
            oa, ob = values[a][0], values[b][0]
            better = oa > ob if maximize else oa < ob
            if better and not values[a][1] < values[b][1]:
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--agents", default=",".join(AGENTS))
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--out", type=Path, default=Path("results/lns-compare"))
    parser.add_argument("--no-fresh", action="store_true", help="skip the no-reference part")
    parser.add_argument("--fresh-seconds", type=float, default=20.0, help="its CPU seconds")
    args = parser.parse_args()
    from optgym.bench import run_bench

    agents = args.agents.split(",")
    budget = Budget(seconds=args.seconds)
    figures: list[str] = []
    wins = {"cl-lns_best_integral": 0, "cl-lns_beats_scip": 0, "lb-relax_beats_random": 0}
    families = args.families.split(",")
    for family in families:
        uris = [f"generator://{family}-s-v0/{i}" for i in range(args.instances)]
        rows = run_bench(
            f"lns-{family}", agents, uris, [0], budget, args.out / f"lns-{family}.jsonl",
            workers=args.workers, progress=True,
        )  # fmt: skip
        print(f"\n== {family}: {len(uris)} test instances, {args.seconds:g} CPU s")
        print(lns_table(rows))
        integrals: dict[str, float] = {}
        for agent in agents:
            mine = [r for r in rows if r["agent"].split(":")[0] == agent and not r.get("error")]
            if mine:
                refs = references(rows)
                integrals[agent] = float(
                    np.mean(
                        [
                            episode_metrics(r, refs[r["benchmark"]], episode_horizon(r))[1]
                            for r in mine
                        ]
                    )  # fmt: skip
                )
        for agent, value in integrals.items():
            figures.append(f"primal_integral_{family}_{agent}: {value:.3f} (target: lowest)")
        if "cl-lns" in integrals:
            wins["cl-lns_best_integral"] += integrals["cl-lns"] <= min(integrals.values())
            wins["cl-lns_beats_scip"] += integrals["cl-lns"] < integrals.get("scip", np.inf)
        if "lb-relax" in integrals and "random-lns" in integrals:
            wins["lb-relax_beats_random"] += integrals["lb-relax"] < integrals["random-lns"]
    if not args.no_fresh:
        fresh = [f"generator://{f}-s-v0/{s}" for f in families for s in FRESH_SEEDS]
        fresh.append(hand_written_mps(args.out / "hand-written.mps"))
        rows = run_bench(
            "lns-vertex-cover", ["scip", "random-lns"], fresh, [0],
            Budget(seconds=args.fresh_seconds), args.out / "fresh.jsonl",
            workers=args.workers, progress=True,
        )  # fmt: skip
        table = per_instance(rows)
        agreeing = 0
        for uri, values in table.items():
            moves = [o for r in rows if r["benchmark"] == uri and not r.get("error")
                     for _, o, *_ in r["state"]["extras"]["trace"]]  # fmt: skip
            maximize = maximizes(uri, moves)
            differ = len({round(v[1], 9) for v in values.values()}) == len(values)
            ok = differ and agrees(values, maximize)
            agreeing += ok
            shown = {a: [None if x is None else round(x, 4) for x in v] for a, v in values.items()}
            print(f"{uri}: {json.dumps(shown)} agree={ok}")
        figures.append(
            f"no_reference_instances_ranked_like_objectives: {agreeing}/{len(table)} "
            f"(target: {len(table)}/{len(table)})"
        )
    n = len(families)
    figures.append(
        f"cl_lns_lowest_integral_families: {wins['cl-lns_best_integral']}/{n} (target: >= 3)"
    )
    figures.append(f"cl_lns_beats_scip_families: {wins['cl-lns_beats_scip']}/{n} (target: {n})")
    figures.append(
        f"lb_relax_beats_random_lns_families: {wins['lb-relax_beats_random']}/{n} (target: >= 2)"
    )
    print("\n".join(figures))


if __name__ == "__main__":
    main()
