"""Large Neighborhood Search for integer programs (``optgym/ILPNeighborhood-v0``), see
docs/architecture.md#problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optgym.budget import Budget
from optgym.problem import EnvEntry, EnvExample, Problem, Resources, Task

ENV_ID = "optgym/ILPNeighborhood-v0"
FAMILIES = ("vertex-cover", "independent-set", "set-cover", "auction")


def objective_vs_best_known(env: Any) -> float:
    """The incumbent's objective relative to the best-known one: 1.0 matches it, < 1 is
    worse (for minimization best/objective, for maximization objective/best). On an instance
    without a reference (a fresh seed, a user's file), relative to the initial incumbent."""
    return env.unwrapped.score_vs_best_known()


def _report(rows: list[dict], plot_path: Path) -> list[Path]:
    from optgym.envs.lns.report import lns_table, plot_gap_over_time

    print(lns_table(rows))
    return [plot_gap_over_time(rows, plot_path.with_name(plot_path.stem + "-gap.png"))]


def _board_table(rows: list[dict]) -> tuple[tuple[str, ...], list[tuple]]:
    from optgym.envs.lns.report import board_table

    return board_table(rows)


_AGENTS = "optgym.agents.lns"
PROBLEM = Problem(
    name="lns",
    title="Large Neighborhood Search for integer programs on SCIP (LB-RELAX, CL-LNS)",
    envs=(
        EnvEntry(
            ENV_ID,
            "optgym.envs.lns.env:ILPNeighborhoodEnv",
            EnvExample(
                "generator://set-cover-s-v0/1",
                {"subproblem_time": 0.5, "initial_time": 2.0},
                steps=2,
            ),
            nondeterministic=True,
            # the CPU-seconds budget truncates first at the default settings
            max_episode_steps=200,
        ),
    ),
    datasets="optgym.datasets.lns:ilp_datasets",
    # One task per family: the S instances of the test split, 60 CPU seconds per instance.
    tasks=tuple(
        Task(
            name=f"lns-{family}",
            env_id=ENV_ID,
            env_kwargs={"time_budget": 60.0},
            datasets=((f"generator://{family}-s-v0", "test"),),
            budget=Budget(seconds=60.0),
            score=objective_vs_best_known,
            score_name="objective vs best known (geomean; 1 = best known)",
            reference_agents=("scip", "random-lns", "lb-relax", "cl-lns"),
            reference=(1.0, "best known (1.0)"),
            board_size=2,
        )
        for family in FAMILIES
    ),
    agents={
        "scip": (f"{_AGENTS}.heuristics:ScipAlone", "SCIP alone on the whole problem"),
        "random-lns": (f"{_AGENTS}.heuristics:RandomLns", ""),
        "graph-lns": (f"{_AGENTS}.heuristics:GraphInducedLns", ""),
        "lb-lns": (f"{_AGENTS}.local_branching:LocalBranchingLns", ""),
        "lb-relax": (f"{_AGENTS}.local_branching:LbRelax", ""),
        "lb-relax-s": (f"{_AGENTS}.local_branching:LbRelax:sample=true", "LB-RELAX-S (sampling)"),
        "cl-lns": (
            f"{_AGENTS}.cl_lns:ClLns",
            "CL-LNS: a GATv2 trained contrastively on local-branching neighborhoods",
        ),
    },
    report=_report,
    board_table=_board_table,
    # What one episode asks a Ray cluster for: peak 1460 MiB measured on a small set-cover
    # instance, SCIP worker included.
    resources=Resources(cpus=1, memory_mb=2048),
    # SCIP (pyscipopt and the libraries its wheel ships), hidden from sandboxed agents
    backends=("module:pyscipopt", "site:pyscipopt.libs"),
)
