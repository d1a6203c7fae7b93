"""A wall-clock cap on each step, for backends where one call can run for minutes."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym


class StepTimeCap(gym.Wrapper):
    """Cap every backend call of a step at ``seconds`` of wall time.

    Some pass sequences on some programs keep LLVM busy for tens of seconds. Past the cap the
    env kills its worker: that step returns ``truncated=True`` with the reason in
    ``info["error"]``, and the next reset starts a fresh worker, so a training run loses one
    episode and goes on. Resets (loading a program) keep the env's own ``timeout``. The env
    must offer ``set_step_timeout(seconds)`` and ``timeout`` (the pass-ordering env does);
    other envs raise ``ValueError``.
    """

    def __init__(self, env: gym.Env, seconds: float):
        super().__init__(env)
        setter = getattr(env.unwrapped, "set_step_timeout", None)
        if not callable(setter):
            raise ValueError(
                f"{type(env.unwrapped).__name__} has no per-call time limit to set "
                "(set_step_timeout); StepTimeCap works on optgym/PassOrdering-v0"
            )
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError(f"seconds must be a number, got {type(seconds).__name__}")
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"seconds must be finite and > 0, got {seconds!r}")
        self.seconds = float(seconds)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        base = self.env.unwrapped
        previous = base.timeout
        base.set_step_timeout(min(self.seconds, previous))
        try:
            return self.env.step(action)
        finally:
            base.set_step_timeout(previous)
