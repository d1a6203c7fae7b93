"""Fixed-size, bounded action spaces for envs whose actions are one score per item."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class FixedScores(gym.ActionWrapper):
    """An env whose action is a ``Box(-inf, inf, (n,))`` of scores (one per variable of
    the LNS instance, one per pool example of data selection), with ``n`` that may change
    at every reset, seen through a fixed ``Box(low, high, (size,))``.

    The first ``n`` entries of an action go to the env (as float64); the rest are padding
    and ignored. Scores only order items, so a bounded range loses nothing a policy needs.
    ``size`` defaults to the env's current ``n``; a reset onto an instance with more than
    ``size`` items raises ``ValueError`` naming both sizes (the env stays usable).
    stable-baselines3 needs this: it samples and clips actions in a bounded, fixed box.
    """

    def __init__(self, env: gym.Env, size: int | None = None, low: float = -1.0, high: float = 1.0):
        super().__init__(env)
        inner = env.action_space
        if not isinstance(inner, spaces.Box) or len(inner.shape) != 1:
            raise ValueError(
                f"FixedScores wraps an env whose action is a 1-d Box of scores, got {inner}"
            )
        size = int(inner.shape[0]) if size is None else size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"need finite low < high, got {low!r}, {high!r}")
        self.size = size
        self.action_space = spaces.Box(low, high, (size,), np.float32)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        n = self._items()
        if n > self.size:
            raise ValueError(
                f"this instance has {n} items to score, more than the {self.size} of "
                "FixedScores(size=...); make the wrapper with a larger size"
            )
        return obs, info

    def _items(self) -> int:
        return int(self.env.action_space.shape[0])

    def action(self, action: Any) -> np.ndarray:
        scores = np.asarray(action, dtype=np.float64).reshape(-1)
        if scores.shape != (self.size,):
            raise ValueError(
                f"action must have shape ({self.size},) (FixedScores), got {scores.shape}"
            )
        return scores[: self._items()].copy()
