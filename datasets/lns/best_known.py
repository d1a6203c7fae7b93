#!/usr/bin/env python
"""Best known objective values of the first test instances of the small ILP datasets.

Runs SCIP (1 thread, ``randomization/randomseedshift`` 0, ``timing/clocktype`` 1 = CPU time,
time limit ``--seconds``) on seeds ``0 .. count-1`` of each ``<family>-s-v0`` dataset and
records, per instance URI, the best objective found, the dual bound, SCIP's status, the time
limit, this command line, the SCIP version and the instance's sha256 in
``datasets/lns/best_known.json`` (or ``--output``). The file is rewritten after every
instance; an entry with the same sha256 and at least as many seconds is kept, not re-solved,
so an interrupted run resumes where it stopped.

    python -m optgym.datasets.lns.best_known --seconds 3600 --count 10
    python -m optgym.datasets.lns.best_known --seconds 30 --count 2 --family auction
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
