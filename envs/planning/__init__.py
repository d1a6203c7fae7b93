"""Path planning for a 2D point robot (docs/architecture.md#problems): ``optgym/PathPlanning2D-v0``
(one open-loop plan per episode, batched plan evaluation) and ``optgym/PathPlanning2DClosedLoop-v0``
(one move per step, range sensors), on the maps of :mod:`optgym.datasets.planning`.

The env classes and helpers (``PathPlanning2DEnv``, ``rollout``...) are imported from
:mod:`optgym.envs.planning.env` and :mod:`optgym.envs.planning.geometry` on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optgym.budget import Budget
from optgym.problem import EnvEntry, EnvExample, Problem, Resources, Task, lazy_exports

OPEN_LOOP_ID = "optgym/PathPlanning2D-v0"
CLOSED_LOOP_ID = "optgym/PathPlanning2DClosedLoop-v0"
DEFAULT_BENCHMARK = "benchmark://nav2d-v0/open"

__getattr__ = lazy_exports(
    __name__,
    {
        "PathPlanning2DClosedLoopEnv": "env",
        "PathPlanning2DEnv": "env",
        "PlanRollout": "env",
        "nearest_goal_distance": "env",
        "plan_rewards": "env",
        "rollout": "geometry",
        "rollout_one": "geometry",
    },
)


def plan_reward(env: Any) -> float:
    """The replayed plan's reward: ``payoff * (1 - 0.2 t / T)`` on reaching a goal at step
    ``t`` of ``T`` (> 0), else minus the final distance to the nearest goal (<= 0)."""
    return float(env.unwrapped.state.reward)


def episode_reward(env: Any) -> float:
    """The replayed closed-loop episode's ``Progress`` reward: the distance to the goal
    gained, divided by the world side, plus the goal's payoff (1) if it was reached."""
    return float(env.unwrapped.state.reward)


def _check_map(benchmark: Any) -> None:
    """``ValueError`` for a map file that does not load, or whose goals no plan reaches."""
    from optgym.datasets.planning import load_benchmark_map
    from optgym.datasets.planning.paths import require_path

    require_path(load_benchmark_map(benchmark))


def _report(rows: list[dict], plot_path: Path) -> list[Path]:
    from optgym.envs.planning.report import planning_table, plot_best_vs_evaluations

    # the success table counts plan rewards above 0: the open-loop task's rows only
    rows = [r for r in rows if r.get("task", OPEN_LOOP_TASK) in (OPEN_LOOP_TASK, HARD_TASK)]
    if not rows:
        return []
    print(f"\n{planning_table(rows)}")
    return [plot_best_vs_evaluations(rows, plot_path.with_name(plot_path.stem + "-evals.png"))]


OPEN_LOOP_TASK = "path-planning"
HARD_TASK = "path-planning-hard"
HARD_FAMILIES = ("utrap", "spiral", "rooms", "corridor", "maze")
#: The planners with their settings chosen on the hard families' train seeds, LaP3 first
#: (the ``specs`` of agents/planning/tuned.json, written by scripts/tune_planners.py).
TUNED_PLANNERS = (
    "lap3:anchors=10,batch=100,cp=3.0,leaf_size=20,plan_space=anchors,sigma=0.5,waypoints=8",
    "la-mcts:cp=0.1,sigma=0.5",
    "cmaes:popsize=10,sigma0=1.0",
    "cem:elite_frac=0.2,init_std=1.0,population=200",
    "mppi:noise_std=1.0,temperature=0.03",
    "voo:batch=50,exploit_prob=0.5",
    "shooting",
)
_SEARCH = "optgym.agents.planning.search"
_PARTITION = "optgym.agents.planning.space_partition"
_DATA = "optgym.datasets.planning"
PROBLEM = Problem(
    name="path-planning",
    title="Path planning by learned space partitions (LA-MCTS, LaP3)",
    envs=(
        EnvEntry(
            OPEN_LOOP_ID,
            "optgym.envs.planning.env:PathPlanning2DEnv",
            # no step limit: the whole plan is one action, and the episode terminates
            # after it (a TimeLimit of 1 would also mark it truncated)
            EnvExample("benchmark://nav2d-v0/wall", {"max_end_points": 10}),
        ),
        EnvEntry(
            CLOSED_LOOP_ID,
            "optgym.envs.planning.env:PathPlanning2DClosedLoopEnv",
            EnvExample("benchmark://nav2d-v0/wall", {"sensor_range": 0.5}, steps=4),
            # the map's horizon (100 on the bundled maps) truncates first
            max_episode_steps=1000,
        ),
    ),
    datasets=(
        f"{_DATA}:Nav2dDataset",
        f"{_DATA}:Nav2dRandomDataset",
        # seeded families of hard maps (optgym.datasets.planning.families)
        *(
            f"{_DATA}.families:Nav2d{f}Dataset"
            for f in ("UTrap", "Spiral", "Rooms", "Corridor", "Maze")
        ),
    ),
    # Every hand-made map, 2000 plan evaluations per episode (the planners keep one of them
    # back for the final step that commits the best plan).
    tasks=(
        Task(
            name=OPEN_LOOP_TASK,
            env_id=OPEN_LOOP_ID,
            env_kwargs={},
            datasets=(("benchmark://nav2d-v0", "test"),),
            budget=Budget(calls=2000),
            score=plan_reward,
            score_name=(
                "plan reward (mean; > 0: goal reached, 1 - 0.2 t/T; else minus the distance left)"
            ),
            reference_agents=("cem", "cmaes"),
            aggregate="mean",
            reference=(0.0, "goal reached above 0"),
        ),
        # The seeded hard families' test maps (optgym.datasets.planning.families), two of
        # each; each planner runs with the settings scripts/tune_planners.py chose on their
        # train seeds (agents/planning/tuned.json: a test keeps these the same).
        Task(
            name=HARD_TASK,
            env_id=OPEN_LOOP_ID,
            env_kwargs={},
            datasets=tuple((f"generator://nav2d-{f}-v0", "test") for f in HARD_FAMILIES),
            budget=Budget(calls=2000),
            score=plan_reward,
            score_name=(
                "plan reward (mean; > 0: goal reached, 1 - 0.2 t/T; else minus the distance left)"
            ),
            reference_agents=TUNED_PLANNERS,
            aggregate="mean",
            reference=(0.0, "goal reached above 0"),
            board_size=2,
        ),
        # The closed-loop env for RL agents: the hand-made maps and unseen random ones;
        # `optgym train ppo --task path-planning-closed-loop` trains on the random maps'
        # train split. An episode may spend 20000 moves (each one plan evaluation), for
        # training from scratch and the final episode; a trained policy spends one episode.
        Task(
            name="path-planning-closed-loop",
            env_id=CLOSED_LOOP_ID,
            env_kwargs={},
            datasets=(("benchmark://nav2d-v0", "test"), ("generator://nav2d-random-v0", "test")),
            budget=Budget(calls=20000),
            score=episode_reward,
            score_name="episode reward (mean; distance gained / world side, + 1 at the goal)",
            reference_agents=("ppo",),
            aggregate="mean",
            board_size=2,
        ),
    ),
    # The planners search whole plans (the open-loop env's batched evaluation); PPO steps
    # the robot (the closed-loop env).
    agents={
        "shooting": (f"{_SEARCH}:RandomShooting", "", (OPEN_LOOP_ID,)),
        "cem": (f"{_SEARCH}:CrossEntropyMethod", "", (OPEN_LOOP_ID,)),
        "cmaes": (f"{_SEARCH}:CmaEs", "", (OPEN_LOOP_ID,)),
        "mppi": (f"{_SEARCH}:Mppi", "", (OPEN_LOOP_ID,)),
        "voo": (f"{_SEARCH}:Voo", "", (OPEN_LOOP_ID,)),
        "la-mcts": (f"{_PARTITION}:LaMcts", "", (OPEN_LOOP_ID,)),
        "lap3": (f"{_PARTITION}:LaP3", "", (OPEN_LOOP_ID,)),
        "ppo": ("optgym.agents.planning.rl:PpoPlanner", "", (CLOSED_LOOP_ID,)),
        "ppo-trained": (
            "optgym.agents.sb3:Sb3Agent:path=ppo-nav",
            "PPO trained by optgym train on the closed-loop env (agents/weights/ppo-nav)",
        ),
    },
    report=_report,
    # What one episode asks a Ray cluster for: peak 278 MiB measured for closed-loop PPO on the
    # open map.
    resources=Resources(cpus=1, memory_mb=512),
    # the simulator (moves against walls): hidden from sandboxed agents, so that every plan
    # they try is the env's to evaluate, and count
    backends=("module:optgym.envs.planning.geometry",),
    check_benchmark=_check_map,
)
