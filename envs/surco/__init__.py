"""Nonlinear route planning by linear surrogates (docs/architecture.md#problems), after SurCo
(Ferber et al., "Learning Linear Surrogates for Combinatorial Nonlinear Optimization
Problems", ICML 2023):
``optgym/SurrogateOptimization-v0`` takes surrogate edge costs, solves the shortest path
under them and scores the path by its probability of arriving by the deadline, on the
routes of :mod:`optgym.datasets.surco`.

The env class (``SurrogateOptimizationEnv``) is imported from :mod:`optgym.envs.surco.env`
on first use."""

from __future__ import annotations

from typing import Any

from optgym.budget import Budget
from optgym.problem import EnvEntry, EnvExample, Problem, Resources, Task, lazy_exports

ENV_ID = "optgym/SurrogateOptimization-v0"
DEFAULT_BENCHMARK = "generator://routes-v0/0"

__getattr__ = lazy_exports(__name__, {"SurrogateOptimizationEnv": "env"})


def on_time_probability(env: Any) -> float:
    """The replayed episode's best on-time probability (its reward): the score of a task on
    this env."""
    return float(env.unwrapped.state.reward)


def _check_route(benchmark: Any) -> None:
    """``ValueError`` for a route file that does not load or has no source-target path."""
    from optgym.datasets.surco.routes import load_benchmark_route

    load_benchmark_route(benchmark)


_AGENTS = "optgym.agents.surco"
PROBLEM = Problem(
    name="surrogate-optimization",
    title="Nonlinear route planning by learned linear surrogates (SurCo)",
    envs=(
        EnvEntry(
            ENV_ID,
            "optgym.envs.surco.env:SurrogateOptimizationEnv",
            EnvExample("generator://routes-v0/2", {"deadline_factor": 0.95}, steps=3),
            # a training episode's length; the runner's searches are ended by their budget
            max_episode_steps=100,
        ),
    ),
    datasets=("optgym.datasets.surco.generator:RoutesDataset",),
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
            reference_agents=("ev-path", "mean-variance", "random-search", "surco-zero"),
            aggregate="mean",
        ),
    ),
    agents={
        "ev-path": (f"{_AGENTS}.baselines:ExpectedValuePath", ""),
        "mean-variance": (f"{_AGENTS}.baselines:MeanVariance", ""),
        "random-search": (f"{_AGENTS}.baselines:RandomSearch", ""),
        "surco-zero": (f"{_AGENTS}.surco:SurcoZero", ""),
    },
    # What one episode asks a Ray cluster for: pure Python and NumPy on graphs of at most
    # 100,000 edges.
    resources=Resources(cpus=1, memory_mb=512),
    # the shortest-path solver: hidden from sandboxed agents, so that every path they get
    # is a solver call the env counts
    backends=("module:optgym.envs.surco.solver",),
    check_benchmark=_check_route,
)
