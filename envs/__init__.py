"""OptGym's environments, one folder per problem, registered with gymnasium here."""

from gymnasium.envs.registration import register, registry

# id -> (entry point, nondeterministic: the reward is a measured time)
_ENVS = {
    "optgym/PassOrdering-v0": ("optgym.envs.passes.env:PassOrderingEnv", False),
    "optgym/ILPNeighborhood-v0": ("optgym.envs.lns.env:ILPNeighborhoodEnv", True),  # CPU time
    "optgym/ScheduleSearch-v0": ("optgym.envs.schedule.env:ScheduleSearchEnv", True),  # run time
    "optgym/PathPlanning2D-v0": ("optgym.envs.planning.env:PathPlanning2DEnv", False),
    "optgym/PathPlanning2DClosedLoop-v0": (
        "optgym.envs.planning.env:PathPlanning2DClosedLoopEnv",
        False,
    ),
    "optgym/DataSelection-v0": ("optgym.envs.dataselect.env:DataSelectionEnv", False),
}
ENV_IDS = tuple(_ENVS)

for _id, (_entry_point, _nondeterministic) in _ENVS.items():
    if _id not in registry:
        register(id=_id, entry_point=_entry_point, nondeterministic=_nondeterministic)
