"""Path planning for a 2D point robot among walls: open-loop plans and closed-loop control."""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import optgym
from optgym.datasets.dataset import DatasetRegistry
from optgym.datasets.nav2d import MAX_GOALS, NavMap, load_benchmark_map, nav2d_datasets
from optgym.envs.planning.canvas import draw_map
from optgym.envs.planning.geometry import (
    check_plans,
    map_geometry,
    move,
    ranges,
    rollout,
    rollout_one,
)
from optgym.state import (
    EpisodeState,
    ValidationResult,
    check_benchmark_unchanged,
    check_state_for,
)

OPEN_LOOP_ID = "optgym/PathPlanning2D-v0"
CLOSED_LOOP_ID = "optgym/PathPlanning2DClosedLoop-v0"
DEFAULT_BENCHMARK = "benchmark://nav2d-v0/open"
TIME_PENALTY = 0.2  # reward on reaching a goal at step t of T: payoff * (1 - 0.2 t / T)
N_SENSORS = 16


def nav2d_registry() -> DatasetRegistry:
    return DatasetRegistry(nav2d_datasets())


def nearest_goal_distance(nav: NavMap, xy: np.ndarray) -> np.ndarray:
    """Distance from points (..., 2) to the nearest goal centre."""
    xy = np.asarray(xy, dtype=np.float64)
    best = np.full(xy.shape[:-1], np.inf)
    for g in nav.goals:
        ex, ey = xy[..., 0] - g.x, xy[..., 1] - g.y
        best = np.minimum(best, np.sqrt(ex * ex + ey * ey))
    return best


def plan_rewards(
    nav: NavMap, final: np.ndarray, reached_step: np.ndarray, goal: np.ndarray
) -> np.ndarray:
    """LaP3's reward for rolled-out plans: ``payoff * (1 - 0.2 t / T)`` for a plan that
    reached a goal at step ``t`` of ``T``, else minus the final distance to the nearest goal
    centre. ``final`` (N, 2), ``reached_step`` and ``goal`` (N,) as :func:`rollout` gives."""
    payoff = np.array([g.payoff for g in nav.goals])
    hit = reached_step >= 0
    on_time = 1.0 - TIME_PENALTY * reached_step / nav.horizon
    return np.where(hit, payoff[np.maximum(goal, 0)] * on_time, -nearest_goal_distance(nav, final))


@dataclass
class PlanRollout:
    """Rolled-out plans: ``positions`` (N, T + 1, 2), ``reached_step`` (N,) (1..T or -1),
    ``goal`` (N,) (index or -1) and ``rewards`` (N,)."""

    positions: np.ndarray
    reached_step: np.ndarray
    goal: np.ndarray
    rewards: np.ndarray


class _NavigationEnv(gym.Env[np.ndarray, np.ndarray]):
    """What both planning envs share: maps by URI, the search picture, states and forks."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    env_id = ""
    reward_spaces: tuple[str, ...] = ()

    def __init__(
        self,
        benchmark: str | None,
        reward_space: str,
        render_mode: str | None,
        max_end_points: int,
    ):
        if reward_space not in self.reward_spaces:
            raise ValueError(
                f"unknown reward space {reward_space!r}; allowed: {', '.join(self.reward_spaces)}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; allowed: None, 'rgb_array'")
        if max_end_points < 0:
            raise ValueError(f"max_end_points must be >= 0, got {max_end_points}")
        self.reward_space_name = reward_space
        self.render_mode = render_mode
        self.max_end_points = max_end_points
        self.datasets = nav2d_registry()
        self._benchmark_uri = ""
        self.benchmark_sha256 = ""
        self._started = False
        self._load(benchmark or DEFAULT_BENCHMARK)

    # ---- maps ---------------------------------------------------------------------------------
    def _load(self, uri: str) -> None:
        """Load the map of ``uri``; a bad URI or file raises ``ValueError`` and keeps the
        current map."""
        benchmark = self.datasets.benchmark(uri)
        if benchmark.sha256 != self.benchmark_sha256:
            self.nav = load_benchmark_map(benchmark)
            self.geometry = map_geometry(self.nav)
            self.benchmark_sha256 = benchmark.sha256
            self._clear_search()
            self._configure()
        self._benchmark_uri = uri

    def _configure(self) -> None:
        """Set the spaces for the map just loaded."""

    def _clear_search(self) -> None:
        self.end_points: deque[tuple[float, float]] = deque(maxlen=self.max_end_points)
        self.best_reward = -math.inf
        self.best_path: np.ndarray | None = None

    @property
    def benchmark(self) -> str:
        return self._benchmark_uri

    def _reset_map(self, seed: int | None, options: dict[str, Any] | None) -> None:
        super().reset(seed=seed)
        options = dict(options or {})
        uri = options.pop("benchmark", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; allowed: 'benchmark'")
        self._load(str(uri) if uri is not None else self._benchmark_uri)
        self._seed = seed
        self._actions: list[list[float]] = []
        self._total = 0.0
        self._done = False
        self._started = True
        self._start_time = time.time()

    def _need_reset(self, what: str) -> None:
        if not self._started:
            raise RuntimeError(f"call reset() before {what}")

    def _goal_features(self) -> list[float]:
        w = self.nav.size
        top = max(g.payoff for g in self.nav.goals)
        values: list[float] = []
        for g in self.nav.goals:
            values += [g.x / w, g.y / w, min(g.radius / w, 1.0), g.payoff / top]
        return values + [0.0] * (4 * (MAX_GOALS - len(self.nav.goals)))

    # ---- picture ------------------------------------------------------------------------------
    def _paths_to_draw(self) -> list[np.ndarray]:
        return []

    def render(self) -> np.ndarray | None:
        """The map, the best path so far (red), other paths and the last
        ``max_end_points`` end points (orange), as an RGB array."""
        if self.render_mode != "rgb_array":
            return None
        ends = np.array(self.end_points) if self.end_points else None
        return draw_map(self.nav, self.best_path, ends, self._paths_to_draw())

    # ---- states -------------------------------------------------------------------------------
    @property
    def state(self) -> EpisodeState:
        """The episode so far as a replayable, JSON-serializable record."""
        self._need_reset("reading the state")
        return EpisodeState(
            env_id=self.spec.id if self.spec else self.env_id,
            benchmark=self._benchmark_uri,
            reward_space=self.reward_space_name,
            actions=[list(a) for a in self._actions],
            reward=self._total,
            seed=self._seed,
            walltime=time.time() - self._start_time,
            versions={"optgym": optgym.__version__, "benchmark_sha256": self.benchmark_sha256},
        )

    def apply(self, state: EpisodeState) -> float:
        """Reset to ``state.benchmark`` and replay its actions; the episode's reward."""
        check_state_for(state, self.env_id, self.reward_space_name)
        self.reset(seed=state.seed, options={"benchmark": state.benchmark})
        check_benchmark_unchanged(state, self.benchmark_sha256, "map")
        for action in state.actions:
            if self._done:
                raise ValueError("the state has actions after the end of its episode")
            self.step(np.asarray(action, dtype=np.float64))
        return self._total

    def validate(self, state: EpisodeState | None = None) -> ValidationResult:
        """Replay ``state`` (default: this episode's) from a fresh reset; ``ok`` when the
        reward reproduces exactly (the reward is deterministic)."""
        state = state if state is not None else self.state
        try:
            reward = self.apply(state)
        except (ValueError, RuntimeError) as e:
            return ValidationResult(state, False, None, str(e))
        return ValidationResult(state, reward == state.reward, reward)

    def fork(self) -> _NavigationEnv:
        """An independent copy at the same point of the episode (maps are immutable and
        shared; everything that changes is copied)."""
        self._need_reset("fork()")
        new = copy.copy(self)
        new._actions = [list(a) for a in self._actions]
        new.end_points = deque(self.end_points, maxlen=self.max_end_points)
        new._np_random = copy.deepcopy(self._np_random)
        return new


class PathPlanning2DEnv(_NavigationEnv):
    """
    ## Description

    Open-loop path planning for a point robot in a 2D world with rectangular walls, after
    the LaP3 paper (Yang et al., "Learning Space Partitions for Path Planning", NeurIPS
    2021). The whole plan, ``T`` bounded moves, is one action; the single step rolls it out
    and the episode ends. A move that would cross a wall stops just short of it (see
    ``optgym.envs.planning.geometry``); a move that enters a goal disk stops there and the
    goal is reached. Black-box planners evaluate many plans at once with
    ``env.unwrapped.evaluate_batch(plans)`` (counted in ``env.unwrapped.evaluations``) and
    commit the best with ``step``.

    ## Action Space

    ``Box(-1, 1, (2T,), float64)``, ``T`` the map's horizon (100 on the bundled maps; the
    shape is set when a map is loaded): moves ``(dx, dy)`` in order, ``action[2k:2k + 2]``
    the ``k``-th, in units of the map's move bound. Each move's length is clipped to the
    bound, so finite values beyond ``[-1, 1]`` are accepted. A (T, 2) array is accepted too;
    another length, NaN or inf raises ``ValueError``.

    ## Observation Space

    ``Box(0, 1, (2 + 4 * 4,), float32)``, constant over the episode (the problem is
    open-loop): the start ``x, y`` and, per goal slot (4), ``x, y, radius`` (all divided by
    the world side) and the goal's payoff divided by the largest payoff on the map; unused
    slots are zero. The map itself is ``env.unwrapped.nav``.

    ## Rewards

    ``ReachTime``: ``payoff * (1 - 0.2 t / T)`` when the plan reaches a goal at step
    ``t`` (the first goal it enters; the payoff is 1 except on ``two-goals``, where the far
    goal pays 1 and the near one 0.5), else minus the final distance to the nearest goal
    centre. Deterministic.

    ## Starting State

    The robot at the map's start. ``reset(options={"benchmark": uri})`` picks the map:
    ``benchmark://nav2d-v0/<open|wall|bug-trap|maze|four-rooms|two-goals|maze-hard>``,
    ``generator://nav2d-random-v0/<seed>`` or ``file:///path/map.json`` (or a ``.txt``
    grid; formats in ``optgym.datasets.nav2d.maps``). Without options the last map is kept;
    the first reset takes ``benchmark://nav2d-v0/open``. A reset clears the evaluation
    count and the search picture.

    ## Episode End

    Terminates after the single step.

    ## Arguments

    ``benchmark`` (the first reset's URI), ``reward_space`` (``"ReachTime"``),
    ``render_mode`` (``"rgb_array"``: the map, the best plan's path so far and the end
    points of the last ``max_end_points`` (300) evaluated plans).

    ## Version History

    * v0: LaP3's reward, exact wall contact, nav2d-v0 and nav2d-random-v0 maps.

    ## Example

    >>> import gymnasium as gym, numpy as np, optgym
    >>> env = gym.make("optgym/PathPlanning2D-v0")
    >>> obs, info = env.reset(options={"benchmark": "benchmark://nav2d-v0/bug-trap"})
    >>> plans = np.random.default_rng(0).uniform(-1, 1, (1000, 200))
    >>> rewards = env.unwrapped.evaluate_batch(plans)
    >>> obs, reward, terminated, truncated, info = env.step(plans[rewards.argmax()])
    """

    env_id = OPEN_LOOP_ID
    reward_spaces = ("ReachTime",)

    def __init__(
        self,
        benchmark: str | None = None,
        reward_space: str = "ReachTime",
        render_mode: str | None = None,
        max_end_points: int = 300,
    ):
        self.observation_space = spaces.Box(0.0, 1.0, (2 + 4 * MAX_GOALS,), dtype=np.float32)
        self.evaluations = 0
        super().__init__(benchmark, reward_space, render_mode, max_end_points)

    def _configure(self) -> None:
        shape = (2 * self.nav.horizon,)
        self.action_space = spaces.Box(-1.0, 1.0, shape, dtype=np.float64)

    def _clear_search(self) -> None:
        super()._clear_search()
        self.best_plan: np.ndarray | None = None

    def _obs(self) -> np.ndarray:
        w = self.nav.size
        values = [self.nav.start[0] / w, self.nav.start[1] / w, *self._goal_features()]
        return np.array(values, dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        self._reset_map(seed, options)
        self._clear_search()
        self.evaluations = 0
        return self._obs(), {"evaluations": 0}

    # ---- evaluation -------------------------------------------------------------------------
    def rollout_batch(self, plans: Any) -> PlanRollout:
        """Roll out plans (N, 2T) or (N, T, 2) and score them; counts N evaluations and
        feeds the search picture. ``ValueError`` for a wrong shape, NaN or inf."""
        self._need_reset("evaluating plans")
        arr = check_plans(plans, self.nav.horizon)
        if len(arr) == 1:  # plain Python is faster for one plan, and bit-identical
            path, step, which = rollout_one(self.nav, arr[0])
            positions = np.array([path])
            reached, goal = np.array([step]), np.array([which])
        else:
            positions, reached, goal = rollout(self.nav, arr)
        rewards = plan_rewards(self.nav, positions[:, -1], reached, goal)
        self.evaluations += len(rewards)
        if len(rewards):
            if self.max_end_points:
                ends = positions[-self.max_end_points :, -1].tolist()
                self.end_points.extend(map(tuple, ends))
            best = int(np.argmax(rewards))
            if rewards[best] > self.best_reward:
                self.best_reward = float(rewards[best])
                self.best_path = positions[best]
                self.best_plan = arr[best].reshape(-1).copy()
        return PlanRollout(positions, reached, goal, rewards)

    def evaluate_batch(self, plans: Any) -> np.ndarray:
        """Rewards (N,) of plans (N, 2T) or (N, T, 2), exactly as ``step`` would give them;
        counts N evaluations. What black-box planners call."""
        return self.rollout_batch(plans).rewards

    def _check_plan(self, action: Any) -> np.ndarray:
        t = self.nav.horizon
        arr = np.asarray(action, dtype=np.float64)
        if arr.shape not in ((2 * t,), (t, 2)):
            raise ValueError(
                f"a plan must have shape ({2 * t},) (or ({t}, 2)): {t} moves (dx, dy) for "
                f"horizon {t}; got shape {arr.shape}"
            )
        return arr.reshape(1, t, 2)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._need_reset("step()")
        if self._done:
            raise RuntimeError("the episode is over (one step per plan); call reset()")
        plan = self._check_plan(action)
        result = self.rollout_batch(plan)
        reward = float(result.rewards[0])
        self._actions = [plan.reshape(-1).tolist()]
        self._total = reward
        self._done = True
        final = result.positions[0, -1]
        info = {
            "reached": bool(result.reached_step[0] >= 0),
            "step": int(result.reached_step[0]),
            "goal": int(result.goal[0]),
            "final_position": final.copy(),
            "distance": float(nearest_goal_distance(self.nav, final)),
            "evaluations": self.evaluations,
        }
        return self._obs(), reward, True, False, info

    def fork(self) -> PathPlanning2DEnv:
        new = super().fork()
        new.best_plan = None if self.best_plan is None else self.best_plan.copy()
        return new


class PathPlanning2DClosedLoopEnv(_NavigationEnv):
    """
    ## Description

    Closed-loop control of the point robot of ``optgym/PathPlanning2D-v0``, for RL agents:
    one bounded move a step, observing range sensors and the goal direction. Walls and goals
    work as in the open-loop env (a blocked move stops just short of the wall; entering a
    goal disk reaches it), on the same maps.

    ## Action Space

    ``Box(-1, 1, (2,), float64)``: the move ``(dx, dy)`` in units of the map's move bound,
    its length clipped to the bound (finite values beyond ``[-1, 1]`` are accepted; NaN,
    inf or another shape raise ``ValueError``).

    ## Observation Space

    ``Box((19,), float32)``: 16 range readings (distance to the nearest wall or border
    along the directions ``2 pi k / 16``, counter-clockwise from ``+x``, divided by the
    sensor range and capped at 1), the vector from the robot to the nearest goal centre
    divided by the world side (in [-1, 1]), and the elapsed fraction of the horizon.

    ## Rewards

    ``Progress``: the decrease of the distance to the nearest goal centre over the step,
    divided by the world side, plus the goal's payoff (1 on single-goal maps) on reaching
    it. The shaping is potential-based (undiscounted, it leaves the best policy unchanged),
    and an episode's total is the distance gained plus the payoff whatever its length: only
    an agent's discount favours short paths. Near a wall the distance has local optima
    (PPO does not get past the ``wall`` map's wall in 200k steps).

    ## Starting State

    The robot at the map's start; maps as in ``optgym/PathPlanning2D-v0``
    (``reset(options={"benchmark": uri})``, default ``benchmark://nav2d-v0/open``).

    ## Episode End

    Terminates when the robot reaches a goal; truncated after the map's horizon ``T`` steps
    (100 on the bundled maps; it is part of the map, so the env counts it itself).

    ## Arguments

    ``benchmark``, ``reward_space`` (``"Progress"``), ``sensor_range`` (fraction of the
    world side, 0.25), ``render_mode`` (``"rgb_array"``: the map, the current path, the best
    episode's path on this map and the end points of the last ``max_end_points`` (300)
    episodes).

    ## Version History

    * v0: 16 range sensors, potential-based progress reward.

    ## Example

    >>> import gymnasium as gym, optgym
    >>> env = gym.make("optgym/PathPlanning2DClosedLoop-v0")
    >>> obs, info = env.reset(options={"benchmark": "benchmark://nav2d-v0/four-rooms"})
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    """

    env_id = CLOSED_LOOP_ID
    reward_spaces = ("Progress",)

    def __init__(
        self,
        benchmark: str | None = None,
        reward_space: str = "Progress",
        sensor_range: float = 0.25,
        render_mode: str | None = None,
        max_end_points: int = 300,
    ):
        if not 0 < sensor_range <= 2:
            raise ValueError(
                f"sensor_range must be in (0, 2] (a fraction of the world side), got {sensor_range}"
            )
        self.sensor_range = sensor_range
        angles = 2 * np.pi * np.arange(N_SENSORS) / N_SENSORS
        self.directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        low = np.array([0.0] * N_SENSORS + [-1.0, -1.0, 0.0], dtype=np.float32)
        high = np.ones(N_SENSORS + 3, dtype=np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float64)
        self.position = (0.0, 0.0)
        self.path: list[tuple[float, float]] = []
        super().__init__(benchmark, reward_space, render_mode, max_end_points)

    def _nearest_goal(self, x: float, y: float) -> tuple[float, float, float]:
        """(dx, dy, distance) to the nearest goal centre (the first on ties)."""
        best = (0.0, 0.0, math.inf)
        for g in self.nav.goals:
            dx, dy = g.x - x, g.y - y
            d = math.sqrt(dx * dx + dy * dy)
            if d < best[2]:
                best = (dx, dy, d)
        return best

    def _obs(self) -> np.ndarray:
        x, y = self.position
        cap = self.sensor_range * self.nav.size
        readings = ranges(self.nav, x, y, self.directions, cap) / cap
        dx, dy, _ = self._nearest_goal(x, y)
        w = self.nav.size
        tail = [min(max(dx / w, -1.0), 1.0), min(max(dy / w, -1.0), 1.0)]
        tail.append(len(self._actions) / self.nav.horizon)
        return np.concatenate([np.minimum(readings, 1.0), tail]).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        self._reset_map(seed, options)
        self.position = self.nav.start
        self.path = [self.position]
        return self._obs(), {"position": np.array(self.position)}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._need_reset("step()")
        if self._done:
            raise RuntimeError("the episode is over; call reset()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,):
            raise ValueError(f"an action must be one move (dx, dy) of shape (2,); got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"the move {a.tolist()} is not finite")
        bound = self.nav.move_bound
        dx, dy = float(a[0]) * bound, float(a[1]) * bound
        norm = math.sqrt(dx * dx + dy * dy)
        if norm > bound:  # the same clipping as geometry.clip_moves
            scale = bound / norm
            dx, dy = dx * scale, dy * scale
        x, y = self.position
        before = self._nearest_goal(x, y)[2]
        nx, ny, goal = move(self.nav, x, y, dx, dy)
        self.position = (nx, ny)
        self.path.append(self.position)
        after = self._nearest_goal(nx, ny)[2]
        reward = (before - after) / self.nav.size
        if goal >= 0:
            reward += self.nav.goals[goal].payoff
        self._actions.append([float(a[0]), float(a[1])])
        self._total += reward
        terminated = goal >= 0
        truncated = not terminated and len(self._actions) >= self.nav.horizon
        self._done = terminated or truncated
        if self._done:
            self.end_points.append(self.position)
            if self._total > self.best_reward:
                self.best_reward = self._total
                self.best_path = np.array(self.path)
        info = {
            "reached": terminated,
            "goal": goal,
            "step": len(self._actions),
            "position": np.array(self.position),
            "distance": after,
        }
        return self._obs(), reward, terminated, truncated, info

    def _paths_to_draw(self) -> list[np.ndarray]:
        return [np.array(self.path)] if len(self.path) > 1 else []

    def fork(self) -> PathPlanning2DClosedLoopEnv:
        new = super().fork()
        new.path = list(self.path)
        return new
