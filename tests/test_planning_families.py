"""The seeded families of hard maps, the solvability check, and hand-written maps: every
planner runs on one, and a map with no path is refused before any search starts."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest

import optgym  # noqa: F401
from optgym.bench import run_bench
from optgym.budget import Budget
from optgym.datasets.planning import Goal, NavMap, fixed_map, reachability
from optgym.datasets.planning.families import FAMILIES, family_map
from optgym.datasets.planning.paths import segments_clear, wall_rects
from optgym.envs.planning import OPEN_LOOP_ID, PROBLEM

# a U-cup with the start inside and the goal behind its back (the README's grid format)
CUP = """\
..........
..........
..#####...
..#...#...
..#.S.#.G.
..#...#...
..#...#...
..........
..........
..........
"""
# the goal walled in on every side
BOXED = """\
..........
.S........
..........
......###.
......#G#.
......###.
..........
..........
..........
..........
"""


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return f"file://{path}"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_gives_hard_solvable_maps_from_each_split(family: str) -> None:
    env = gym.make(OPEN_LOOP_ID)
    try:
        for seed, split in ((0, "test"), (1, "test"), (1000, "validation"), (2000, "train")):
            uri = f"generator://nav2d-{family}-v0/{seed}"
            assert env.unwrapped.datasets.dataset(uri).split_of(uri) == split
            nav = family_map(family, seed)
            assert nav.to_json() == family_map(family, seed).to_json()  # same seed, same map
            found = reachability(nav)
            assert found.reachable and found.length <= 40.0 and found.within_horizon
            # the straight line to the goal runs into a wall
            line = np.array([nav.start]), np.array([nav.goals[0].position])
            assert not segments_clear(wall_rects(nav), *line)[0]
            env.reset(options={"benchmark": uri})  # the env takes it (and checks it again)
    finally:
        env.close()
    assert len({family_map(family, s).to_json() for s in range(5)}) == 5


def test_the_way_found_is_collision_free_and_close_to_the_shortest() -> None:
    # open map: a straight line into the goal's disk
    nav = fixed_map("open")
    want = math.dist(nav.start, nav.goals[0].position) - nav.goals[0].radius
    assert reachability(nav).length == pytest.approx(want, rel=1e-6)
    # wall map: over the wall's top end, 0.2 thick, and down into the disk
    nav = fixed_map("wall")
    leg = math.hypot(4.9 - 1.5, 7.0 - 3.0)
    want = 2 * leg + 0.2 - 0.5
    found = reachability(nav)
    assert want <= found.length <= 1.03 * want
    path = np.array(found.path)
    assert segments_clear(wall_rects(nav), path[:-2], path[1:-1]).all()
    # two goals: a length each, the nearer one first in line
    two = reachability(fixed_map("two-goals"))
    assert len(two.lengths) == 2 and two.length == min(two.lengths)


def test_no_path_is_said_before_any_search_starts(tmp_path) -> None:
    uri = _write(tmp_path, "boxed.txt", BOXED)
    env = gym.make(OPEN_LOOP_ID)
    try:
        with pytest.raises(ValueError, match=r"map 'boxed' has no path from the start to any"):
            env.reset(options={"benchmark": uri})
    finally:
        env.close()
    results = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match=r"boxed.txt: map 'boxed' has no path") as caught:
        run_bench("path-planning", ["cem"], [uri], [0], Budget(calls=50), results,
                  executor="inline", progress=False)  # fmt: skip
    assert "#" not in str(caught.value)  # the file's contents are not echoed
    assert not results.exists()  # nothing ran, nothing written
    # a thin wall of zero width blocks too; a door as wide as two cells does not
    walls = ((5.0, 0.0, 5.0, 10.0),)
    shut = NavMap("shut", 10.0, walls, (1.0, 5.0), (Goal(9.0, 5.0),))
    assert not reachability(shut).reachable
    door = NavMap("door", 10.0, ((5.0, 0.0, 5.0, 4.9), (5.0, 5.1, 5.0, 10.0)), (1.0, 5.0),
                  shut.goals)  # fmt: skip
    assert reachability(door).reachable


def test_a_hand_written_map_works_with_every_planner(tmp_path) -> None:
    uri = _write(tmp_path, "cup.txt", CUP)
    planners = sorted(n for n, a in PROBLEM.agents.items() if OPEN_LOOP_ID in a.envs)
    assert {"cem", "cmaes", "lap3", "la-mcts", "mppi", "voo", "shooting"} <= set(planners)
    rows = run_bench("path-planning", planners, [uri], [0], Budget(calls=60),
                     tmp_path / "r.jsonl", executor="inline", progress=False)  # fmt: skip
    assert sorted(r["agent"] for r in rows) == planners
    for r in rows:
        assert r["error"] is None, (r["agent"], r["error"])
        assert math.isfinite(r["score"]) and r["budget_used"]["calls"] <= 60
    assert json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])["benchmark"] == uri


def test_the_way_field_leads_around_walls_and_following_it_reaches_the_goal() -> None:
    from optgym.datasets.planning.paths import way_field
    from optgym.wrappers import NamedObservation

    nav = fixed_map("wall")
    field = way_field(nav)
    found = reachability(nav).length
    assert found <= field.distance(*nav.start) <= 1.08 * found  # the grid's octile way
    assert field.distance(*nav.goals[0].position) == pytest.approx(0.0, abs=0.1)
    env = gym.make("optgym/PathPlanning2DClosedLoop-v0", reward_space="WayProgress")
    try:
        assert "WaySensors" in env.unwrapped.observation.spaces
        way = NamedObservation(env, "WaySensors")
        for uri in ("benchmark://nav2d-v0/wall", "benchmark://nav2d-v0/bug-trap"):
            obs, _ = way.reset(options={"benchmark": uri})
            total, done, info = 0.0, False, {}
            while not done:  # head where the way falls fastest
                obs, reward, terminated, truncated, info = way.step(obs[-3:-1].astype(float))
                total += reward
                done = terminated or truncated
            assert info["reached"], uri
            left = way_field(env.unwrapped.nav).distance(*env.unwrapped.nav.start)
            assert total == pytest.approx(left / 10.0 + 1.0, abs=0.05)  # the way, plus the payoff
            assert env.unwrapped.validate(env.unwrapped.state).ok  # the reward replays
    finally:
        env.close()


def test_the_hard_task_scores_the_families_test_maps_with_the_tuned_planners() -> None:
    from pathlib import Path

    from optgym.envs.planning import HARD_FAMILIES, HARD_TASK, TUNED_PLANNERS
    from optgym.tasks import board_benchmarks, get_task

    task = get_task(HARD_TASK)
    assert set(HARD_FAMILIES) == set(FAMILIES)
    board = board_benchmarks(task)
    assert len(board) == 2 * len(FAMILIES)
    for family in FAMILIES:  # test seeds only: none of the train seeds the tuning saw
        dataset = PROBLEM.dataset_registry().dataset(f"generator://nav2d-{family}-v0")
        test = set(dataset.take("test", 2))
        assert test <= set(board) and not test & set(dataset.take("train", 50))
    # the task's settings are those the tuning wrote (a re-tune updates both)
    tuned = Path(__file__).resolve().parents[1] / "agents" / "planning" / "tuned.json"
    specs = json.loads(tuned.read_text())["specs"]
    assert sorted(TUNED_PLANNERS) == sorted(specs.values())
    assert TUNED_PLANNERS[0] == specs["lap3"]  # LaP3's entry first
