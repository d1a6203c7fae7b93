"""OptGym: gymnasium environments for real optimization problems, with baselines.

>>> import gymnasium as gym, optgym
>>> env = gym.make("optgym/PassOrdering-v0")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

import optgym.envs  # noqa: E402, F401  registers the env ids with gymnasium
from optgym.envs import ENV_IDS  # noqa: E402


def make(env_id: str, step_limit: bool = True, **kwargs: Any):
    """``gymnasium.make`` for OptGym ids, with an error that lists the ids there are.

    ``step_limit=False`` leaves out the id's registered ``max_episode_steps`` (a training
    episode's length): the runner's searches are limited by their budget instead."""
    import dataclasses

    import gymnasium

    if env_id not in ENV_IDS:
        raise ValueError(f"unknown environment id {env_id!r}; OptGym has: {', '.join(ENV_IDS)}")
    if step_limit:
        return gymnasium.make(env_id, **kwargs)
    spec = dataclasses.replace(gymnasium.spec(env_id), max_episode_steps=None)
    return gymnasium.make(spec, **kwargs)


__all__ = ["ENV_IDS", "__version__", "make"]
