"""Path planning for a 2D point robot among walls: open-loop plans and closed-loop control."""

from __future__ import annotations

import math
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from optgym.datasets.dataset import Benchmark
from optgym.datasets.planning import MAX_GOALS, NavMap, load_benchmark_map
from optgym.datasets.planning.paths import (
    WayField,
    require_path,
    segments_clear,
    wall_rects,
    way_field,
)
from optgym.env import NamedSpace, OptGymEnv, RewardTolerance, StepResult, as_numbers
from optgym.envs.planning import CLOSED_LOOP_ID, DEFAULT_BENCHMARK, OPEN_LOOP_ID, PROBLEM
from optgym.envs.planning.canvas import draw_map
from optgym.envs.planning.geometry import (
    PLAIN_MAX_NEAR_WALLS,
    check_plans,
    map_geometry,
    move,
    ranges,
    rollout,
    rollout_one,
)

TIME_PENALTY = 0.2  # reward on reaching a goal at step t of T: payoff * (1 - 0.2 t / T)
N_SENSORS = 16
# The closed-loop env scales a move longer than 1 back to the bound; beyond this its length
# would overflow float64 on the largest maps, so it is refused instead.
MAX_MOVE_COMPONENT = 1e6


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


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _NavigationEnv(OptGymEnv[np.ndarray, np.ndarray]):
    """What both planning envs add to :class:`OptGymEnv`: maps by URI, the search picture
    (best path and recent end points) and its copy in forks."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    record = PROBLEM
    default_benchmark = DEFAULT_BENCHMARK
    work_unit = "plan_evaluations"
    reward_tolerance = RewardTolerance("exact")  # plain NumPy, no randomness

    def __init__(
        self,
        benchmark: str | None,
        reward_space: str,
        render_mode: str | None,
        max_end_points: int,
    ):
        if isinstance(max_end_points, bool) or not isinstance(max_end_points, (int, np.integer)):
            raise ValueError(f"max_end_points must be an integer >= 0, got {max_end_points!r}")
        if max_end_points < 0:
            raise ValueError(f"max_end_points must be >= 0, got {max_end_points}")
        super().__init__(benchmark=benchmark, reward_space=reward_space, render_mode=render_mode)
        self.max_end_points = int(max_end_points)
        self._map_sha256 = ""  # the loaded map's file: the base's benchmark_sha256 is per reset
        # the first map is loaded now so that the spaces (the plan length) exist before reset
        self._load_map(self.datasets.benchmark(self._benchmark_uri))

    # ---- maps ---------------------------------------------------------------------------------
    def _load_map(self, benchmark: Benchmark) -> bool:
        """Load ``benchmark``'s map unless it is the one loaded; whether it loaded one. A bad
        file raises ``ValueError`` and keeps the current map."""
        if benchmark.sha256 == self._map_sha256:
            return False
        nav = load_benchmark_map(benchmark)
        found = require_path(nav)  # before any search: a ValueError if no plan reaches a goal
        far = found.too_long(nav.name)
        if far is not None:
            warnings.warn(far, stacklevel=2)
        self.geometry = map_geometry(nav)
        self.nav = nav
        self._map_sha256 = benchmark.sha256
        self._clear_search()
        self._configure()
        return True

    def _configure(self) -> None:
        """Set the spaces for the map just loaded."""

    def _clear_search(self) -> None:
        self.end_points: deque[tuple[float, float]] = deque(maxlen=self.max_end_points)
        self.best_reward = -math.inf
        self.best_path: np.ndarray | None = None

    def _goal_features(self) -> list[float]:
        w = self.nav.size
        top = max(g.payoff for g in self.nav.goals)
        values: list[float] = []
        for g in self.nav.goals:
            values += [g.x / w, g.y / w, min(g.radius / w, 1.0), g.payoff / top]
        return values + [0.0] * (4 * (MAX_GOALS - len(self.nav.goals)))

    def _fork_into(self, new: OptGymEnv) -> None:
        assert isinstance(new, _NavigationEnv)
        new.end_points = deque(self.end_points, maxlen=self.max_end_points)

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


class PathPlanning2DEnv(_NavigationEnv):
    """
    ## Description

    Open-loop path planning for a point robot in a 2D world with rectangular walls, after
    the LaP3 paper (Yang et al., "Learning Space Partitions for Path Planning", NeurIPS
    2021). The whole plan, ``T`` bounded moves, is one action; the single step rolls it out
    and the episode ends. A move that would cross a wall stops just short of it (see
    ``optgym.envs.planning.geometry``); a move that enters a goal disk stops there and the
    goal is reached. Black-box planners evaluate many plans at once with
    ``env.unwrapped.evaluate_batch(plans)`` and commit the best with ``step``.

    Every plan rolled out, by ``evaluate_batch``, ``rollout_batch`` or ``step``, is one
    ``plan_evaluations`` unit of work: charged to the attached budget meter before the plans
    are rolled out (a batch past the budget raises ``BudgetExceeded`` and is not evaluated),
    counted since the last reset in ``env.unwrapped.evaluations``.
    ``env.unwrapped.fork()`` gives an independent copy at the same point of the episode (maps
    are immutable and shared; the search picture is copied); evaluations on it charge the
    same meter.

    ## Action Space

    ``Box(-1, 1, (2T,), float64)``, ``T`` the map's horizon (100 on the bundled maps; the
    shape is set when a map is loaded): moves ``(dx, dy)`` in order, ``action[2k:2k + 2]``
    the ``k``-th, in units of the map's move bound (a move longer than the bound, such as
    ``(1, 1)``, is scaled back to it, keeping its direction). A (T, 2) array is accepted
    too; another length, NaN, inf, a value outside ``[-1, 1]`` (never clipped silently),
    strings or booleans raise ``ValueError``.

    ## Observation Space

    ``StartAndGoals``, the env's one named observation space
    (``env.unwrapped.observation["StartAndGoals"]`` computes it on request),
    ``Box(0, 1, (2 + 4 * 4,), float32)``, constant over the episode (the problem is
    open-loop): the start ``x, y`` and, per goal slot (4), ``x, y, radius`` (all divided by
    the world side) and the goal's payoff divided by the largest payoff on the map; unused
    slots are zero. The map itself is ``env.unwrapped.nav``.

    ## Rewards

    ``ReachTime``: ``payoff * (1 - 0.2 t / T)`` when the plan reaches a goal at step
    ``t`` (the first goal it enters; the payoff is 1 except on ``two-goals``, where the far
    goal pays 1 and the near one 0.5), else minus the final distance to the nearest goal
    centre. Deterministic: a state's reward replays exactly.

    ## Starting State

    The robot at the map's start. ``reset(options={"benchmark": uri})`` picks the map:
    ``benchmark://nav2d-v0/<open|wall|bug-trap|maze|four-rooms|two-goals|maze-hard>``,
    ``generator://nav2d-random-v0/<seed>`` or ``file:///path/map.json`` (or a ``.txt``
    grid; formats in ``optgym.datasets.planning.maps``). Without options the last map is kept
    (or the one set with ``env.unwrapped.benchmark = uri``, checked at once); the first
    reset takes ``benchmark://nav2d-v0/open``. The datasets are ``env.unwrapped.datasets``,
    indexed by name or URI (``datasets["nav2d-v0"].benchmark_uris()``). A reset clears
    the evaluation count and the search picture.

    ## Episode End

    Terminates after the single step. Its ``info`` holds ``reached``, ``step`` (of the goal,
    or -1), ``goal`` (index, or -1), ``final_position``, ``distance`` (to the nearest goal
    centre), ``evaluations`` (since the reset) and ``plan_evaluations`` (1, the step's own).

    ## Arguments

    ``benchmark`` (the first reset's URI), ``reward_space`` (``"ReachTime"``),
    ``render_mode`` (``"rgb_array"``: the map, the best plan's path so far and the end
    points of the last ``max_end_points`` (300) evaluated plans). ``config`` (what states
    record) holds ``reward_space`` only: the others do not change what a state replays to.

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
    observation_spaces = ("StartAndGoals",)

    # A search agent records its best-so-far curve (what the planning report plots).
    agent_extras = frozenset({"trace", "evaluations"})

    def _check_agent_extras(self, extras: dict[str, Any], used: dict[str, Any]) -> None:
        """A search's ``trace`` (``[evaluations, best reward]`` each time the best improved)
        must climb in both, end at the state's reward, and fit in ``evaluations``, which
        fits in the calls the line used."""
        trace, count = extras.get("trace"), extras.get("evaluations")
        if ("trace" in extras) != ("evaluations" in extras):
            raise ValueError("extras trace and evaluations go together")
        if trace is None:
            return
        if not (_is_count(count) and count <= used["calls"]):
            raise ValueError("extras evaluations must be an integer within budget_used calls")
        if not isinstance(trace, list) or not trace:
            raise ValueError("extras trace must be a non-empty list of [evaluations, reward]")
        last_n, last_r = 0, -math.inf
        for point in trace:
            if not (isinstance(point, list) and len(point) == 2 and _is_count(point[0])):
                raise ValueError("each point of extras trace must be [evaluations, reward]")
            n, r = point
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
                raise ValueError("a reward in extras trace is not a finite number")
            if not (last_n < n <= count and r > last_r):
                raise ValueError(
                    "extras trace must climb: more evaluations and a better reward each "
                    "point, within extras evaluations"
                )
            last_n, last_r = n, r
        if last_r != self.episode_reward:
            raise ValueError("extras trace ends at another reward than the state's")

    def __init__(
        self,
        benchmark: str | None = None,
        reward_space: str = "ReachTime",
        render_mode: str | None = None,
        max_end_points: int = 300,
    ):
        self.observation_space = spaces.Box(0.0, 1.0, (2 + 4 * MAX_GOALS,), dtype=np.float32)
        super().__init__(benchmark, reward_space, render_mode, max_end_points)

    @property
    def evaluations(self) -> int:
        """Plans evaluated since the last reset (``evaluate_batch`` and ``step``)."""
        return self.episode_work

    def _configure(self) -> None:
        shape = (2 * self.nav.horizon,)
        self.action_space = spaces.Box(-1.0, 1.0, shape, dtype=np.float64)

    def _clear_search(self) -> None:
        super()._clear_search()
        self.best_plan: np.ndarray | None = None

    def _named_observations(self) -> dict[str, NamedSpace]:
        return {"StartAndGoals": NamedSpace(self.observation_space, self._obs)}

    def _obs(self) -> np.ndarray:
        w = self.nav.size
        values = [self.nav.start[0] / w, self.nav.start[1] / w, *self._goal_features()]
        return np.array(values, dtype=np.float32)

    def _reset(self, benchmark: Benchmark) -> tuple[np.ndarray, dict[str, Any]]:
        if not self._load_map(benchmark):
            self._clear_search()  # a new search: its picture starts empty
        return self._obs(), {"evaluations": 0}

    # ---- evaluation -------------------------------------------------------------------------
    def rollout_batch(self, plans: Any) -> PlanRollout:
        """Roll out plans (N, 2T) or (N, T, 2) and score them; charges N ``plan_evaluations``
        first and feeds the search picture. ``ValueError`` for a wrong shape, NaN, inf or a
        value outside [-1, 1]; ``BudgetExceeded`` (nothing evaluated) past the budget."""
        self._need_reset("evaluating plans")
        arr = check_plans(plans, self.nav.horizon)
        self._spend(len(arr))
        plain = self.geometry.most_near_walls <= PLAIN_MAX_NEAR_WALLS
        if len(arr) == 1 and plain:  # plain Python is faster for one plan, and bit-identical
            path, step, which = rollout_one(self.nav, arr[0])
            positions = np.array([path])
            reached, goal = np.array([step]), np.array([which])
        else:
            positions, reached, goal = rollout(self.nav, arr)
        rewards = plan_rewards(self.nav, positions[:, -1], reached, goal)
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
        charges N ``plan_evaluations``. What black-box planners call."""
        return self.rollout_batch(plans).rewards

    def _check_action(self, action: Any) -> np.ndarray:
        t = self.nav.horizon
        allowed = f"allowed: {t} moves (dx, dy), each number finite and in [-1, 1]"
        arr = as_numbers(action, "a plan", allowed)
        if arr.shape not in ((2 * t,), (t, 2)):
            raise ValueError(
                f"a plan must have shape ({2 * t},) (or ({t}, 2)): {t} moves (dx, dy) for "
                f"horizon {t}; got shape {arr.shape}"
            )
        return check_plans(arr.reshape(1, t, 2), t)

    def _record_action(self, action: np.ndarray, info: dict[str, Any]) -> list[float]:
        return action.reshape(-1).tolist()

    def _step(self, plan: np.ndarray) -> StepResult:
        result = self.rollout_batch(plan)
        final = result.positions[0, -1]
        info = {
            "reached": bool(result.reached_step[0] >= 0),
            "step": int(result.reached_step[0]),
            "goal": int(result.goal[0]),
            "final_position": final.copy(),
            "distance": float(nearest_goal_distance(self.nav, final)),
            "evaluations": self.evaluations,
        }
        return self._obs(), float(result.rewards[0]), True, False, info

    def _fork_into(self, new: OptGymEnv) -> None:
        super()._fork_into(new)
        assert isinstance(new, PathPlanning2DEnv)
        new.best_plan = None if self.best_plan is None else self.best_plan.copy()


class PathPlanning2DClosedLoopEnv(_NavigationEnv):
    """
    ## Description

    Closed-loop control of the point robot of ``optgym/PathPlanning2D-v0``, for RL agents:
    one bounded move a step, observing range sensors and the goal direction. Walls and goals
    work as in the open-loop env (a blocked move stops just short of the wall; entering a
    goal disk reaches it), on the same maps.

    Each step is one evaluation of one move: one ``plan_evaluations`` unit of work (and one
    step), charged to the attached budget meter before the move is simulated, so an RL
    agent's training steps count against its budget like a planner's evaluations.
    ``env.unwrapped.fork()`` gives an independent copy at the same point of the episode (maps
    are immutable and shared; the path and the picture are copied); its moves charge the
    same meter.

    ## Action Space

    ``Box(-1, 1, (2,), float64)``: the move ``(dx, dy)`` in units of the map's move bound,
    its length clipped to the bound. Finite values beyond ``[-1, 1]`` (up to ``1e6``) are
    accepted and scaled back to the bound, keeping their direction (so ``(3, 0)`` is a full
    move along ``+x``, as ``(1, 0)``); NaN, inf, a component beyond ``1e6``, strings,
    booleans or another shape raise ``ValueError``.

    ## Observation Space

    ``RangeSensors`` (the default; ``env.unwrapped.observation["RangeSensors"]`` computes it
    on request), ``Box((19,), float32)``: 16 range readings (distance to the nearest wall or border
    along the directions ``2 pi k / 16``, counter-clockwise from ``+x``, divided by the
    sensor range and capped at 1), the vector from the robot to the nearest goal centre
    divided by the world side (in [-1, 1]), and the elapsed fraction of the horizon.
    ``Position``, also computed on request (``NamedObservation`` makes it the observation),
    ``Box(0, 1, (2,), float32)``: the robot's ``x, y`` divided by the world side.
    ``WaySensors``, on request, ``Box((22,), float32)``: ``RangeSensors`` and then the way
    around the walls: the sensor direction whose clear move leaves the shortest way to the
    nearest goal (``way_direction``), and the way left divided by twice the world side
    (capped at 1), from the map's
    :func:`~optgym.datasets.planning.paths.way_field` (a distance-to-go field over its free
    space, computed once per map).

    ## Rewards

    ``Progress``: the decrease of the distance to the nearest goal centre over the step,
    divided by the world side, plus the goal's payoff (1 on single-goal maps) on reaching
    it. The shaping is potential-based (undiscounted, it leaves the best policy unchanged),
    and an episode's total is the distance gained plus the payoff whatever its length: only
    an agent's discount favours short paths. Near a wall the distance has local optima
    (PPO does not get past the ``wall`` map's wall in 200k steps). ``WayProgress``: the same
    with the way left around the walls (``env.unwrapped.way_left(x, y)``) in place of the
    straight distance, so it has no such local optima. Deterministic: a state's reward
    replays exactly.

    ## Starting State

    The robot at the map's start; maps as in ``optgym/PathPlanning2D-v0``
    (``reset(options={"benchmark": uri})`` or ``env.unwrapped.benchmark = uri`` before a
    reset, default ``benchmark://nav2d-v0/open``; datasets in ``env.unwrapped.datasets``,
    indexed by name or URI).

    ## Episode End

    Terminates when the robot reaches a goal; truncated after the map's horizon ``T`` steps
    (100 on the bundled maps; it is part of the map, so the env counts it itself). Every
    ``info`` holds ``reached``, ``goal`` (index, or -1), ``step`` (moves so far),
    ``position``, ``distance`` (to the nearest goal centre) and ``plan_evaluations`` (1).

    ## Arguments

    ``benchmark``, ``reward_space`` (``"Progress"`` or ``"WayProgress"``), ``sensor_range``
    (fraction of the world side, 0.25), ``render_mode`` (``"rgb_array"``: the map, the
    current path, the best episode's path on this map and the end points of the last
    ``max_end_points`` (300) episodes). ``config`` holds ``reward_space`` and ``sensor_range``.

    ## Version History

    * v0: 16 range sensors, potential-based progress reward; later, ``WaySensors`` and
      ``WayProgress`` added (the defaults unchanged).

    ## Example

    >>> import gymnasium as gym, optgym
    >>> env = gym.make("optgym/PathPlanning2DClosedLoop-v0")
    >>> obs, info = env.reset(options={"benchmark": "benchmark://nav2d-v0/four-rooms"})
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    """

    env_id = CLOSED_LOOP_ID
    reward_spaces = ("Progress", "WayProgress")
    observation_spaces = ("RangeSensors", "Position", "WaySensors")

    # A learned agent records how it was trained, and whether its episode reached a goal.
    agent_extras = frozenset(
        {"train_steps", "train_seconds", "train_episodes", "train_success_rate", "success"}
    )

    def _check_agent_extras(self, extras: dict[str, Any], used: dict[str, Any]) -> None:
        """Training figures must be counts, seconds and a rate (none without a training
        episode); ``success`` must be what the replay shows (the last move reached a goal)."""
        if extras and set(extras) != self.agent_extras:
            raise ValueError(
                f"extras of a learned agent are {', '.join(sorted(self.agent_extras))}"
            )
        for key in ("train_steps", "train_episodes"):
            if key in extras and not _is_count(extras[key]):
                raise ValueError(f"extras {key} must be an integer >= 0")
        for key, top in (("train_seconds", math.inf), ("train_success_rate", 1.0)):
            value = extras.get(key, 0.0)
            if key == "train_success_rate" and value is None and not extras["train_episodes"]:
                continue  # no training episode: no rate
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"extras {key} must be a number")
            if not 0 <= value <= top:
                raise ValueError(f"extras {key} must be in [0, {top:g}]")
        if "success" in extras and extras["success"] is not self._reached:
            raise ValueError("extras success differs from what the replay shows")

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
        self._position_space = spaces.Box(0.0, 1.0, (2,), dtype=np.float32)
        self._way_space = spaces.Box(
            np.concatenate([low, [-1.0, -1.0, 0.0]]).astype(np.float32),
            np.ones(N_SENSORS + 6, dtype=np.float32),
            dtype=np.float32,
        )
        self.position = (0.0, 0.0)
        self._reached = False
        self.path: list[tuple[float, float]] = []
        self._field: tuple[NavMap, WayField] | None = None
        self._field_rects = np.zeros((0, 4))
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

    @property
    def moves(self) -> int:
        """Moves made since the reset."""
        return len(self.path) - 1

    def _named_observations(self) -> dict[str, NamedSpace]:
        return {
            "RangeSensors": NamedSpace(self.observation_space, self._obs),
            "Position": NamedSpace(self._position_space, self._position),
            "WaySensors": NamedSpace(self._way_space, self._way_obs),
        }

    def way_left(self, x: float, y: float) -> float:
        """The length of the way left from ``(x, y)`` to the nearest goal's disk, around the
        walls (the map's :func:`~optgym.datasets.planning.paths.way_field`; inf when no way
        leads there)."""
        return self._way_field().distance(x, y)

    def way_reward(
        self, before: tuple[float, float], after: tuple[float, float], goal: int
    ) -> float:
        """``WayProgress`` of a move from ``before`` to ``after`` that reached goal index
        ``goal`` (-1: none): the way left it gained, divided by the world side (0 where no
        way leads on), plus the goal's payoff."""
        left = 0.0 if goal >= 0 else self.way_left(*after)
        gained = self.way_left(*before) - left
        reward = gained / self.nav.size if math.isfinite(gained) else 0.0
        return reward + (self.nav.goals[goal].payoff if goal >= 0 else 0.0)

    def way_direction(self, x: float, y: float) -> tuple[float, float]:
        """The sensor direction whose clear move (the move bound, a half or a quarter of
        it, with nothing in the way) leaves the shortest way to the nearest goal from
        ``(x, y)``; (0, 0) when none shortens it."""
        field, rects = self._way_field(), self._field_rects
        bound = self.nav.move_bound
        steps = (
            np.repeat(self.directions[None], 3, axis=0)
            * np.array([1.0, 0.5, 0.25])[:, None, None]
            * bound
        )
        ends = (np.array([x, y]) + steps).reshape(-1, 2)
        start = np.broadcast_to(np.array([x, y]), ends.shape)
        left = np.where(segments_clear(rects, start, ends), field.distances(ends), np.inf)
        best = int(np.argmin(left))
        if not left[best] < field.distance(x, y):
            return (0.0, 0.0)
        k = best % N_SENSORS
        return (float(self.directions[k, 0]), float(self.directions[k, 1]))

    def _way_field(self) -> WayField:
        """The loaded map's field, made on first use (a map's field is made once)."""
        if self._field is None or self._field[0] is not self.nav:
            self._field = (self.nav, way_field(self.nav))
            self._field_rects = wall_rects(self.nav)
        return self._field[1]

    def _way_obs(self) -> np.ndarray:
        x, y = self.position
        dx, dy = self.way_direction(x, y)
        left = min(self.way_left(x, y) / (2 * self.nav.size), 1.0)
        return np.concatenate([self._obs(), [dx, dy, left]]).astype(np.float32)

    def _position(self) -> np.ndarray:
        return (np.array(self.position) / self.nav.size).astype(np.float32)

    def _obs(self) -> np.ndarray:
        x, y = self.position
        cap = self.sensor_range * self.nav.size
        readings = ranges(self.nav, x, y, self.directions, cap) / cap
        dx, dy, _ = self._nearest_goal(x, y)
        w = self.nav.size
        tail = [min(max(dx / w, -1.0), 1.0), min(max(dy / w, -1.0), 1.0)]
        tail.append(self.moves / self.nav.horizon)
        return np.concatenate([np.minimum(readings, 1.0), tail]).astype(np.float32)

    def _reset(self, benchmark: Benchmark) -> tuple[np.ndarray, dict[str, Any]]:
        self._load_map(benchmark)  # the picture keeps the best episode of the same map
        self.position = self.nav.start
        self.path = [self.position]
        self._reached = False
        return self._obs(), {"position": np.array(self.position)}

    def _check_action(self, action: Any) -> np.ndarray:
        allowed = (
            f"allowed: one move (dx, dy) of finite numbers in [-{MAX_MOVE_COMPONENT:g}, "
            f"{MAX_MOVE_COMPONENT:g}] (a move longer than 1 is scaled back to the move bound)"
        )
        a = as_numbers(action, "an action", allowed)
        if a.shape != (2,):
            raise ValueError(f"an action must be one move (dx, dy) of shape (2,); got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"the move {a.tolist()} is not finite; {allowed}")
        if np.abs(a).max() > MAX_MOVE_COMPONENT:
            raise ValueError(f"the move {a.tolist()} is too large; {allowed}")
        return a.copy()

    def _record_action(self, action: np.ndarray, info: dict[str, Any]) -> list[float]:
        return [float(action[0]), float(action[1])]

    def _step(self, a: np.ndarray) -> StepResult:
        self._spend(1)  # one move simulated: one evaluation
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
        if self.reward_space_name == "WayProgress":
            reward = self.way_reward((x, y), (nx, ny), goal)
        elif goal >= 0:
            reward += self.nav.goals[goal].payoff
        terminated = goal >= 0
        self._reached = terminated
        truncated = not terminated and self.moves >= self.nav.horizon
        if terminated or truncated:
            self.end_points.append(self.position)
            total = self.episode_reward + reward  # the base adds this step's reward after
            if total > self.best_reward:
                self.best_reward = total
                self.best_path = np.array(self.path)
        info = {
            "reached": terminated,
            "goal": goal,
            "step": self.moves,
            "position": np.array(self.position),
            "distance": after,
        }
        return self._obs(), reward, terminated, truncated, info

    def _paths_to_draw(self) -> list[np.ndarray]:
        return [np.array(self.path)] if len(self.path) > 1 else []

    def _fork_into(self, new: OptGymEnv) -> None:
        super()._fork_into(new)
        assert isinstance(new, PathPlanning2DClosedLoopEnv)
        new.path = list(self.path)
