"""Path planning for a 2D point robot (DESIGN 2.4): ``optgym/PathPlanning2D-v0`` (one
open-loop plan per episode, batched plan evaluation) and ``optgym/PathPlanning2DClosedLoop-v0``
(one move per step, range sensors), on the maps of :mod:`optgym.datasets.nav2d`."""

from optgym.envs.planning.env import (
    CLOSED_LOOP_ID,
    OPEN_LOOP_ID,
    PathPlanning2DClosedLoopEnv,
    PathPlanning2DEnv,
    PlanRollout,
    nearest_goal_distance,
    plan_rewards,
)
from optgym.envs.planning.geometry import rollout, rollout_one

__all__ = [
    "CLOSED_LOOP_ID",
    "OPEN_LOOP_ID",
    "PathPlanning2DClosedLoopEnv",
    "PathPlanning2DEnv",
    "PlanRollout",
    "nearest_goal_distance",
    "plan_rewards",
    "rollout",
    "rollout_one",
]
