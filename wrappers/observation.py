"""Read an env through another of its named observation spaces."""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class NamedObservation(gym.ObservationWrapper):
    """Observe ``env.unwrapped.observation[name]`` instead of the observation the env was
    made with (for a policy trained on ``Programl`` run on a task made with ``Autophase``).
    The env must offer named observation spaces (``env.unwrapped.observation`` and
    ``observation_space_of(name)``); computing one costs no work unit."""

    def __init__(self, env: gym.Env, name: str) -> None:
        super().__init__(env)
        view = getattr(env.unwrapped, "observation", None)
        has_spaces = callable(getattr(env.unwrapped, "observation_space_of", None))
        names = list(view.keys()) if hasattr(view, "keys") and has_spaces else []
        if name not in names:
            allowed = ", ".join(names) or "none (this env has no named observation spaces)"
            raise ValueError(f"unknown observation space {name!r}; allowed: {allowed}")
        self.name = name
        self.observation_space = env.unwrapped.observation_space_of(name)

    def observation(self, observation: Any) -> Any:
        return self.env.unwrapped.observation[self.name]
