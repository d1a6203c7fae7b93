"""OptGym: gymnasium environments for real optimization problems, with baselines.

>>> import gymnasium as gym, optgym
>>> env = gym.make("optgym/PassOrdering-v0")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

import optgym.envs  # noqa: E402, F401  registers the env ids with gymnasium
from optgym.envs import ENV_IDS  # noqa: E402


def make(env_id: str, **kwargs: Any):
    """``gymnasium.make`` for OptGym ids, with an error that lists the ids there are."""
    import gymnasium

    if env_id not in ENV_IDS:
        raise ValueError(f"unknown environment id {env_id!r}; OptGym has: {', '.join(ENV_IDS)}")
    return gymnasium.make(env_id, **kwargs)


__all__ = ["ENV_IDS", "__version__", "make"]
