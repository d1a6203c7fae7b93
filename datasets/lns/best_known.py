#!/usr/bin/env python
"""Best known objective values of the first test instances of the small ILP datasets.

Runs SCIP (1 thread, ``randomization/randomseedshift`` 0, ``timing/clocktype`` 1 = CPU time,
time limit ``--seconds``) on seeds ``0 .. count-1`` of each ``<family>-s-v0`` dataset and
records, per instance URI, the best objective found, the dual bound, SCIP's status, the time
limit, this command line, the SCIP version and the instance's sha256 in
``datasets/lns/best_known.json`` (or ``--output``). The file is rewritten after every
instance; an entry with the same sha256 and at least as many seconds is kept, not re-solved,
so an interrupted run resumes where it stopped.

With ``--lns-agent AGENT`` it runs that LNS agent (``random-lns``, the strongest baseline) on
``optgym/ILPNeighborhood-v0`` with ``time_budget`` ``--seconds`` from SCIP's usual initial
incumbent, records its run under ``"lns"`` (agent, seconds, objective, command) and keeps
the entry's ``objective`` the better of SCIP's and the agent's, with ``"source"`` naming
which (``"scip"`` or ``"lns"``): the best known objective over both long runs.

    python -m optgym.datasets.lns.best_known --seconds 3600 --count 10
    python -m optgym.datasets.lns.best_known --seconds 30 --count 2 --family auction
    python -m optgym.datasets.lns.best_known --seconds 600 --count 2 --lns-agent random-lns
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

from optgym.datasets.lns import BEST_KNOWN_PATH, FAMILIES, IlpDataset


def scip_version() -> str:
    """``major.minor.tech`` of the SCIP library pyscipopt is linked to."""
    import pyscipopt

    model = pyscipopt.Model()
    return f"{model.getMajorVersion()}.{model.getMinorVersion()}.{model.getTechVersion()}"


def solve(path: Path, seconds: float) -> dict:
    """Solve the MPS file at ``path`` with SCIP under the fixed settings; the record's numbers."""
    import pyscipopt

    model = pyscipopt.Model()
    model.hideOutput()
    model.readProblem(str(path))
    model.setParam("limits/time", float(seconds))
    model.setParam("timing/clocktype", 1)
    model.setParam("randomization/randomseedshift", 0)
    model.setParam("parallel/maxnthreads", 1)
    model.setParam("lp/threads", 1)
    model.optimize()
    has_sol = model.getNSols() > 0
    return {
        "objective": float(model.getObjVal()) if has_sol else None,
        "dual_bound": float(model.getDualbound()),
        "status": str(model.getStatus()),
        "solving_seconds": round(float(model.getSolvingTime()), 3),
        "nodes": int(model.getNNodes()),
    }


def lns_run(uri: str, agent: str, seconds: float) -> float:
    """The final objective of ``agent``'s LNS episode on ``uri`` with ``seconds`` CPU
    seconds (seed 0; the env's defaults otherwise)."""
    import optgym
    from optgym.agents import make_agent
    from optgym.budget import Budget

    env = optgym.make("optgym/ILPNeighborhood-v0", time_budget=float(seconds), step_limit=False)
    try:
        # wall seconds are no limit here: the env's CPU budget ends the episode
        result = make_agent(agent).solve(env, uri, Budget(seconds=20.0 * seconds + 600), seed=0)
        return float(result.state.extras["objective"])
    finally:
        env.close()


def better(a: float, b: float, maximize: bool) -> bool:
    """Whether objective ``a`` beats ``b``."""
    return a > b if maximize else a < b


def load(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text()) if path.exists() else {}


def save(path: Path, entries: dict[str, dict]) -> None:
    """Write ``entries`` to ``path`` atomically, keys sorted, one entry per block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w") as f:
        json.dump(dict(sorted(entries.items())), f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def is_done(entry: dict | None, sha256: str, seconds: float) -> bool:
    """Whether ``entry`` already holds a run on this exact file with at least ``seconds``."""
    return (
        entry is not None
        and entry.get("sha256") == sha256
        and float(entry.get("seconds", 0)) >= seconds
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, required=True, help="SCIP CPU time limit")
    parser.add_argument("--count", type=int, required=True, help="test seeds 0 .. count-1")
    parser.add_argument(
        "--family",
        action="append",
        choices=sorted(FAMILIES),
        help="only this family (repeatable; default: all)",
    )
    parser.add_argument("--output", type=Path, default=BEST_KNOWN_PATH, help="JSON to update")
    parser.add_argument(
        "--lns-agent", help="run this LNS agent for --seconds instead of SCIP (e.g. random-lns)"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.count < 0:
        parser.error("--seconds must be > 0 and --count >= 0")
    invoked = sys.argv if argv is None else [sys.argv[0], *argv]
    command = shlex.join([Path(sys.executable).name, *invoked])
    seconds = int(args.seconds) if float(args.seconds).is_integer() else args.seconds
    version = scip_version()
    entries = load(args.output)
    for family in args.family or list(FAMILIES):
        dataset = IlpDataset(family, "s")
        for uri in dataset.take("test", args.count):
            bench = dataset.benchmark(uri)
            if args.lns_agent:
                entry = entries.get(uri)
                if entry is None or entry.get("sha256") != bench.sha256:
                    print(f"{uri}: no SCIP entry for this file yet; run without --lns-agent first")
                    continue
                done = entry.get("lns") or {}
                if done.get("agent") == args.lns_agent and done.get("seconds", 0) >= seconds:
                    print(f"{uri}: kept ({done['objective']})", flush=True)
                    continue
                start = time.perf_counter()
                objective = lns_run(uri, args.lns_agent, seconds)
                entry["lns"] = {"agent": args.lns_agent, "seconds": seconds,
                                "objective": objective, "command": command}  # fmt: skip
                scip = entry.get("scip_objective", entry["objective"])
                entry["scip_objective"] = scip
                # the sense: SCIP's dual bound lies beyond its objective
                use_lns = better(objective, scip, entry["dual_bound"] > scip)
                entry["objective"] = objective if use_lns else scip
                entry["source"] = "lns" if use_lns else "scip"
                save(args.output, entries)
                print(f"{uri}: {args.lns_agent} {objective} vs SCIP {scip} "
                      f"({time.perf_counter() - start:.0f} s wall)", flush=True)  # fmt: skip
                continue
            if is_done(entries.get(uri), bench.sha256, args.seconds):
                print(f"{uri}: kept ({entries[uri]['objective']})", flush=True)
                continue
            start = time.perf_counter()
            result = solve(bench.path, args.seconds)
            entries[uri] = {
                **result,
                "seconds": seconds,
                "command": command,
                "scip_version": version,
                "sha256": bench.sha256,
            }
            save(args.output, entries)
            print(
                f"{uri}: {result['status']} objective {result['objective']} dual bound "
                f"{result['dual_bound']} ({time.perf_counter() - start:.1f} s wall)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
