"""OptGym's environments, one folder per problem, registered with gymnasium here."""

from gymnasium.envs.registration import register, registry

ENV_IDS = (
    "optgym/PassOrdering-v0",
    "optgym/ILPNeighborhood-v0",
    "optgym/ScheduleSearch-v0",
    "optgym/PathPlanning2D-v0",
    "optgym/PathPlanning2DClosedLoop-v0",
)

if "optgym/PassOrdering-v0" not in registry:
    register(
        id="optgym/PassOrdering-v0",
        entry_point="optgym.envs.passes.env:PassOrderingEnv",
        nondeterministic=False,
    )

if "optgym/ILPNeighborhood-v0" not in registry:
    register(
        id="optgym/ILPNeighborhood-v0",
        entry_point="optgym.envs.lns.env:ILPNeighborhoodEnv",
        nondeterministic=True,  # rewards are measured CPU times
    )

if "optgym/ScheduleSearch-v0" not in registry:
    register(
        id="optgym/ScheduleSearch-v0",
        entry_point="optgym.envs.schedule.env:ScheduleSearchEnv",
        nondeterministic=True,  # rewards are measured run times
    )

if "optgym/PathPlanning2D-v0" not in registry:
    register(
        id="optgym/PathPlanning2D-v0",
        entry_point="optgym.envs.planning.env:PathPlanning2DEnv",
        nondeterministic=False,
    )

if "optgym/PathPlanning2DClosedLoop-v0" not in registry:
    register(
        id="optgym/PathPlanning2DClosedLoop-v0",
        entry_point="optgym.envs.planning.env:PathPlanning2DClosedLoopEnv",
        nondeterministic=False,
    )
