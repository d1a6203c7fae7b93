"""Read an env through another of its named observation spaces."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from optgym.env import OptGymEnv


class NamedObservation(gym.ObservationWrapper):
    """Observe ``env.unwrapped.observation[name]`` instead of the observation the env was
    made with (for a policy trained on ``Programl`` run on a task made with ``Autophase``).
    Every OptGym env offers its named observation spaces (``env.unwrapped.observation``,
    see :class:`optgym.env.ObservationView`); computing one costs no work unit. An unknown
    name is a ``ValueError`` naming the allowed ones. A step that ends its episode with an
    error (``info["error"]``: a backend crash, a pass killed at its time limit) gives the
    last observation back, as the env itself does: there is no program left to observe."""

    def __init__(self, env: gym.Env, name: str) -> None:
        super().__init__(env)
        base = env.unwrapped
        if not isinstance(base, OptGymEnv):
            raise ValueError(
                f"NamedObservation needs an OptGym env (named observation spaces), got "
                f"{type(base).__name__}"
            )
        self.name = name
        self.observation_space = base.observation.spaces[name]  # the error names the allowed
        self._last: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = super().reset(**kwargs)
        self._last = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if "error" not in info or self._last is None:
            self._last = self.observation(obs)
        return self._last, reward, terminated, truncated, info

    def observation(self, observation: Any) -> Any:
        return self.env.unwrapped.observation[self.name]
