"""Path planning under hostile input: maps past the limits (size, nesting, walls, grid side,
file size), malformed fields each named without echoing the file, the largest map allowed
within 2 s, bad actions for both envs, and a bad map that never breaks the env."""

from __future__ import annotations

import json
import time
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import optgym  # noqa: F401  registers the envs
from optgym.datasets.files import json_depth
from optgym.datasets.planning import Goal, NavMap, load_map, parse_grid
from optgym.datasets.planning.maps import (
    MAX_FILE_BYTES,
    MAX_HORIZON,
    MAX_SIZE,
    MAX_WALLS,
)
from optgym.envs.planning.geometry import MAX_CELL_ENTRIES, map_geometry, rollout, rollout_one

OPEN_ID, CLOSED_ID = "optgym/PathPlanning2D-v0", "optgym/PathPlanning2DClosedLoop-v0"
GOOD = "benchmark://nav2d-v0/wall"
SECRET = "S3CRET-PASSWORD-hash"  # a file's contents: no error message may show it


def map_dict(**changes) -> dict:
    data = {"size": 10, "start": [1, 1], "goals": [{"position": [9, 9]}], "walls": [[4, 4, 6, 6]]}
    data.update(changes)
    return data


def write_json(tmp_path, data, name: str = "map") -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return f"file://{path}"


def assert_clean(message: str) -> None:
    assert SECRET not in message
    assert "could not convert" not in message and "Traceback" not in message


# ---------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": 1e308}, r"map size \(the world side\) must be in \[1, 100000\], got 1e\+308"),
        ({"size": 0.5}, r"map size .* must be in \[1, 100000\]"),
        ({"size": SECRET}, r"map size must be a number, got str"),
        ({"size": True}, r"map size must be a number, got bool"),
        ({"size": 10**400}, r"map size must be a finite number; it is too large"),
        ({"start": [5, 5]}, r"start \[5.0, 5.0\] is inside wall 0"),
        ({"start": [0, 5]}, r"start \[0.0, 5.0\] is outside the world \(0, 10\)\^2"),
        ({"start": [1, 2, 3]}, r"start must be a pair \[x, y\], got 3 items"),
        ({"start": SECRET}, r"start must be a pair \[x, y\], got str"),
        ({"goals": [{"position": [5, 5]}]}, r"goal 0 \[5.0, 5.0\] is inside wall 0"),
        ({"goals": [{"position": [9, 11]}]}, r"goal 0 \[9.0, 11.0\] is outside the world"),
        ({"goals": [{"position": [9, 9]}] * 5}, r"5 goals; at most 4 allowed"),
        ({"goals": SECRET}, r"'goals' must be a list, got str"),
        ({"goals": [SECRET]}, r"goal 0 must be an object with a 'position'"),
        ({"goals": [{"position": [9, 9], "radius": 0}]}, r"goal 0 radius must be in \(0, size\]"),
        ({"goals": [{"position": [9, 9], "radius": 11}]}, r"goal 0 radius must be in"),
        (
            {"goals": [{"position": [9, 9], "payoff": 1e7}]},
            r"goal 0 payoff must be in \(0, 1e\+06\]",
        ),
        ({"goals": [{"position": [9, 9], SECRET: 1}]}, r"goal 0 has unknown fields \(1 with odd"),
        ({"walls": SECRET}, r"'walls' must be a list, got str"),
        ({"walls": [[1, 2, 3]]}, r"wall 0 must be \[x0, y0, x1, y1\] \(four numbers\)"),
        ({"walls": [[4, 4, "x", 6]]}, r"wall 0 coordinate must be a number, got str"),
        ({"walls": [[4, 4, 1e300, 6]]}, r"wall 0 reaches too far outside the world; .*\[-10, 20\]"),
        ({"walls": [[2, 2, 3, 3]] * (MAX_WALLS + 1)}, r"1001 walls .*; at most 1000 allowed"),
        ({"move_bound": 0}, r"move_bound must be positive and at most the world side: \(0, 10\]"),
        ({"move_bound": 11}, r"move_bound must be positive and at most the world side"),
        ({"horizon": 0}, r"horizon must be an integer in \[1, 1000\], got 0"),
        ({"horizon": MAX_HORIZON + 1}, r"horizon must be an integer in \[1, 1000\], got 1001"),
        ({"horizon": 2.5}, r"horizon must be an integer in \[1, 1000\], got float"),
        ({"name": SECRET * 20}, r"map name must be a string of at most 200 characters"),
        ({"name": 7}, r"map 'name' must be a string, got int"),
        ({"format": SECRET}, r"unknown map 'format'; expected 'optgym-nav2d-v0'"),
        ({"colour": 1, "my secret": 2}, r"unknown map fields \('colour', 1 with odd names\)"),
    ],
)
def test_each_malformed_field_is_named_without_echoing_it(changes, message):
    with pytest.raises(ValueError, match=message) as err:
        NavMap.from_json(json.dumps(map_dict(**changes)))
    assert_clean(str(err.value))


def test_a_huge_map_never_gives_infinite_rewards(tmp_path):
    env = gym.make(OPEN_ID)
    env.reset(options={"benchmark": GOOD})  # see test_a_failed_first_reset_through_gym_make
    with pytest.raises(ValueError, match=r"map size .* must be in \[1, 100000\]"):
        env.reset(options={"benchmark": write_json(tmp_path, map_dict(size=1e308))})
    corner = map_dict(size=MAX_SIZE, start=[1, 1], goals=[{"position": [MAX_SIZE, MAX_SIZE]}])
    env.reset(options={"benchmark": write_json(tmp_path, corner, "corner")})
    reward = env.step(np.zeros(env.action_space.shape))[1]
    assert np.isfinite(reward) and reward == pytest.approx(-np.hypot(MAX_SIZE - 1, MAX_SIZE - 1))


def test_deep_json_nesting_is_refused_before_parsing(tmp_path):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"nests JSON lists and objects 100000 deep; at most 8"):
        load_map(write_json(tmp_path, "[" * 100_000, "deep")[len("file://") :])
    with pytest.raises(ValueError, match=r"nests JSON lists and objects 100001 deep"):
        NavMap.from_json('{"size": ' + "[" * 100_000 + "}")
    assert time.perf_counter() - start < 1.0
    # brackets inside strings (escaped quotes too) do not count
    assert json_depth(b'{"name": "[[[[[[[[[[\\"[[[[[[", "walls": [[1, 2, 3, 4]]}') == 3
    named = map_dict(name='[[[[[[[[[[[[ \\" {{{{{{{{{')
    assert NavMap.from_json(json.dumps(named)).name == named["name"]


def test_bad_json_and_text_give_clear_errors(tmp_path):
    cases = {
        "broken.json": f'{{"size": 10, "start": [1, 1], {SECRET}'.encode(),
        "binary.json": b"\xff\xfe\x00" + SECRET.encode(),
        "digits.json": b'{"size": ' + b"9" * 5000 + b"}",
        "shadow.json": f"root:{SECRET}:19000:0:99999:7:::\n".encode(),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=r"is not valid JSON") as err:
            load_map(tmp_path / name)
        assert_clean(str(err.value))
    with pytest.raises(ValueError, match=r"unknown character at row 2, column 2") as err:
        parse_grid("S..\n.\u00a7.\n..G\n")
    assert "\u00a7" not in str(err.value)
    (tmp_path / "latin.txt").write_bytes(b"S.\xff\n..G\n")
    with pytest.raises(ValueError, match=r"is not UTF-8 text"):
        load_map(tmp_path / "latin.txt")
    with pytest.raises(ValueError, match=r"more than 4 goals 'G' \(again at row 1, column 6\)"):
        parse_grid("SGGGGG\n......\n")


def test_big_files_and_grids_are_refused_quickly(tmp_path):
    row = "." * 1500
    grid = "S" + row[1:] + "\n" + (row + "\n") * 1498 + row[:-1] + "G\n"
    (tmp_path / "big.txt").write_text(grid)
    env = gym.make(OPEN_ID)
    env.reset(options={"benchmark": GOOD})
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"is 2251500 bytes; at most {MAX_FILE_BYTES} allowed"):
        env.reset(options={"benchmark": f"file://{tmp_path}/big.txt"})
    with pytest.raises(ValueError, match=r"has 1500 rows; at most 256 allowed"):
        parse_grid(grid)
    with pytest.raises(ValueError, match=r"has 300 columns; at most 256 allowed"):
        parse_grid("S" + "." * 298 + "G\n")
    assert time.perf_counter() - start < 1.0
    checker = "\n".join(
        "".join("#" if (r + c) % 2 else "." for c in range(100)) for r in range(100)
    )
    checker = "S" + checker[1:-1] + "G"
    with pytest.raises(ValueError, match=r"the map has 5000 walls .*; at most 1000 allowed"):
        parse_grid(checker)
    env.reset(options={"benchmark": GOOD})  # still usable
    assert env.step(np.zeros(200))[2]


# ---------------------------------------------------------------------------- the largest map


def crowded_map(tmp_path) -> tuple[str, NavMap]:
    """The largest map allowed: MAX_WALLS walls stacked near the start, where every step of
    a plan tests all of them, and the longest horizon."""
    walls = [[3.0, 3.0 + 0.001 * i, 3.5, 3.0005 + 0.001 * i] for i in range(MAX_WALLS)]
    data = map_dict(size=100, walls=walls, goals=[{"position": [99, 99]}], horizon=MAX_HORIZON)
    uri = write_json(tmp_path, data, "crowded")
    return uri, NavMap.from_dict(data)


def test_the_largest_map_resets_and_steps_within_two_seconds(tmp_path):
    uri, nav = crowded_map(tmp_path)
    for env_id, action in ((OPEN_ID, np.full(2 * MAX_HORIZON, 0.7)), (CLOSED_ID, [0.7, 0.7])):
        env = gym.make(env_id)
        start = time.perf_counter()
        env.reset(options={"benchmark": uri})
        _, reward, *_ = env.step(action)
        elapsed = time.perf_counter() - start
        assert np.isfinite(reward) and elapsed < 2.0, (env_id, elapsed)
    geo = map_geometry(nav)
    assert geo.most_near_walls > 1000  # every wall lies within a move of the start's cell
    assert geo.most_near_walls * geo.cells_per_side**2 <= MAX_CELL_ENTRIES
    # the NumPy and plain-Python rollouts agree bit for bit on the crowded map too
    plans = np.random.default_rng(0).uniform(-1, 1, (3, MAX_HORIZON, 2))
    plans[0] = 0.7
    positions, reached, goal = rollout(nav, plans)
    for i in range(3):
        path, step, which = rollout_one(nav, plans[i])
        assert np.array_equal(np.array(path), positions[i]) and (step, which) == (
            reached[i],
            goal[i],
        )


def test_walls_crowding_every_cell_keep_the_grid_small():
    walls = tuple((0.5, 0.0, 10.0, 10.0 - 0.001 * i) for i in range(MAX_WALLS))
    nav = NavMap("crowd", 10.0, walls, (0.25, 5.0), (Goal(0.25, 9.5),))
    geo = map_geometry(nav)
    assert geo.most_near_walls * geo.cells_per_side**2 <= MAX_CELL_ENTRIES
    path, step, which = rollout_one(nav, np.tile([0.0, 1.0], (nav.horizon, 1)))
    assert step > 0 and which == 0


# ---------------------------------------------------------------------------- actions


def assert_step_refused(env_id: str, action: Any, message: str) -> gym.Env:
    """A fresh ``env_id`` env reset on :data:`GOOD` refuses ``action`` with a clean
    ``ValueError`` matching ``message``; the env, for more checks."""
    env = gym.make(env_id)
    env.reset(options={"benchmark": GOOD})
    with pytest.raises(ValueError, match=message) as err:
        env.step(action)
    assert_clean(str(err.value))
    return env


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            "abc",
            r"a plan must hold numbers, got an array of dtype <U3 \(str\); allowed: 100 "
            r"moves",
        ),
        (None, r"a plan must hold numbers, got an array of dtype object"),
        (np.ones(200, dtype=bool), r"a plan must hold numbers, not booleans"),
        ([[0.1, 0.2], [0.3]], r"a plan must be an array of numbers|must hold numbers"),
        (np.full(200, np.nan), r"plan 0 has a non-finite move \[nan, nan\] at step 0"),
        (np.r_[np.zeros(198), np.inf, 0], r"non-finite move \[inf, 0.0\] at step 99"),
        (np.zeros(198), r"a plan must have shape \(200,\) \(or \(100, 2\)\)"),
        (np.zeros((2, 100, 2)), r"got shape \(2, 100, 2\)"),
        (np.r_[np.zeros(199), 1.5], r"outside the action space \[-1, 1\]; clip plans"),
        (np.zeros(200, complex), r"dtype complex128"),
    ],
)
def test_bad_plans_name_the_problem(action, message):
    env = assert_step_refused(OPEN_ID, action, message)
    if isinstance(action, np.ndarray) and action.shape == (200,):
        with pytest.raises(ValueError):
            env.unwrapped.evaluate_batch(action[None])
    assert np.isfinite(env.step(np.zeros(200))[1])  # the episode goes on


def test_bad_plan_batches_name_the_problem():
    env = gym.make(OPEN_ID)
    env.reset(options={"benchmark": GOOD})
    for plans, message in (
        ("abc", r"plans must hold numbers, got an array of dtype <U3"),
        ([[True] * 200], r"plans must hold numbers, not booleans"),
        (np.full((2, 200), np.inf), r"plan 0 has a non-finite move"),
        (np.zeros((2, 7)), r"plans must have shape \(N, 100, 2\) or \(N, 200\)"),
    ):
        with pytest.raises(ValueError, match=message) as err:
            env.unwrapped.evaluate_batch(plans)
        assert_clean(str(err.value))
    assert env.unwrapped.evaluations == 0  # nothing was charged


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("ab", r"an action must hold numbers, got an array of dtype <U2"),
        ([True, False], r"an action must hold numbers, not booleans"),
        ([np.nan, 0.0], r"the move \[nan, 0.0\] is not finite; allowed: one move"),
        ([0.0, -np.inf], r"the move \[0.0, -inf\] is not finite"),
        ([1e200, 0.0], r"the move \[1e\+200, 0.0\] is too large; allowed: .* \[-1e\+06, 1e\+06\]"),
        (np.zeros(3), r"one move \(dx, dy\) of shape \(2,\); got \(3,\)"),
        (None, r"an action must hold numbers, got an array of dtype object"),
    ],
)
def test_bad_closed_loop_moves_name_the_problem(action, message):
    assert_step_refused(CLOSED_ID, action, message)


def test_closed_loop_moves_beyond_the_box_are_scaled_back_as_documented():
    env = gym.make(CLOSED_ID)
    env.reset(options={"benchmark": "benchmark://nav2d-v0/open"})
    far = env.step([3.0, 0.0])[4]["position"]
    env.reset()
    unit = env.step([1.0, 0.0])[4]["position"]
    assert np.array_equal(far, unit) and unit[0] == pytest.approx(1.5)  # start 1.0 + 0.5


# ---------------------------------------------------------------------------- the env


def test_a_bad_map_never_breaks_the_env(tmp_path):
    for env_id, action in ((OPEN_ID, np.zeros(200)), (CLOSED_ID, [0.5, 0.0])):
        env = gym.make(env_id)
        env.reset(options={"benchmark": GOOD})
        for name, data in {
            "huge": map_dict(size=1e308),
            "deep": "[" * 10_000,
            "walled": map_dict(start=[5, 5]),
        }.items():
            with pytest.raises(ValueError):
                env.reset(options={"benchmark": write_json(tmp_path, data, name)})
            env.reset(options={"benchmark": GOOD})
            assert env.unwrapped.nav.name == "wall"
            assert np.isfinite(env.step(action)[1])
        with pytest.raises(ValueError):
            env.reset(options={"benchmark": write_json(tmp_path, map_dict(size=-1), "neg")})
        env.reset()  # back to the last good map
        assert env.unwrapped.benchmark == GOOD and np.isfinite(env.step(action)[1])


def test_a_failed_first_reset_through_gym_make(tmp_path):
    env = gym.make(OPEN_ID)
    with pytest.raises(ValueError):
        env.reset(options={"benchmark": write_json(tmp_path, map_dict(size=1e308))})
    env.reset(options={"benchmark": GOOD})
    assert np.isfinite(env.step(np.zeros(200))[1])


def test_a_failed_first_reset_leaves_the_env_itself_usable(tmp_path):
    env = gym.make(OPEN_ID, disable_env_checker=True)
    with pytest.raises(ValueError):
        env.reset(options={"benchmark": write_json(tmp_path, map_dict(size=1e308))})
    env.reset(options={"benchmark": GOOD})
    assert np.isfinite(env.step(np.zeros(200))[1])
