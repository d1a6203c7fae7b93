"""Path planning: maps and their formats, exact wall contact, batched rollouts, both envs."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest

import optgym  # noqa: F401  registers the envs
from optgym.budget import Budget, BudgetExceeded
from optgym.datasets import all_datasets
from optgym.datasets.planning import (
    FIXED_MAPS,
    Goal,
    Nav2dDataset,
    Nav2dRandomDataset,
    NavMap,
    fixed_map,
    load_map,
    parse_grid,
    random_map,
)
from optgym.datasets.planning.generators import GRID_STEP, free_cells, grid_distance
from optgym.envs.planning.geometry import (
    EPS,
    NO_HIT,
    first_contact,
    first_contact_one,
    rollout,
    rollout_one,
)
from optgym.state import EpisodeState
from optgym.wrappers import BudgetWrapper

OPEN_ID, CLOSED_ID = "optgym/PathPlanning2D-v0", "optgym/PathPlanning2DClosedLoop-v0"


def uri(name: str) -> str:
    return f"benchmark://nav2d-v0/{name}"


def plan_through(nav: NavMap, waypoints: list[tuple[float, float]]) -> np.ndarray:
    """A plan (T, 2) in action units that walks from the start through ``waypoints`` with
    full-length moves, then stands still."""
    moves, here = [], np.array(nav.start)
    for w in waypoints:
        delta = np.array(w) - here
        dist = float(np.hypot(*delta))
        full, rest = divmod(dist, nav.move_bound)
        unit = delta / dist
        moves += [unit] * int(full) + ([unit * rest / nav.move_bound] if rest > 1e-12 else [])
        here = np.array(w, dtype=float)
    assert len(moves) <= nav.horizon
    plan = np.zeros((nav.horizon, 2))
    plan[: len(moves)] = moves
    return plan


def straight_plan(nav: NavMap, goal: int = 0) -> np.ndarray:
    g = nav.goals[goal]
    d = np.array([g.x - nav.start[0], g.y - nav.start[1]])
    return np.tile(d / np.hypot(*d), (nav.horizon, 1))


def inside_any_wall(nav: NavMap, xy: np.ndarray) -> np.ndarray:
    x, y = xy[..., 0], xy[..., 1]
    inside = (x <= 0) | (x >= nav.size) | (y <= 0) | (y >= nav.size)
    for x0, y0, x1, y1 in nav.walls:
        inside |= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    return inside


# ---------------------------------------------------------------------------- geometry


def test_move_into_a_wall_stops_just_short_of_it():
    nav = fixed_map("wall")  # wall x in [4.9, 5.1], start (1.5, 3)
    plan = np.zeros((nav.horizon, 2))
    plan[:, 0] = 1.0  # straight right, 0.5 a step
    positions, reached, goal = rollout(nav, plan[None])
    x = positions[0, :, 0]
    assert reached[0] == -1 and goal[0] == -1
    assert x[-1] < 4.9 and x[-1] == pytest.approx(4.9 - EPS, abs=1e-9)
    assert np.all(positions[0, :, 1] == 3.0)
    # it arrives at step 7 (1.5 + 6 * 0.5 = 4.5, then 4.9 - EPS) and stays
    assert np.all(x[7:] == x[-1]) and x[6] == 4.5
    # diagonal into the corner of a bug-trap arm, and a move along a wall's edge line
    trap = fixed_map("bug-trap")
    for plan in (straight_plan(trap), np.tile([1.0, 0.0], (trap.horizon, 1))):
        positions = rollout(trap, plan[None])[0][0]
        assert not inside_any_wall(trap, positions).any()
        assert positions[-1, 0] == pytest.approx(6.8 - EPS, abs=1e-9)


def test_no_move_ever_passes_through_a_wall():
    rng = np.random.default_rng(1)
    for nav in [fixed_map(n) for n in FIXED_MAPS] + [random_map(s) for s in range(3)]:
        plans = rng.uniform(-1.0, 1.0, (200, nav.horizon, 2))  # diagonals: norm-clipped
        positions = rollout(nav, plans)[0]
        a, b = positions[:, :-1], positions[:, 1:]
        step = np.hypot(*(b - a).transpose(2, 0, 1))
        assert step.max() <= nav.move_bound * (1 + 1e-12)
        # sample every segment densely: no point of any move lies in a wall
        for f in np.linspace(0.0, 1.0, 41):
            assert not inside_any_wall(nav, a + (b - a) * f).any()


def test_first_contact_axis_parallel_and_grazing_moves_match_the_scalar_path():
    walls = [(2.0, 2.0, 3.0, 3.0), (5.0, 0.0, 5.0, 4.0)]  # a square and a segment
    arr = tuple(np.array(walls)[:, k : k + 1] for k in range(4))
    cases = [
        (1.0, 2.5, 1.5, 0.0),  # straight into the square's left face
        (2.0 - 1e-3, 1.0, 0.0, 1.5),  # upwards beside it: misses
        (2.0, 1.0, 0.0, 1.5),  # upwards on its edge line: closed walls touch
        (2.5, 4.0, 0.0, -2.0),  # downwards onto the top face
        (4.0, 1.0, 2.0, 0.0),  # into the zero-width wall
        (4.0, 5.0, 2.0, 0.0),  # above the segment: misses
        (1.0, 1.0, 1.0, 1.0),  # diagonally at the square's corner
        (1.0, 1.0, 0.0, 0.0),  # no move at all
        (6.0, 2.0, -0.5, 0.0),  # short of the segment
    ]
    px, py, dx, dy = (np.array(c, dtype=float) for c in zip(*cases, strict=True))
    batch = first_contact(px, py, dx, dy, arr)
    scalar = [first_contact_one(*c, walls) for c in cases]
    assert batch.tolist() == scalar
    assert scalar[0] == scalar[2] == pytest.approx(2 / 3) and scalar[1] == NO_HIT
    assert scalar[3] == 0.5 and scalar[4] == 0.5 and scalar[5] == NO_HIT
    assert scalar[6] == 1.0 and scalar[7] == NO_HIT and scalar[8] == NO_HIT


def test_batch_rollout_equals_one_plan_at_a_time():
    rng = np.random.default_rng(2)
    for nav in [fixed_map(n) for n in FIXED_MAPS] + [random_map(7)]:
        plans = rng.uniform(-1, 1, (60, nav.horizon, 2))
        plans[:20] = np.clip(plans[:20] + straight_plan(nav, len(nav.goals) - 1) * 0.8, -1, 1)
        plans[20:25] = np.round(plans[20:25])  # axis-parallel and zero moves
        plans[25] = plan_through(nav, [(nav.goals[0].x, nav.goals[0].y)])
        positions, reached, goal = rollout(nav, plans)
        for i in range(len(plans)):
            path, step, which = rollout_one(nav, plans[i])
            assert np.array_equal(np.array(path), positions[i]), (nav.name, i)
            assert (step, which) == (reached[i], goal[i])
    assert (reached >= 0).any()


# ---------------------------------------------------------------------------- rewards


def test_reward_formula_on_the_open_map():
    env = gym.make(OPEN_ID)
    env.reset(options={"benchmark": uri("open")})
    nav = env.unwrapped.nav
    obs, reward, terminated, truncated, info = env.step(straight_plan(nav).reshape(-1))
    # 8 sqrt(2) - 0.5 to the goal's edge at 0.5 a step: reached on step 22
    assert info["reached"] and info["step"] == 22 and info["goal"] == 0
    assert reward == pytest.approx(1 - 0.2 * 22 / 100)
    assert terminated and not truncated and obs.shape == env.observation_space.shape
    assert math.hypot(info["final_position"][0] - 9, info["final_position"][1] - 9) == (
        pytest.approx(0.5)
    )
    env.reset()
    reward = env.step(np.zeros(200))[1]
    assert reward == pytest.approx(-8 * math.sqrt(2))
    rewards = env.unwrapped.evaluate_batch(np.stack([np.zeros(200), straight_plan(nav).ravel()]))
    assert rewards.tolist() == [reward, pytest.approx(0.956)]
    assert env.unwrapped.evaluations == 3


def test_greedy_straight_line_fails_on_the_trap_maps():
    for name in ("wall", "bug-trap", "maze", "four-rooms", "maze-hard"):
        nav = fixed_map(name)
        assert rollout(nav, straight_plan(nav)[None])[1][0] == -1, name


def test_two_goals_pays_the_farther_more():
    env = gym.make(OPEN_ID)
    env.reset(options={"benchmark": uri("two-goals")})
    nav = env.unwrapped.nav
    near = plan_through(nav, [(1.5, 2.0)])
    far = plan_through(nav, [(1.7, 4.8), (1.7, 5.5), (5.0, 8.5)])
    result = env.unwrapped.rollout_batch(np.stack([near, far]))
    assert result.goal.tolist() == [0, 1]
    assert result.rewards[1] > result.rewards[0] > 0
    assert result.rewards[0] == pytest.approx(0.5 * (1 - 0.2 * result.reached_step[0] / 100))


# ---------------------------------------------------------------------------- bad input


def test_bad_plans_raise_clear_errors():
    env = gym.make(OPEN_ID)
    env.reset()
    bad = np.zeros(200)
    bad[17] = np.nan
    with pytest.raises(ValueError, match="non-finite move"):
        env.step(bad)
    bad[17] = np.inf
    with pytest.raises(ValueError, match="non-finite move"):
        env.unwrapped.evaluate_batch(bad[None])
    with pytest.raises(ValueError, match=r"shape \(200,\)"):
        env.step(np.zeros(198))
    with pytest.raises(ValueError, match=r"plans must have shape"):
        env.unwrapped.evaluate_batch(np.zeros((3, 150)))
    bad[17] = 1.5
    with pytest.raises(ValueError, match=r"outside the action space \[-1, 1\]"):
        env.step(bad)
    env.step(np.zeros(200))
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step(np.zeros(200))
    closed = gym.make(CLOSED_ID)
    closed.reset()
    with pytest.raises(ValueError, match="not finite"):
        closed.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        closed.step(np.zeros(3))


def map_dict(**changes) -> dict:
    data = {
        "size": 10,
        "start": [1, 1],
        "goals": [{"position": [9, 9]}],
        "walls": [[4, 4, 6, 6]],
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start": [5, 5]}, r"start \[5.0, 5.0\] is inside wall 0"),
        ({"goals": []}, "no goal"),
        ({"goals": None}, "'goals' must be a list"),
        ({"goals": [{"position": [4.5, 5]}]}, r"goal 0 \[4.5, 5.0\] is inside wall 0"),
        ({"start": [11, 1]}, "outside the world"),
        ({"walls": [[6, 4, 4, 6]]}, "x0 <= x1"),
        ({"goals": [{"position": [9, "x"]}]}, "goal 0 position y must be a number"),
        ({"move_bound": -1}, "move_bound must be positive"),
        ({"horizon": 2.5}, "horizon must be an integer"),
        ({"colour": "red"}, "unknown map fields"),
    ],
)
def test_bad_json_maps_name_the_problem(changes, message):
    with pytest.raises(ValueError, match=message):
        NavMap.from_dict(map_dict(**changes))


def test_bad_map_files(tmp_path):
    missing = map_dict()
    del missing["goals"]
    (tmp_path / "nogoal.json").write_text(json.dumps(missing))
    with pytest.raises(ValueError, match="no goal"):
        load_map(tmp_path / "nogoal.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_map(tmp_path / "broken.json")
    env = gym.make(OPEN_ID)
    with pytest.raises(ValueError, match="not found"):
        env.reset(options={"benchmark": f"file://{tmp_path}/absent.json"})


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("S..\n..\n..G\n", "ragged: row 2 has 2 cells, row 1 has 3"),
        ("S.x\n...\n..G\n", "unknown character at row 1, column 3"),
        ("...\n...\n..G\n", "no start 'S'"),
        ("S..\n.S.\n..G\n", "more than one start 'S'"),
        ("S..\n...\n...\n", "no goal 'G'"),
        ("\n\n", "empty"),
    ],
)
def test_malformed_grids(grid, message):
    with pytest.raises(ValueError, match=message):
        parse_grid(grid)


# ---------------------------------------------------------------------------- map files


def test_json_map_file_round_trip_and_reset(tmp_path):
    nav = NavMap.from_dict(map_dict(move_bound=1.0, horizon=30), "box")
    path = tmp_path / "box.json"
    path.write_text(nav.to_json())
    assert load_map(path) == nav and nav.goals[0] == Goal(9.0, 9.0, 0.5, 1.0)
    env = gym.make(OPEN_ID)
    obs, _ = env.reset(options={"benchmark": f"file://{path}"})
    assert env.action_space.shape == (60,) and env.unwrapped.nav == nav
    assert obs[:6].tolist() == pytest.approx([0.1, 0.1, 0.9, 0.9, 0.05, 1.0])
    plan = plan_through(nav, [(1, 8), (8.8, 8.8)])
    reward, info = env.step(plan)[1::3]
    assert info["reached"] and reward == pytest.approx(1 - 0.2 * info["step"] / 30)


def test_text_grid_map(tmp_path):
    path = tmp_path / "corridor.txt"
    path.write_text("#####\n#S..#\n###.#\n#G..#\n")  # 4 rows x 5 columns
    nav = load_map(path)
    assert nav.name == "corridor" and nav.size == 5.0
    assert nav.start == (1.5, 2.5) and nav.goals == (Goal(1.5, 0.5),)
    assert inside_any_wall(nav, np.array([[0.5, 0.5], [2.5, 1.5], [2.5, 4.5]])).all()
    assert not inside_any_wall(nav, np.array([[3.5, 1.5], [2.5, 2.5]])).any()
    env = gym.make(OPEN_ID)
    env.reset(options={"benchmark": f"file://{path}"})
    info = env.step(plan_through(nav, [(3.5, 2.5), (3.5, 0.5), (1.9, 0.5)]))[4]
    assert info["reached"]
    assert not env.unwrapped.evaluate_batch(straight_plan(nav)[None])[0] > 0  # a wall between


# ---------------------------------------------------------------------------- datasets


def test_dataset_uris_and_splits():
    fixed, rand = Nav2dDataset(), Nav2dRandomDataset()
    assert fixed.uri in all_datasets() and rand.uri in all_datasets()
    assert list(fixed.benchmark_uris("test")) == [uri(n) for n in FIXED_MAPS]
    assert fixed.take("train", 3) == [] and fixed.take("validation", 3) == []
    assert rand.take("validation", 2) == [
        "generator://nav2d-random-v0/1000",
        "generator://nav2d-random-v0/1001",
    ]
    for d in (fixed, rand):
        assert d.license == "MIT (OptGym); generated" and d.provenance
    for name in FIXED_MAPS:
        nav = load_map(fixed.benchmark(uri(name)).path)
        assert nav == fixed_map(name)
    with pytest.raises(ValueError, match="unknown map 'lava' in nav2d-v0; allowed: open"):
        fixed.benchmark(uri("lava"))
    env = gym.make(OPEN_ID)
    with pytest.raises(ValueError, match="unknown map"):
        env.reset(options={"benchmark": uri("lava")})
    assert env.unwrapped.benchmark == "benchmark://nav2d-v0/open"  # still usable


def test_random_maps_are_reproducible_free_and_connected():
    rand = Nav2dRandomDataset()
    a = rand.benchmark("generator://nav2d-random-v0/5")
    assert a.read_bytes() == random_map(5).to_json().encode()
    assert random_map(5) == random_map(5) and random_map(5) != random_map(6)
    for seed in range(15):
        nav = random_map(seed)
        g = nav.goals[0]
        assert math.dist(nav.start, g.position) >= 5.0
        free = free_cells(nav.walls, nav.size, GRID_STEP, 0.0)
        cells = [(int(p[0] // GRID_STEP), int(p[1] // GRID_STEP)) for p in (nav.start, g.position)]
        assert grid_distance(free, *cells) is not None


# ---------------------------------------------------------------------------- states, forks


def test_state_replays_and_validates():
    env = gym.make(OPEN_ID)
    env.reset(seed=3, options={"benchmark": uri("bug-trap")})
    plans = np.random.default_rng(3).uniform(-1, 1, (50, 200))
    best = plans[env.unwrapped.evaluate_batch(plans).argmax()]
    reward = env.step(best)[1]
    state = EpisodeState.from_json(env.unwrapped.state.to_json())
    assert state.reward == reward and state.actions == [best.tolist()]
    fresh = gym.make(OPEN_ID).unwrapped
    result = fresh.validate(state)
    assert result.ok and result.reward == reward
    state.reward += 1e-12
    assert not fresh.validate(state).ok
    state.versions["benchmark_sha256"] = "0" * 64
    assert "has changed" in fresh.validate(state).error

    closed = gym.make(CLOSED_ID)
    closed.reset(options={"benchmark": uri("four-rooms")})
    for a in np.random.default_rng(4).uniform(-1, 1, (30, 2)):
        closed.step(a)
    state = EpisodeState.from_json(closed.unwrapped.state.to_json())
    assert len(state.actions) == 30
    assert gym.make(CLOSED_ID).unwrapped.validate(state).ok


def test_fork_is_independent():
    env = gym.make(OPEN_ID).unwrapped
    env.reset(options={"benchmark": uri("open")})
    twin = env.fork()
    env.step(np.zeros(200))
    assert twin.state.actions == [] and twin.evaluations == 0
    twin.step(straight_plan(twin.nav).ravel())
    assert twin.state.reward > 0 > env.state.reward

    closed = gym.make(CLOSED_ID).unwrapped
    closed.reset(options={"benchmark": uri("open")})
    for _ in range(5):
        closed.step(np.array([1.0, 0.0]))
    twin = closed.fork()
    twin.step(np.array([0.0, 1.0]))
    closed.step(np.array([1.0, 0.0]))
    assert closed.position == pytest.approx((1.0 + 3.0, 1.0))
    assert twin.position == pytest.approx((1.0 + 2.5, 1.5))
    assert len(twin.path) == len(closed.path) == 7


# ---------------------------------------------------------------------------- render, closed loop


def test_render_returns_an_rgb_array():
    env = gym.make(OPEN_ID, render_mode="rgb_array")
    env.reset(options={"benchmark": uri("maze")})
    env.unwrapped.evaluate_batch(np.random.default_rng(0).uniform(-1, 1, (400, 200)))
    image = env.render()
    assert image.shape == (400, 400, 3) and image.dtype == np.uint8
    colors = {tuple(c) for c in image.reshape(-1, 3)}
    assert {(220, 30, 30), (245, 150, 40), (60, 60, 60)} <= colors  # best path, ends, walls
    assert len(env.unwrapped.end_points) == 300
    closed = gym.make(CLOSED_ID, render_mode="rgb_array")
    closed.reset()
    closed.step(np.array([1.0, 1.0]))
    assert closed.render().shape == (400, 400, 3)
    assert gym.make(OPEN_ID).unwrapped.render() is None


def test_closed_loop_controller_reaches_the_goal_on_the_open_map():
    env = gym.make(CLOSED_ID)
    obs, _ = env.reset(options={"benchmark": uri("open")})
    assert env.observation_space.contains(obs) and obs.shape == (19,)
    assert obs[:16].max() == 1.0 and obs[:16].min() == pytest.approx(1 / 2.5)  # 1 to a border
    total, steps = 0.0, 0
    terminated = truncated = False
    while not (terminated or truncated):
        goal_vector = obs[16:18].astype(float)
        obs, reward, terminated, truncated, info = env.step(goal_vector / np.hypot(*goal_vector))
        total += reward
        steps += 1
    assert terminated and not truncated and info["reached"] and steps == 22
    assert total == pytest.approx(1 + (8 * math.sqrt(2) - 0.5) / 10)
    assert obs[18] == pytest.approx(22 / 100)
    # the same moves as an open-loop plan land on the same point
    plan = np.array(env.unwrapped.state.actions)
    padded = np.zeros((100, 2))
    padded[: len(plan)] = plan
    positions = rollout(env.unwrapped.nav, padded[None])[0][0]
    assert positions[-1].tolist() == list(env.unwrapped.position)


def test_closed_loop_truncates_at_the_horizon_and_stops_at_walls():
    env = gym.make(CLOSED_ID)
    obs, _ = env.reset(options={"benchmark": uri("wall")})
    for k in range(100):
        obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0]))
        assert not terminated and truncated == (k == 99)
    assert info["position"][0] == pytest.approx(4.9 - EPS, abs=1e-9)
    assert obs[0] == pytest.approx(EPS / 2.5, abs=1e-6)  # the +x sensor touches the wall


# ---------------------------------------------------------------------------- work, budget, config


def test_plan_evaluations_are_charged_before_the_work():
    env = gym.make(OPEN_ID)
    base = env.unwrapped
    wrapped = BudgetWrapper(env, Budget(calls=150))
    info = wrapped.reset(options={"benchmark": uri("open")})[1]
    assert info["plan_evaluations"] == 0 and info["evaluations"] == 0
    plans = np.zeros((100, 200))
    base.evaluate_batch(plans)
    assert wrapped.meter.calls == base.evaluations == 100 and wrapped.meter.steps == 0
    twin = base.fork()  # a fork charges the same meter and counts its own evaluations
    twin.rollout_batch(plans[:40])
    assert wrapped.meter.calls == 140 and twin.evaluations == 140 and base.evaluations == 100
    ends = len(base.end_points)
    with pytest.raises(BudgetExceeded, match="20 more plan_evaluations"):
        base.evaluate_batch(plans[:20])
    assert wrapped.meter.calls == 140 and base.evaluations == 100  # nothing was evaluated
    assert len(base.end_points) == ends
    info = wrapped.step(straight_plan(base.nav).ravel())[4]
    assert info["plan_evaluations"] == 1 and info["evaluations"] == 101
    assert wrapped.meter.used()["calls"] == 141 and wrapped.meter.steps == 1
    wrapped.detach()

    closed = gym.make(CLOSED_ID)
    meter_env = BudgetWrapper(closed, Budget(steps=3))
    meter_env.reset()
    for _ in range(3):  # each move simulated is one evaluation
        assert meter_env.step(np.array([1.0, 0.0]))[4]["plan_evaluations"] == 1
    assert meter_env.meter.calls == meter_env.meter.steps == 3
    with pytest.raises(BudgetExceeded):
        closed.unwrapped.step(np.array([1.0, 0.0]))
    assert len(closed.unwrapped.path) == 4  # the refused move was not made
    meter_env.detach()


def test_config_and_rebuilt_validation():
    env = gym.make(OPEN_ID, max_end_points=10).unwrapped
    assert env.config == {"reward_space": "ReachTime", "max_end_points": 10}
    assert env.reward_tolerance.kind == "exact" and env.work_unit == "plan_evaluations"
    closed = gym.make(CLOSED_ID, sensor_range=0.5).unwrapped
    assert closed.config == {"reward_space": "Progress", "sensor_range": 0.5, "max_end_points": 300}
    closed.reset(options={"benchmark": uri("maze")})
    for a in np.random.default_rng(5).uniform(-1, 1, (20, 2)):
        closed.step(a)
    state = closed.state
    assert state.config == closed.config
    # an env with another sensor range rebuilds one with the state's config to replay it
    other = gym.make(CLOSED_ID).unwrapped
    result = other.validate(state)
    assert result.ok and result.work == 20 and other.sensor_range == 0.25
    with pytest.raises(ValueError, match="another config"):
        other.apply(state)
    with pytest.raises(ValueError, match="max_end_points must be >= 0"):
        gym.make(OPEN_ID, max_end_points=-1)


def test_a_map_is_loaded_again_only_when_its_file_changes(tmp_path):
    env = gym.make(CLOSED_ID).unwrapped
    env.reset(options={"benchmark": uri("open")})
    nav = env.nav
    for _ in range(100):
        env.step(np.array([-1.0, 0.0]))  # into the left border until the horizon
    assert len(env.end_points) == 1 and env.best_path is not None
    copy = tmp_path / "open.json"
    copy.write_bytes(env.datasets.benchmark(uri("open")).read_bytes())
    env.reset(options={"benchmark": f"file://{copy}"})  # the same bytes: the same map
    assert env.nav is nav and len(env.end_points) == 1
    assert env.benchmark == f"file://{copy}"
    assert env.benchmark_sha256 == env.datasets.benchmark(uri("open")).sha256
    env.reset(options={"benchmark": uri("wall")})  # another map: a new picture
    assert env.nav.name == "wall" and len(env.end_points) == 0 and env.best_path is None
