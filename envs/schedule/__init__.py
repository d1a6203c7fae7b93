"""Halide schedule search (``optgym/ScheduleSearch-v0``): docs/architecture.md#problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optgym.budget import Budget
from optgym.problem import EnvEntry, EnvExample, Problem, Resources, Task

ENV_ID = "optgym/ScheduleSearch-v0"
ENV_ID_V1 = "optgym/ScheduleSearch-v1"


def speedup_vs_adams2019(env: Any) -> float:
    """Adams2019's (beam 32) time divided by the schedule's: > 1 beats the autoscheduler."""
    return env.unwrapped.score_vs_baseline()


def _report(rows: list[dict], plot_path: Path) -> list[Path]:
    from optgym.envs.schedule.report import plot_speedup_vs_search_time, schedule_table

    print(schedule_table(rows))
    return [plot_speedup_vs_search_time(rows, plot_path.with_name(plot_path.stem + "-time.png"))]


def _task(name: str, env_id: str) -> Task:
    """The schedule-search task on ``env_id``: the test split of the operator pipelines, 30 s
    and 32 measurements of search per pipeline, measurements kept in the env's SQLite cache
    (the replay reads them back)."""
    return Task(
        name=name,
        env_id=env_id,
        env_kwargs={"mode": "cache"},
        datasets=(("benchmark://halide-ops-v0", "test"),),
        budget=Budget(calls=32, seconds=30.0),
        score=speedup_vs_adams2019,
        score_name="speedup over Halide's Adams2019 autoscheduler, beam 32 (geomean)",
        reference_agents=("adams2019-b32", "schedule-random"),
        score_rtol=0.2,
        reference=(1.0, "Adams2019, beam 32 (1.0)"),
    )


_REF = "optgym.agents.schedule.search:HalideAutoscheduler:reference="
_VALUE = "optgym.agents.schedule.value:ValueFunctionAgent"
_DATA = "optgym.datasets.schedule"
PROBLEM = Problem(
    name="schedule-search",
    title="Tensor-program schedule search on Halide (value-function-guided search)",
    envs=(
        EnvEntry(
            ENV_ID,
            "optgym.envs.schedule.env:ScheduleSearchEnv",
            # one stage: an episode is one step
            EnvExample("benchmark://halide-ops-v0/maxpool-512", {"mode": "cache", "samples": 5}),
            nondeterministic=True,
            max_episode_steps=512,  # one step per stage; the generated pipelines have <= 200
        ),
        EnvEntry(
            ENV_ID_V1,
            "optgym.envs.schedule.env:ScheduleSearchEnvV1",
            # the expressive stage action: what Halide's autoschedulers write
            EnvExample("benchmark://halide-ops-v0/maxpool-512", {"mode": "cache", "samples": 5}),
            nondeterministic=True,
            max_episode_steps=512,
        ),
    ),
    datasets=(f"{_DATA}:HalideOpsDataset", f"{_DATA}:RandomDagDataset"),
    tasks=(
        _task("schedule-search", ENV_ID),
        _task("schedule-search-v1", ENV_ID_V1),  # the same task on the expressive actions
    ),
    agents={
        "maskable-ppo": (
            "optgym.agents.sb3:Sb3Agent:path=maskable-ppo-schedule",
            "MaskablePPO trained in model mode by optgym train (agents/weights/...-schedule)",
            (ENV_ID,),
        ),
        "adams2019-b1": (_REF + "Adams2019-beam1", "Halide's Adams2019 autoscheduler, beam 1"),
        "adams2019-b32": (_REF + "Adams2019-beam32", "Halide's Adams2019 autoscheduler, beam 32"),
        "mullapudi2016": (_REF + "Mullapudi2016", "Halide's Mullapudi2016 autoscheduler"),
        "li2018": (_REF + "Li2018", "Halide's Li2018 gradient autoscheduler"),
        "schedule-random": ("optgym.agents.schedule.search:ScheduleRandomSearch", ""),
        "value": (_VALUE, "greedy search on a learned value function", (ENV_ID,)),
        "value-beam": (
            _VALUE + ":beam=4",
            "beam search (4) on a learned value function",
            (ENV_ID,),
        ),
        "value-v1": (
            _VALUE + ":beam=4,measure_top=none,search_rounds=2,pipelines=36,schedules=8",
            "beam search (4) on a value function learned by value iteration, top measured",
            (ENV_ID_V1,),
        ),
        "value-v1-climb": (
            _VALUE + ":beam=4,measure_top=none,climb_after=8,search_rounds=2,pipelines=36,"
            "schedules=8",
            "value-v1's 8 best-predicted schedules measured, then model-guided hill climbing",
            (ENV_ID_V1,),
        ),
        "schedule-local": (
            "optgym.agents.schedule.local:ScheduleLocalSearch",
            "local search over v1 actions from Adams2019's (beam 1) schedule",
            (ENV_ID_V1,),
        ),
    },
    report=_report,
    # What one episode asks a Ray cluster for: peak 194 MiB measured for Adams2019 on matmul-192;
    # measured mode JITs and times more.
    resources=Resources(cpus=1, memory_mb=1024),
    # Halide (its wheel ships its own LLVM), hidden from sandboxed agents
    backends=("module:halide",),
)
