"""A policy trained by ``optgym train`` (stable-baselines3 or sb3-contrib), as an agent.

``--agent sb3:path=runs/ppo-nav`` benchmarks the model saved in that folder on any task of
the env it was trained on. The agent rebuilds the observation the policy was trained on (the
training observation space, graph padding, fixed-size scores: the adapters recorded in
``train.json``; an SB3 model holds pickled objects, so load only models you trust), plays
its deterministic policy once, then samples episodes from the
stochastic policy while the budget lasts, and returns the best state seen. With a discrete
action, an action that gained nothing is not taken again until some action gains
(``skip_unhelpful``): a deterministic policy would otherwise repeat it to the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget
from optgym.state import EpisodeState
from optgym.threads import torch_threads

#: Steps of one policy episode when the env id registers no step limit.
DEFAULT_HORIZON = 1000
#: Where the trained reference policies ship (``sb3:path=NAME`` finds them by name).
SHIPPED = Path(__file__).resolve().parent / "weights"


@dataclass
class Sb3Agent:
    """Runs a saved ``optgym train`` model: one deterministic episode, then episodes
    sampled from the policy until the budget is spent (``sample=false``: the deterministic
    one only); the best state of all of them is the result."""

    problems: ClassVar[tuple[str, ...]] = ("*",)  # any env: the model says which

    path: Path
    """the folder ``optgym train --out`` wrote (or its model.zip)"""
    sample: bool = True
    """after the deterministic episode, sample further episodes while the budget lasts"""
    episode_length: int = 0
    """steps per policy episode (0: the env id's registered step limit)"""
    skip_unhelpful: bool = True
    """with a discrete action: an action whose reward was not positive is not taken again
    until some action's is (else a deterministic policy can repeat it to the end)"""
    model: Literal["final", "best"] = "final"
    """which model of the run: final (model.zip) or best (best_model.zip, the best of the
    run's evaluations on validation benchmarks)"""
    _policy: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.episode_length < 0:
            raise ValueError(f"episode_length must be >= 0, got {self.episode_length}")
        if self.model not in ("final", "best"):
            raise ValueError(f"model must be final or best, got {self.model!r}")
        # load it now: a missing or foreign model is an error before any episode runs,
        # and the agent then works on the env its model was trained on, no other
        self.problems = (self.policy().env_id,)  # type: ignore[misc]

    def policy(self) -> Any:
        """The trained policy (loaded once): the run's ``model.zip``, or with
        ``model=best`` its ``best_model.zip``. A relative ``path`` that does not exist names
        a policy shipped in ``optgym/agents/weights/`` (``sb3:path=ppo-passes``)."""
        if self._policy is None:
            from optgym.train import load_policy

            path = Path(self.path)
            if not path.is_absolute() and not path.exists() and (SHIPPED / path).exists():
                path = SHIPPED / path
            self._policy = load_policy(path, best=self.model == "best")
        return self._policy

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        policy = self.policy()
        base = env.unwrapped
        if base.env_id != policy.env_id:
            raise ValueError(
                f"the model at {self.path} was trained on {policy.env_id}, not {base.env_id}"
            )
        horizon = self.episode_length or gym.spec(policy.env_id).max_episode_steps
        horizon = horizon or DEFAULT_HORIZON
        masked = policy.config.get("algo") == "maskable-ppo"
        if seed is not None:
            policy.model.set_random_seed(seed)
        best: EpisodeState | None = None
        rng = np.random.default_rng(seed)
        with metered(env, budget, self) as meter, torch_threads(1):
            adapted = policy.adapt(env)
            deterministic = True
            while True:
                obs, _ = adapted.reset(seed=seed, options={"benchmark": benchmark})
                seed = None
                tried: set[int] = set()  # actions that gained nothing since the last gain
                for _ in range(horizon):
                    mask = base.action_masks() if masked else None
                    probs = policy.probabilities(obs) if self.skip_unhelpful else None
                    if probs is not None:
                        action = _choose(probs, tried, deterministic, rng)
                    else:
                        action = policy.act(obs, deterministic=deterministic, mask=mask)
                    obs, reward, terminated, truncated, info = adapted.step(action)
                    if probs is not None:
                        tried = set() if reward > 0 else tried | {int(action)}
                    if "error" not in info and (best is None or base.episode_reward > best.reward):
                        best = base.state
                    if terminated or truncated or "error" in info or meter.room() == 0:
                        break
                deterministic = False
                unlimited = budget.calls is None and budget.steps is None
                if not self.sample or meter.room() == 0 or (unlimited and budget.seconds is None):
                    break
            return solved(env, meter, best)


def _choose(probs: np.ndarray, tried: set[int], deterministic: bool, rng: Any) -> np.int64:
    """The most probable action outside ``tried`` (deterministic), or one sampled from the
    policy's probabilities renormalized over the actions outside ``tried``."""
    weights = probs.copy()
    if len(tried) < len(weights):
        weights[list(tried)] = 0.0
    if deterministic or weights.sum() <= 0:
        return np.int64(np.argmax(weights if weights.sum() > 0 else probs))
    return np.int64(rng.choice(len(weights), p=weights / weights.sum()))
