"""PPO (stable-baselines3) on ``optgym/PathPlanning2DClosedLoop-v0``: the RL reference agent.

:class:`PpoPlanner` trains a fresh MLP policy on one map for the budget's env steps (or
seconds), then rolls its deterministic policy out once on the caller's env; that episode is
the result. One env step, in training or in the final episode, is one budget call and one
budget step, as :class:`optgym.wrappers.BudgetWrapper` counts them. PPO learns from the env's
own ``Progress`` reward (the decrease of the distance to the goal plus the goal's payoff),
unshaped.

From the command line (the flags are :func:`main`'s)::

    python -m optgym.agents.planning_rl --benchmark benchmark://nav2d-v0/open --steps 50000
"""

from __future__ import annotations

import argparse
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from optgym.agents.protocol import Result
from optgym.budget import Budget, BudgetMeter
from optgym.envs.planning.env import CLOSED_LOOP_ID, DEFAULT_BENCHMARK
from optgym.state import EpisodeState

RECENT_EPISODES = 100  # training episodes the reported success rate averages over
TIME_RESERVE = 0.1  # of a seconds budget, kept for the last PPO update and the final episode


@dataclass
class TrainingRun:
    """A trained policy and how its training went: ``steps`` env steps in ``seconds`` of
    wall time, ``episodes`` finished training episodes of which ``successes`` reached a
    goal, and ``recent_success_rate`` over the last 100 of them (None before the first)."""

    model: PPO
    steps: int
    seconds: float
    episodes: int
    successes: int
    recent_success_rate: float | None


class _TrainingLimit(BaseCallback):
    """Stops PPO once ``max_steps`` env steps are taken (a multiple of the env count, so no
    vectorized step passes it) or ``deadline`` (a ``time.monotonic`` value) has passed, and
    counts finished episodes and goals reached. A rollout that the limit cuts short is
    dropped unless the limit falls on its last step, where PPO still learns from it."""

    def __init__(self, max_steps: int, deadline: float):
        super().__init__()
        self.max_steps = max_steps
        self.deadline = deadline
        self.episodes = 0
        self.successes = 0
        self.recent: deque[bool] = deque(maxlen=RECENT_EPISODES)

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if done:
                reached = bool(info.get("reached", False))
                self.episodes += 1
                self.successes += reached
                self.recent.append(reached)
        # On a rollout's last step PPO learns from it, then its own loop stops at max_steps.
        last = self.locals["n_steps"] + 1 >= self.locals["n_rollout_steps"]
        spent = self.num_timesteps >= self.max_steps or time.monotonic() >= self.deadline
        return last or not spent


def _check(name: str, ok: bool, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


class PpoPlanner:
    """PPO from stable-baselines3 (``MlpPolicy``) trained from scratch on each benchmark.

    The hyperparameters are stable-baselines3's PPO arguments (defaults suited to the
    100-step episodes of the bundled maps: 4 envs x 256 steps per update); ``net_arch`` is
    the hidden layer sizes of the policy and value networks, ``torch_threads`` the torch
    threads used while training (restored afterwards). ``ValueError`` for a bad value.
    """

    name = "ppo"

    def __init__(
        self,
        n_envs: int = 4,
        learning_rate: float = 3e-4,
        n_steps: int = 256,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float = 0.2,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        net_arch: Sequence[int] = (64, 64),
        torch_threads: int = 1,
        device: str = "cpu",
    ):
        def whole(value: Any) -> bool:
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

        _check("n_envs", whole(n_envs) and n_envs >= 1, n_envs, "an integer >= 1")
        _check("n_steps", whole(n_steps) and n_steps >= 1, n_steps, "an integer >= 1")
        _check("n_epochs", whole(n_epochs) and n_epochs >= 1, n_epochs, "an integer >= 1")
        rollout = n_envs * n_steps
        _check(
            "batch_size",
            whole(batch_size) and 2 <= batch_size <= rollout,
            batch_size,
            f"an integer in [2, n_envs * n_steps = {rollout}]",
        )
        _check("learning_rate", learning_rate > 0, learning_rate, "positive")
        _check("gamma", 0 < gamma <= 1, gamma, "in (0, 1]")
        _check("gae_lambda", 0 <= gae_lambda <= 1, gae_lambda, "in [0, 1]")
        _check("clip_range", clip_range > 0, clip_range, "positive")
        _check("ent_coef", ent_coef >= 0, ent_coef, ">= 0")
        _check("vf_coef", vf_coef > 0, vf_coef, "positive")
        _check("max_grad_norm", max_grad_norm > 0, max_grad_norm, "positive")
        layers = tuple(net_arch)
        _check(
            "net_arch",
            len(layers) > 0 and all(whole(n) and n >= 1 for n in layers),
            net_arch,
            "a non-empty sequence of positive layer sizes",
        )
        _check("torch_threads", whole(torch_threads) and torch_threads >= 1, torch_threads, ">= 1")
        if device != "auto":
            try:
                torch.device(device)
            except (RuntimeError, TypeError):
                raise ValueError(
                    f"device must be 'auto' or a torch device such as 'cpu' or 'cuda:0', "
                    f"got {device!r}"
                ) from None
        self.n_envs = int(n_envs)
        self.learning_rate = float(learning_rate)
        self.n_steps = int(n_steps)
        self.batch_size = int(batch_size)
        self.n_epochs = int(n_epochs)
        self.gamma = float(gamma)
        self.gae_lambda = float(gae_lambda)
        self.clip_range = float(clip_range)
        self.ent_coef = float(ent_coef)
        self.vf_coef = float(vf_coef)
        self.max_grad_norm = float(max_grad_norm)
        self.net_arch = [int(n) for n in layers]
        self.torch_threads = int(torch_threads)
        self.device = device

    def train(
        self,
        benchmark: str,
        steps: int | None = None,
        seconds: float | None = None,
        seed: int = 0,
        env_kwargs: dict[str, Any] | None = None,
    ) -> TrainingRun:
        """Train a fresh policy on ``benchmark`` for at most ``steps`` env steps (all envs
        together) and ``seconds`` of wall time; at least one limit is required.
        ``env_kwargs`` go to the closed-loop env (``sensor_range``, ``reward_space``)."""
        if steps is None and seconds is None:
            raise ValueError("training needs a limit: steps or seconds")
        if steps is not None and steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if seconds is not None and not seconds > 0:
            raise ValueError(f"seconds must be positive, got {seconds}")
        start = time.monotonic()
        max_steps = (1 << 62) if steps is None else int(steps) - int(steps) % self.n_envs
        deadline = math.inf if seconds is None else start + seconds
        threads = torch.get_num_threads()
        torch.set_num_threads(self.torch_threads)
        try:
            vec_env = make_vec_env(
                CLOSED_LOOP_ID,
                n_envs=self.n_envs,
                seed=seed,
                env_kwargs={**(env_kwargs or {}), "benchmark": benchmark},
            )
            model = PPO(
                "MlpPolicy",
                vec_env,
                learning_rate=self.learning_rate,
                n_steps=self.n_steps,
                batch_size=self.batch_size,
                n_epochs=self.n_epochs,
                gamma=self.gamma,
                gae_lambda=self.gae_lambda,
                clip_range=self.clip_range,
                ent_coef=self.ent_coef,
                vf_coef=self.vf_coef,
                max_grad_norm=self.max_grad_norm,
                policy_kwargs={"net_arch": list(self.net_arch)},
                seed=seed,
                device=self.device,
                verbose=0,
            )
            limit = _TrainingLimit(max_steps, deadline)
            if max_steps > 0:
                model.learn(total_timesteps=max_steps, callback=limit)
            vec_env.close()
        finally:
            torch.set_num_threads(threads)
        recent = float(np.mean(limit.recent)) if limit.recent else None
        return TrainingRun(
            model=model,
            steps=int(model.num_timesteps),
            seconds=time.monotonic() - start,
            episodes=limit.episodes,
            successes=limit.successes,
            recent_success_rate=recent,
        )

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        """Train on ``benchmark`` within ``budget``, then one deterministic episode on
        ``env``: its state, with the training figures in ``state.extras``. The map's
        ``horizon`` steps (and calls) are kept back for that episode, and 10% of a seconds
        budget for the last PPO update and the episode (which always runs: the seconds
        used can pass the budget by what they take beyond that)."""
        budget.require_limit(self.name)
        base = env.unwrapped
        if getattr(base, "env_id", None) != CLOSED_LOOP_ID:
            got = env.spec.id if env.spec else type(base).__name__
            raise ValueError(
                f"{self.name} controls the robot step by step: it needs {CLOSED_LOOP_ID!r}, "
                f"got {got!r}"
            )
        meter = BudgetMeter(budget)
        seed_value = 0 if seed is None else int(seed)
        base.reset(seed=seed, options={"benchmark": benchmark})
        horizon = int(base.nav.horizon)
        room = meter.room()  # steps (and calls) for training and the final episode
        seconds = None
        if budget.seconds is not None:
            seconds = max((1.0 - TIME_RESERVE) * budget.seconds - meter.seconds, 1e-3)
        env_kwargs = {"sensor_range": base.sensor_range, "reward_space": base.reward_space_name}
        run = self.train(
            benchmark,
            steps=max(0, room - horizon),
            seconds=seconds,
            seed=seed_value,
            env_kwargs=env_kwargs,
        )
        meter.charge(calls=run.steps, steps=run.steps)
        last = room - run.steps
        state, reached = policy_episode(run.model, env, benchmark, seed, max_steps=last)
        meter.charge(calls=len(state.actions), steps=len(state.actions))
        state.extras = {
            "train_steps": run.steps,
            "train_seconds": round(run.seconds, 4),
            "train_episodes": run.episodes,
            "train_success_rate": run.recent_success_rate,
            "success": reached,
        }
        return Result(state=state, budget_used=meter.used())


def policy_episode(
    model: PPO, env: gym.Env, benchmark: str, seed: int | None, max_steps: int | None = None
) -> tuple[EpisodeState, bool]:
    """One episode of ``model``'s deterministic policy on ``env`` (reset with ``seed`` on
    ``benchmark``), cut after ``max_steps`` moves if given: the episode's state (its reward
    the env's own) and whether it reached a goal."""
    base = env.unwrapped
    obs, _ = base.reset(seed=seed, options={"benchmark": benchmark})
    limit = math.inf if max_steps is None else max_steps
    taken = 0
    terminated = truncated = False
    while not (terminated or truncated) and taken < limit:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, _ = base.step(np.asarray(action, dtype=np.float64))
        taken += 1
    return base.state, bool(terminated)


def main(argv: Sequence[str] | None = None) -> int:
    """Train PPO on one map and report its deterministic episode; exit status 0 when the
    episode reaches a goal, 1 when it does not."""
    parser = argparse.ArgumentParser(
        prog="python -m optgym.agents.planning_rl",
        description=f"Train PPO on {CLOSED_LOOP_ID} and roll out its deterministic policy.",
    )
    parser.add_argument("--benchmark", default=DEFAULT_BENCHMARK, help="map URI")
    parser.add_argument(
        "--steps", type=int, default=None, help="training env steps (50000 without --seconds)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="training wall-time limit")
    parser.add_argument("--seed", type=int, default=0, help="seed of training and episode")
    parser.add_argument("--n-envs", type=int, default=4, help="parallel training envs")
    parser.add_argument("--save", default=None, help="write the trained model to this .zip")
    args = parser.parse_args(argv)
    if args.steps is None and args.seconds is None:
        args.steps = 50_000
    planner = PpoPlanner(n_envs=args.n_envs)
    run = planner.train(args.benchmark, steps=args.steps, seconds=args.seconds, seed=args.seed)
    env = gym.make(CLOSED_LOOP_ID)
    state, reached = policy_episode(run.model, env, args.benchmark, args.seed)
    env.close()
    print(f"benchmark        {args.benchmark}")
    print(f"episode reward   {state.reward:.4f}")
    print(f"goal reached     {reached} ({len(state.actions)} moves)")
    print(f"steps trained    {run.steps}")
    print(f"training seconds {run.seconds:.1f}")
    print(f"train successes  {run.successes}/{run.episodes} episodes")
    if args.save:
        run.model.save(args.save)
        print(f"model saved      {args.save}")
    return 0 if reached else 1


if __name__ == "__main__":
    raise SystemExit(main())
