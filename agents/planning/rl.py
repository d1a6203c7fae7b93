"""PPO (stable-baselines3) on ``optgym/PathPlanning2DClosedLoop-v0``: the RL reference agent.

:class:`PpoPlanner` is a learned agent. Without a saved model it trains a fresh MLP policy on
the benchmark within the budget, then rolls its deterministic policy out once on the
caller's env; that episode is the result. With ``path=`` (a model saved by ``save``, e.g.
after ``train`` on the ``generator://nav2d-random-v0`` train split) it only rolls the policy
out, or trains it further first with ``finetune=true``.

Training runs on forks of the caller's env, so every training move is charged to the same
budget meter as the final episode: one move is one ``plan_evaluations`` unit and one step.
PPO learns from the env's own ``Progress`` reward (the decrease of the distance to the goal
plus the goal's payoff), unshaped.

Its PPO settings default to the ``ppo`` section (and ``n_envs``) of the closed-loop env's
hyperparameter file, ``envs/planning/hyperparams/PathPlanning2DClosedLoop-v0.yml``, the one
``optgym train optgym/PathPlanning2DClosedLoop-v0 --algo ppo`` reads. Train and save one
from the command line, on maps of the task's train split, and benchmark it::

    optgym train ppo --task path-planning-closed-loop --budget steps=50000 --out ppo.zip
    optgym bench path-planning-closed-loop --agent ppo:path=ppo.zip
"""

from __future__ import annotations

import importlib.resources
import io
import math
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget
from optgym.envs.planning import CLOSED_LOOP_ID
from optgym.state import EpisodeState
from optgym.threads import torch_threads

#: The closed-loop env's hyperparameter file: its ``n_envs`` and ``ppo`` section are the
#: defaults of :class:`PpoPlanner`'s settings.
HYPERPARAMS = importlib.resources.files("optgym.envs.planning").joinpath(
    "hyperparams", f"{CLOSED_LOOP_ID.split('/')[-1]}.yml"
)


def _hyperparams() -> dict[str, Any]:
    """``n_envs`` and the ``ppo`` section of :data:`HYPERPARAMS`, as PPO's keyword
    arguments (``net_arch`` from ``policy_kwargs``)."""
    data = yaml.safe_load(HYPERPARAMS.read_text(encoding="utf-8"))
    section = dict(data["ppo"])
    section["net_arch"] = tuple(section.pop("policy_kwargs")["net_arch"])
    return {"n_envs": int(data["n_envs"]), **section}


_PPO = _hyperparams()
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

    def figures(self) -> dict[str, Any]:
        """The run as JSON data (what ``train`` returns)."""
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 4),
            "episodes": self.episodes,
            "successes": self.successes,
            "success_rate": self.recent_success_rate,
        }


class _TrainingLimit(BaseCallback):
    """Stops PPO once ``max_steps`` env steps are taken (a multiple of the env count, so no
    vectorized step passes it) or ``deadline`` (a ``time.monotonic`` value) has passed, and
    counts finished episodes and goals reached. A rollout that the limit cuts short is
    dropped unless the limit falls on its last step, where PPO still learns from it."""

    def __init__(self, max_steps: int, deadline: float, progress: bool = False):
        super().__init__()
        self.max_steps = max_steps
        self.deadline = deadline
        self.progress = progress
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

    def _on_rollout_end(self) -> None:
        if self.progress:
            rate = f"{np.mean(self.recent):.2f}" if self.recent else "-"
            print(
                f"ppo: {self.num_timesteps} steps, {self.episodes} episodes, "
                f"recent success rate {rate}",
                file=sys.stderr,
            )


class _MapCycle(gym.Wrapper):
    """A training env: a fork of the caller's env that starts each episode on the next of
    ``benchmarks`` in turn (from ``offset``, so parallel envs start on different maps)."""

    def __init__(self, env: gym.Env, benchmarks: Sequence[str], offset: int):
        super().__init__(env)
        self.benchmarks = list(benchmarks)
        self.next = offset

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        uri = self.benchmarks[self.next % len(self.benchmarks)]
        self.next += 1
        return self.env.reset(seed=seed, options={"benchmark": uri})


class _AroundWalls(gym.Wrapper):
    """A training env that observes ``WaySensors`` and is rewarded by the way left around
    the walls (the closed-loop env's ``WayProgress``), whatever the caller's env reports:
    the env's own reward is the task's score, this one only shapes the training."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = env.unwrapped.observation.spaces["WaySensors"]

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        _, info = self.env.reset(**kwargs)
        return self.env.unwrapped.observation["WaySensors"], info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        base = self.env.unwrapped
        before = base.position
        _, _, terminated, truncated, info = self.env.step(action)
        reward = base.way_reward(before, base.position, int(info.get("goal", -1)))
        return base.observation["WaySensors"], reward, terminated, truncated, info


def _check(name: str, ok: bool, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _closed_loop(env: gym.Env, who: str) -> Any:
    """``env.unwrapped``; ``ValueError`` unless it is the closed-loop env."""
    base = env.unwrapped
    if getattr(base, "env_id", None) != CLOSED_LOOP_ID:
        got = env.spec.id if env.spec else type(base).__name__
        raise ValueError(
            f"{who} controls the robot step by step: it needs {CLOSED_LOOP_ID!r}, got {got!r}"
        )
    return base


@dataclass
class PpoPlanner:
    """PPO from stable-baselines3 (``MlpPolicy``): trained from scratch on each benchmark,
    or a saved policy (``path``) rolled out as it is (``finetune``: trained further first).

    The hyperparameters are stable-baselines3's PPO arguments; their defaults are the
    closed-loop env's hyperparameter file's (:data:`HYPERPARAMS`: 4 envs x 256 steps per
    update, suited to the 100-step episodes of the bundled maps). A loaded model keeps its
    own. ``ValueError`` for a bad value.
    """

    n_envs: int = _PPO["n_envs"]
    """parallel training envs (forks of the caller's env)"""
    learning_rate: float = _PPO["learning_rate"]
    """Adam learning rate"""
    n_steps: int = _PPO["n_steps"]
    """steps per env in each rollout (the update comes after n_envs * n_steps steps)"""
    batch_size: int = _PPO["batch_size"]
    """minibatch size of the update, in [2, n_envs * n_steps]"""
    n_epochs: int = _PPO["n_epochs"]
    """passes over each rollout"""
    gamma: float = _PPO["gamma"]
    """discount factor, in (0, 1]"""
    gae_lambda: float = _PPO["gae_lambda"]
    """GAE lambda, in [0, 1]"""
    clip_range: float = _PPO["clip_range"]
    """PPO's clipping range of the probability ratio"""
    ent_coef: float = _PPO["ent_coef"]
    """entropy bonus coefficient (>= 0)"""
    vf_coef: float = _PPO["vf_coef"]
    """value loss coefficient"""
    max_grad_norm: float = _PPO["max_grad_norm"]
    """gradient norm clip"""
    net_arch: tuple[int, ...] = _PPO["net_arch"]
    """hidden layer sizes of the policy and value networks"""
    torch_threads: int = 1
    """torch threads while training and acting (restored afterwards)"""
    device: str = "cpu"
    """torch device: 'cpu', 'cuda:0' or 'auto'"""
    path: Path | None = None
    """a model saved by save() (sb3 zip): solve rolls it out without training"""
    finetune: bool = False
    """with a saved (path) or trained model: train it further on the benchmark, within the
    budget, before the episode"""
    around_walls: bool = False
    """observe ``WaySensors`` (range sensors and the way to the goal around the walls, from
    the map's free space) and train on ``WayProgress`` rewards instead of the straight
    distance; a loaded model observes what it was trained on"""

    def __post_init__(self) -> None:
        n_envs, n_steps = self.n_envs, self.n_steps
        _check("n_envs", _whole(n_envs) and n_envs >= 1, n_envs, "an integer >= 1")
        _check("n_steps", _whole(n_steps) and n_steps >= 1, n_steps, "an integer >= 1")
        _check("n_epochs", _whole(self.n_epochs) and self.n_epochs >= 1, self.n_epochs, ">= 1")
        rollout = n_envs * n_steps
        _check(
            "batch_size",
            _whole(self.batch_size) and 2 <= self.batch_size <= rollout,
            self.batch_size,
            f"an integer in [2, n_envs * n_steps = {rollout}]",
        )
        _check("learning_rate", self.learning_rate > 0, self.learning_rate, "positive")
        _check("gamma", 0 < self.gamma <= 1, self.gamma, "in (0, 1]")
        _check("gae_lambda", 0 <= self.gae_lambda <= 1, self.gae_lambda, "in [0, 1]")
        _check("clip_range", self.clip_range > 0, self.clip_range, "positive")
        _check("ent_coef", self.ent_coef >= 0, self.ent_coef, ">= 0")
        _check("vf_coef", self.vf_coef > 0, self.vf_coef, "positive")
        _check("max_grad_norm", self.max_grad_norm > 0, self.max_grad_norm, "positive")
        layers = tuple(self.net_arch)
        _check(
            "net_arch",
            len(layers) > 0 and all(_whole(n) and n >= 1 for n in layers),
            self.net_arch,
            "a non-empty sequence of positive layer sizes",
        )
        threads = self.torch_threads
        _check("torch_threads", _whole(threads) and threads >= 1, threads, "an integer >= 1")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(
                    f"device must be 'auto' or a torch device such as 'cpu' or 'cuda:0', "
                    f"got {self.device!r}"
                ) from None
        self.n_envs, self.n_steps = int(n_envs), int(n_steps)
        self.net_arch = tuple(int(n) for n in layers)
        self.model: PPO | None = None  # the policy: loaded, or kept by train()
        if self.path is not None:
            self.load(self.path)

    # ---- the model -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the policy as stable-baselines3's zip (``.zip`` is added to a path without
        a suffix); ``RuntimeError`` before ``train`` or ``load``."""
        if self.model is None:
            raise RuntimeError("no model to save: call train() or load() first")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.model.save(path)

    def load(self, path: str | Path) -> None:
        """Read a policy saved by ``save``; ``ValueError`` for a missing or unreadable file."""
        path = Path(path)
        found = path if path.is_file() else path.with_name(path.name + ".zip")
        if path.is_dir():
            raise ValueError(
                f"model file not found: {path} is a folder; ppo loads the zip its save() "
                "wrote (a folder of optgym train ENV --algo ppo runs as sb3:path=DIR)"
            )
        if not found.is_file():
            raise ValueError(f"model file not found: {path}")
        try:
            self.model = PPO.load(found, device=self.device)
        except Exception as e:  # noqa: BLE001  sb3 raises many kinds for a bad zip
            raise ValueError(f"cannot load a PPO model from {found}: {e}") from None

    def _copy_of_model(self, env: Any) -> PPO:
        """An independent copy of the loaded or trained model, on ``env`` (a vec env)."""
        assert self.model is not None
        buffer = io.BytesIO()
        self.model.save(buffer)
        buffer.seek(0)
        return PPO.load(buffer, env=env, device=self.device)

    # ---- training ------------------------------------------------------------------------------
    def _fit(
        self,
        base: Any,
        benchmarks: Sequence[str],
        max_steps: int,
        deadline: float,
        seed: int,
        start_from: PPO | None,
        progress: bool = False,
    ) -> TrainingRun:
        """Train on forks of ``base`` (reset, so forks share its meter) cycling through
        ``benchmarks``, for at most ``max_steps`` env steps (rounded down to a multiple of
        ``n_envs``) and until ``deadline``: a fresh policy, or a copy of ``start_from``."""
        start = time.monotonic()
        max_steps = max(0, max_steps - max_steps % self.n_envs)
        base.reset(seed=seed, options={"benchmark": benchmarks[0]})
        forks: list[gym.Env] = [_MapCycle(base.fork(), benchmarks, i) for i in range(self.n_envs)]
        if self.around_walls or (start_from is not None and _observes_way(start_from, base)):
            forks = [_AroundWalls(f) for f in forks]
        with torch_threads(self.torch_threads):
            vec_env = DummyVecEnv([lambda f=f: f for f in forks])
            try:
                if start_from is None:
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
                else:
                    model = self._copy_of_model(vec_env)
                    model.set_random_seed(seed)
                limit = _TrainingLimit(max_steps, deadline, progress)
                if max_steps > 0:
                    model.learn(total_timesteps=max_steps, callback=limit)
            finally:
                vec_env.close()
        recent = float(np.mean(limit.recent)) if limit.recent else None
        return TrainingRun(
            model=model,
            steps=int(model.num_timesteps) if max_steps > 0 else 0,
            seconds=time.monotonic() - start,
            episodes=limit.episodes,
            successes=limit.successes,
            recent_success_rate=recent,
        )

    def train(
        self,
        env: gym.Env,
        benchmarks: list[str],
        budget: Budget,
        seed: int = 0,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Train one policy across ``benchmarks`` (each training env takes the next map at
        every episode) within ``budget``, on forks of ``env`` (the closed-loop env), so the
        env's meter counts every move: a fresh policy, or the loaded one further. Keeps the
        policy for ``save`` and ``solve``; returns ``steps``, ``seconds``, ``episodes``,
        ``successes`` and ``success_rate`` (over the last 100 training episodes, None
        before the first). ``progress``: a line to stderr after every rollout."""
        budget.require_limit("PPO training")
        if not benchmarks:
            raise ValueError("train needs at least one benchmark URI")
        base = _closed_loop(env, "PPO")
        with metered(env, budget, self) as meter:
            deadline = math.inf
            if meter.budget.seconds is not None:
                deadline = time.monotonic() + (1.0 - TIME_RESERVE) * meter.budget.seconds
                deadline -= meter.seconds
            run = self._fit(
                base, benchmarks, meter.room(seconds=False), deadline, seed, self.model, progress
            )
        self.model = run.model
        return {**run.figures(), "benchmarks": len(benchmarks)}

    # ---- solving -------------------------------------------------------------------------------
    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        """Without a saved model: train on ``benchmark`` within ``budget``, then one
        deterministic episode on ``env``: its state, with the training figures in
        ``state.extras``. The map's ``horizon`` moves are kept back for that episode, and
        10% of a seconds budget for the last PPO update and the episode. With a saved
        model: only the episode (``finetune``: training it further first, as above)."""
        base = _closed_loop(env, "PPO")
        train = self.model is None or self.finetune
        if train:
            budget.require_limit("PPO")
        seed_value = 0 if seed is None else int(seed)
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            horizon = int(base.nav.horizon)
            if train:
                deadline = math.inf
                if meter.budget.seconds is not None:
                    deadline = time.monotonic() + max(
                        (1.0 - TIME_RESERVE) * meter.budget.seconds - meter.seconds, 1e-3
                    )
                run = self._fit(
                    base,
                    [benchmark],
                    meter.room(reserve=horizon, seconds=False),
                    deadline,
                    seed_value,
                    self.model,
                )
                model = run.model
                figures = run.figures()
            else:
                assert self.model is not None
                model = self.model
                figures = TrainingRun(model, 0, 0.0, 0, 0, None).figures()
            with torch_threads(self.torch_threads):
                state, reached = policy_episode(
                    model, env, benchmark, seed, max_steps=meter.room(seconds=False)
                )
            state.extras = {
                "train_steps": figures["steps"],
                "train_seconds": figures["seconds"],
                "train_episodes": figures["episodes"],
                "train_success_rate": figures["success_rate"],
                "success": reached,
            }
            return solved(env, meter, state)


def policy_episode(
    model: PPO, env: gym.Env, benchmark: str, seed: int | None, max_steps: int | None = None
) -> tuple[EpisodeState, bool]:
    """One episode of ``model``'s deterministic policy on ``env`` (reset with ``seed`` on
    ``benchmark``), cut after ``max_steps`` moves if given: the episode's state (its reward
    the env's own) and whether it reached a goal."""
    base = env.unwrapped
    obs, _ = base.reset(seed=seed, options={"benchmark": benchmark})
    way = _observes_way(model, base)
    limit = math.inf if max_steps is None else max_steps
    taken = 0
    terminated = truncated = False
    while not (terminated or truncated) and taken < limit:
        if way:
            obs = base.observation["WaySensors"]
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, _ = base.step(np.asarray(action, dtype=np.float64))
        taken += 1
    return base.state, bool(terminated)


def _observes_way(model: PPO, base: Any) -> bool:
    """Whether ``model`` was trained on the env's ``WaySensors`` (a longer observation than
    the default one)."""
    way = base.observation.spaces["WaySensors"].shape
    return tuple(model.observation_space.shape) == tuple(way)
