"""Nonlinear combinatorial optimization by linear surrogates (docs/architecture.md#problems),
after SurCo (Ferber et al., "Learning Linear Surrogates for Combinatorial Nonlinear
Optimization Problems", ICML 2023): ``optgym/SurrogateOptimization-v0`` takes surrogate
costs, solves the linear problem under them and scores the solution by the nonlinear
objective, on two kinds of instance (:mod:`optgym.datasets.surco`): routes (the shortest
path, scored by its probability of arriving by the deadline) and embedding-table sharding
(an assignment MIP of tables to devices on SCIP, scored by the slowest device's latency).

The env class (``SurrogateOptimizationEnv``) is imported from :mod:`optgym.envs.surco.env`
on first use."""

from __future__ import annotations

from typing import Any

from optgym.budget import Budget
from optgym.problem import EnvEntry, EnvExample, Problem, Resources, Task, lazy_exports

ENV_ID = "optgym/SurrogateOptimization-v0"
DEFAULT_BENCHMARK = "generator://routes-v0/0"
#: The first benchmark of an env made with the sharding reward space (``Speedup``).
SHARDING_BENCHMARK = "generator://sharding-v0/0"

__getattr__ = lazy_exports(__name__, {"SurrogateOptimizationEnv": "env"})


def on_time_probability(env: Any) -> float:
    """The replayed episode's best on-time probability (its reward): the score of a task on
    this env."""
    return float(env.unwrapped.state.reward)


def speedup(env: Any) -> float:
    """The replayed episode's best speedup over the reference placement (its reward): the
    score of a sharding task on this env."""
    return float(env.unwrapped.state.reward)


def _check_instance(benchmark: Any) -> None:
    """``ValueError`` for an instance file that does not load, a route with no source-target
    path, or a sharding instance no placement fits (the solver is asked)."""
    from optgym.datasets.surco.instances import load_benchmark_instance
    from optgym.datasets.surco.sharding import ShardingInstance

    instance = load_benchmark_instance(benchmark)
    if isinstance(instance, ShardingInstance):
        from optgym.envs.surco.solver import reference_placement

        reference_placement(instance)


_AGENTS = "optgym.agents.surco"
PROBLEM = Problem(
    name="surrogate-optimization",
    title="Nonlinear route planning and table sharding by learned linear surrogates (SurCo)",
    envs=(
        EnvEntry(
            ENV_ID,
            "optgym.envs.surco.env:SurrogateOptimizationEnv",
            EnvExample("generator://routes-v0/2", {"deadline_factor": 0.95}, steps=3),
            # a training episode's length; the runner's searches are ended by their budget
            max_episode_steps=100,
        ),
    ),
    datasets=(
        "optgym.datasets.surco.generator:RoutesDataset",
        "optgym.datasets.surco.generator:ShardingDataset",
    ),
    # The test routes, 3 of them (seeds 0, 1, 2: the deadline factors 1.1, 1.0 and 0.9), 100
    # solver calls each.
    tasks=(
        Task(
            name="surco-routes",
            env_id=ENV_ID,
            env_kwargs={},
            datasets=(("generator://routes-v0", "test"),),
            budget=Budget(calls=100),
            score=on_time_probability,
            score_name="on-time probability of the best path (mean)",
            reference_agents=(
                "ev-path", "mean-variance", "random-search", "surco-zero", "surco-prior",
                "surco-hybrid",
            ),
            aggregate="mean",
        ),
        # The test sharding instances, 3 of them, 100 solver calls each; the score is the
        # speedup over the greedy placement (the Speedup reward space).
        Task(
            name="surco-sharding",
            env_id=ENV_ID,
            env_kwargs={"reward_space": "Speedup"},
            datasets=(("generator://sharding-v0", "test"),),
            budget=Budget(calls=100),
            score=speedup,
            score_name="speedup of the best placement over the greedy one (geometric mean)",
            reference_agents=("greedy-sharding", "random-search", "surco-zero"),
            aggregate="geomean",
        ),
    ),
    agents={
        "ev-path": (f"{_AGENTS}.baselines:ExpectedValuePath", ""),
        "greedy-sharding": (f"{_AGENTS}.baselines:GreedySharding", ""),
        "mean-variance": (f"{_AGENTS}.baselines:MeanVariance", ""),
        "random-search": (f"{_AGENTS}.baselines:RandomSearch", ""),
        "surco-zero": (f"{_AGENTS}.surco:SurcoZero", ""),
        "surco-prior": (f"{_AGENTS}.prior:SurcoPrior", ""),
        "surco-hybrid": (f"{_AGENTS}.prior:SurcoHybrid", ""),
    },
    # What one episode asks a Ray cluster for: pure Python and NumPy on graphs of at most
    # 100,000 edges, or one small SCIP model at a time (at most 64,000 binaries).
    resources=Resources(cpus=1, memory_mb=512),
    # the solvers (and SCIP): hidden from sandboxed agents, so that every solution they get
    # is a solver call the env counts
    backends=("module:optgym.envs.surco.solver", "module:pyscipopt", "site:pyscipopt.libs"),
    check_benchmark=_check_instance,
)
