"""SurCo's route planning (``optgym/SurrogateOptimization-v0``): the seeded routes, the on-time
probability on a hand-written route where the risky path beats the fastest one, hostile route
files, every agent end to end through ``run_bench`` and ``validate``, and SurCo-zero against
the expected-value path."""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from surco_files import every_agent_rows, write_instance

import optgym
import optgym.tasks
from optgym.agents import make_agent
from optgym.bench import run_bench
from optgym.budget import Budget
from optgym.datasets.seeded import SPLIT_SEEDS
from optgym.datasets.surco import MAX_EDGES, MAX_FILE_BYTES, route_from_bytes
from optgym.datasets.surco.generator import RoutesDataset, least_expected_time
from optgym.envs.surco import ENV_ID, PROBLEM, on_time_probability
from optgym.problem import Task
from optgym.validate import PASSED, validate_results

AGENTS = ("ev-path", "mean-variance", "random-search", "surco-zero")
# Two ways from 0 to 3: the safe one (0 -> 1 -> 3: mean 10, variance 1) is the faster on
# average; the risky one (0 -> 2 -> 3: mean 11, variance 16) is likelier to make a deadline
# of 9, below both means.
TWO_WAYS = {
    "kind": "route",
    "nodes": 4,
    "edges": [[0, 1, 5, 0.5], [1, 3, 5, 0.5], [0, 2, 5.5, 8], [2, 3, 5.5, 8]],
    "source": 0,
    "target": 3,
    "deadline": 9,
}
SAFE = NormalDist().cdf((9 - 10) / 1)  # 0.1587
RISKY = NormalDist().cdf((9 - 11) / 4)  # 0.3085


@pytest.fixture(scope="module")
def env():
    made = optgym.make(ENV_ID, step_limit=False)
    yield made
    made.close()


@pytest.fixture
def task(monkeypatch: pytest.MonkeyPatch) -> Task:
    """A task on this env for the test only: surco-routes with a budget of 30 calls."""
    made = Task(
        name="surco-test",
        env_id=ENV_ID,
        env_kwargs={},
        datasets=(("generator://routes-v0", "test"),),
        budget=Budget(calls=30),
        score=on_time_probability,
        score_name="on-time probability (mean)",
        aggregate="mean",
        problem=PROBLEM.name,
    )
    tasks = {**optgym.tasks.all_tasks(), made.name: made}
    monkeypatch.setattr(optgym.tasks, "all_tasks", lambda: tasks)
    return made


@pytest.mark.parametrize("name", ["routes-v0", "sharding-v0"])
def test_each_generator_is_seeded_and_its_splits_disjoint(name: str, tmp_path: Path) -> None:
    dataset = PROBLEM.dataset_registry().dataset(f"generator://{name}")
    assert dataset.generate(7, tmp_path) == dataset.generate(7, tmp_path)
    assert dataset.generate(7, tmp_path) != dataset.generate(8, tmp_path)
    splits = {s: set(dataset.take(s, 5)) for s in ("train", "validation", "test")}
    assert not (splits["train"] & splits["validation"] or splits["train"] & splits["test"]
                or splits["validation"] & splits["test"])  # fmt: skip
    for split, uris in splits.items():
        assert {dataset.split_of(u) for u in uris} == {split}
        lo, hi = SPLIT_SEEDS[split]
        assert all(lo <= int(u.rsplit("/", 1)[1]) < hi for u in uris)
    assert dataset.license and dataset.provenance and dataset.references


def test_the_routes_deadline_factor_follows_the_seed(tmp_path: Path) -> None:
    dataset = RoutesDataset()
    # the seed's remainder modulo 3 picks the deadline factor
    for seed, factor in ((3000, 1.1), (3001, 1.0), (3002, 0.9)):
        data = dataset.generate(seed, tmp_path)
        route = route_from_bytes(data, "route")
        assert route.deadline == pytest.approx(factor * least_expected_time(route), rel=1e-12)
        assert 100 <= route.nodes <= 256 and json.loads(data)["kind"] == "route"


def test_the_on_time_probability_favours_the_risky_path_under_a_tight_deadline(
    env, tmp_path: Path
) -> None:
    uri = write_instance(tmp_path, "two-ways.json", TWO_WAYS)
    base = env.unwrapped
    obs, info = base.reset(options={"benchmark": uri})
    assert info["least_expected_time"] == 10.0 and obs["best_probability"][0] == 0.0
    assert obs["deadline_ratio"][0] == pytest.approx(0.9)
    _, reward, _, _, info = base.step([5, 5, 5.5, 5.5])  # the means: the fastest path
    assert info["path"] == [0, 1] and info["probability"] == pytest.approx(SAFE, abs=1e-12)
    assert reward == info["probability"]
    _, reward, _, _, info = base.step(np.array([3.0, 3.0, 1.0, 1.0]))
    assert info["path"] == [2, 3] and info["probability"] == pytest.approx(RISKY, abs=1e-12)
    assert reward == pytest.approx(RISKY - SAFE)
    _, reward, _, _, info = base.step([0.0, 0.0, 0.0, 0.0])  # a tie: the lower node first
    assert info["path"] == [0, 1] and reward == 0.0
    assert base.episode_reward == base.state.reward == info["best_probability"]
    assert base.state.extras == {"best_path": [2, 3], "expected_time": 11.0, "variance": 16.0}
    graph = base.observation["RouteGraph"]["graph"]
    assert graph.edges[:, 4].tolist() == [0, 0, 1, 1] and graph.edges[:, 3].tolist() == [1, 1, 0, 0]
    result = base.validate()
    assert result.ok and result.reward == pytest.approx(RISKY, abs=1e-12)
    bad = base.state
    bad.reward = SAFE
    assert not base.validate(bad).ok
    # a loose deadline: the safe, fastest path is the better one
    loose = write_instance(tmp_path, "loose.json", {**TWO_WAYS, "deadline": 12})
    base.reset(options={"benchmark": loose})
    assert base.step([5, 5, 5.5, 5.5])[4]["probability"] == pytest.approx(NormalDist().cdf(2))
    assert base.step([3, 3, 1, 1])[4]["probability"] == pytest.approx(NormalDist().cdf(0.25))


@pytest.mark.parametrize(
    ("action", "match"),
    [
        ([1.0, 2.0], r"shape \(4,\); got shape \(2,\)"),
        ([1.0, np.nan, 1.0, 1.0], r"1 NaN cost\(s\) \(at edges \[1\]\)"),
        ([1.0, 1.0, np.inf, 1.0], r"1 infinite cost\(s\)"),
        ([1.0, -1.0, 1.0, 1.0], r"1 negative cost\(s\)"),
        ([1.0, 1.0, 1.0, 1e300], r"1 too large cost\(s\)"),
        (["a", "b", "c", "d"], "must hold numbers, got an array of dtype <U1"),
        ("cheap", r"must hold numbers, got an array of dtype <U5 \(str\)"),
        ([True, False, True, False], "must hold numbers, not booleans"),
    ],
)
def test_a_bad_action_is_refused_with_what_is_allowed(env, tmp_path, action, match) -> None:
    base = env.unwrapped
    base.reset(options={"benchmark": write_instance(tmp_path, "two-ways.json", TWO_WAYS)})
    with pytest.raises(ValueError, match=match) as caught:
        base.step(action)
    assert "allowed: an array of shape (4,), one surrogate cost per edge" in str(caught.value)
    assert base.episode_work == 0 and base.state.actions == []


def _many_edges() -> bytes:
    edges = ",".join("[0,1,1,1]" for _ in range(MAX_EDGES + 1))
    return (f'{{"kind":"route","nodes":2,"source":0,"target":1,"deadline":5,'
            f'"edges":[{edges}]}}').encode()  # fmt: skip


MARK = "SECRET-CONTENT-4f1c"
HOSTILE = [
    (f'{{"kind": "route", "nodes": 4, "{MARK}": [1,', "is not UTF-8 JSON"),
    ({**TWO_WAYS, "kind": MARK}, "'kind' must be 'route'"),
    ({**TWO_WAYS, MARK: 1}, "1 unknown key"),
    ({**TWO_WAYS, "edges": [[0, 1, 5, 1], [1, 7, 5, 1]]},
     r"edge 1's head v is out of range; allowed: an integer in \[0, 3\]"),
    ({**TWO_WAYS, "edges": [[0, 1, 5, 1], [1, 3, -3.25, 1]]},
     "edge 1's mean is negative; means must be >= 0 .*no negative cycles"),
    ('{"kind": "route", "nodes": 4, "edges": [[0, 3, NaN, 1]], "source": 0, "target": 3, '
     '"deadline": 9}', "edge 0's mean is not a finite number"),
    ({**TWO_WAYS, "edges": [[0, 1, 5, 1], [2, 3, 5, 1]]},
     "has no path from the source to the target"),
    ({**TWO_WAYS, "target": 0}, "'source' and 'target' are the same node"),
    (_many_edges(), f"has {MAX_EDGES + 1} edges; 1 to {MAX_EDGES} allowed"),
    (b" " * (MAX_FILE_BYTES + 1), f"at most {MAX_FILE_BYTES} allowed"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "match"), HOSTILE)
def test_a_hostile_route_file_is_refused_in_one_line_without_its_contents(
    env, tmp_path: Path, content: object, match: str
) -> None:
    base = env.unwrapped
    good = write_instance(tmp_path, "two-ways.json", TWO_WAYS)
    base.reset(options={"benchmark": good})
    uri = write_instance(tmp_path, "hostile.json", content)
    with pytest.raises(ValueError, match=match) as caught:
        base.reset(options={"benchmark": uri})
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert MARK not in message and "-3.25" not in message and "NaN" not in message
    assert str(tmp_path / "hostile.json") in message  # it names the file
    # the env stays usable on its last route
    base.reset(options={"benchmark": good})
    assert base.step([5, 5, 5.5, 5.5])[4]["path"] == [0, 1]


def test_a_route_without_a_path_is_refused_before_any_episode(task, tmp_path: Path) -> None:
    uri = write_instance(tmp_path, "cut.json", {**TWO_WAYS, "edges": [[0, 1, 5, 1], [2, 3, 5, 1]]})
    results = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match=r"cut.json has no path from the source to the target"):
        run_bench(task.name, ["ev-path"], [uri], [0], Budget(calls=5), results,
                  executor="inline", progress=False)  # fmt: skip
    assert not results.exists()


def test_every_agent_runs_a_hand_written_route_end_to_end_and_validates(
    task, tmp_path: Path
) -> None:
    path = tmp_path / "two-ways.json"
    uri = write_instance(tmp_path, "two-ways.json", TWO_WAYS)
    results = tmp_path / "r.jsonl"
    by_agent = every_agent_rows(task, list(AGENTS), uri, results)
    assert by_agent["ev-path"]["score"] == pytest.approx(SAFE, abs=1e-12)
    assert by_agent["ev-path"]["budget_used"]["calls"] == 1
    for name in ("mean-variance", "random-search", "surco-zero"):
        assert by_agent[name]["score"] == pytest.approx(RISKY, abs=1e-12), name
        assert by_agent[name]["state"]["extras"]["best_path"] == [2, 3]
    checked = validate_results(results, allowed_files=[str(path)], split="any")
    assert len(checked) == len(AGENTS)
    assert all(verdict == PASSED for _, verdict, _ in checked), checked
    # a claimed score the replay does not give is caught
    lines = results.read_text().splitlines()
    line = json.loads(lines[0])
    line["score"] = line["state"]["reward"] = line["reward"] = 0.99
    results.write_text(json.dumps(line) + "\n")
    assert validate_results(results, allowed_files=[str(path)], split="any")[0][1] != PASSED


def test_surco_zero_is_never_worse_than_the_expected_value_path(env) -> None:
    budget = Budget(calls=40)
    ev, surco = make_agent("ev-path"), make_agent("surco-zero")
    gains = []
    for seed in range(2000, 2009):
        uri = f"generator://routes-v0/{seed}"
        start = ev.solve(env, uri, budget, seed=0)
        found = surco.solve(env, uri, budget, seed=0)
        assert found.budget_used["calls"] <= 40
        assert found.reward >= start.reward, seed
        assert env.unwrapped.validate(found.state).ok
        gains.append(found.reward - start.reward)
        if seed % 3 == 1:  # a deadline of exactly the least expected time: the EV path is best
            assert found.reward == pytest.approx(0.5, abs=1e-9)
    assert sum(g > 0.05 for g in gains) >= 3, gains  # it finds better paths on several routes
    again = surco.solve(env, "generator://routes-v0/2001", budget, seed=0)
    assert again.state.actions == surco.solve(env, "generator://routes-v0/2001", budget,
                                              seed=0).state.actions  # fmt: skip


def test_the_searches_are_seeded_and_keep_their_budget(env) -> None:
    uri = "generator://routes-v0/2003"
    for name in ("random-search", "surco-zero", "mean-variance"):
        agent = make_agent(name)
        one = agent.solve(env, uri, Budget(calls=12), seed=5)
        two = agent.solve(env, uri, Budget(calls=12), seed=5)
        assert one.state.actions == two.state.actions and one.reward == two.reward, name
        assert one.budget_used["calls"] <= 12
        assert math.isfinite(one.reward) and 0 <= one.reward <= 1
    with pytest.raises(ValueError, match="random-search needs a budget that limits"):
        make_agent("random-search").solve(env, uri, Budget(), seed=0)
    # one call: the expected-value path, committed
    tiny = make_agent("random-search").solve(env, uri, Budget(calls=1), seed=0)
    assert tiny.budget_used["calls"] == 1
    assert tiny.reward == make_agent("ev-path").solve(env, uri, Budget(calls=1)).reward


def test_gymnasium_check_env_passes() -> None:
    made = gym.make(ENV_ID, deadline_factor=0.9)
    try:
        check_env(made.unwrapped, skip_render_check=True)
        assert made.unwrapped.config == {"reward_space": "OnTimeProbability",
                                         "deadline_factor": 0.9}  # fmt: skip
        assert made.unwrapped.route.deadline == pytest.approx(
            0.9 * made.unwrapped.least_expected_time
        )
    finally:
        made.close()
    with pytest.raises(ValueError, match="deadline_factor must be None"):
        gym.make(ENV_ID, deadline_factor=-1.0)


def _simple_paths(route, node: int, seen: frozenset, path: list[int]):
    """Every simple path from ``node`` to the route's target (edge lists), by brute force."""
    if node == route.target:
        yield list(path)
        return
    for e in np.flatnonzero(route.tails == node).tolist():
        head = int(route.heads[e])
        if head not in seen:
            yield from _simple_paths(route, head, seen | {head}, [*path, e])


def _ladder(seed: int) -> list[list[float]]:
    """A 3 x 5 grid whose middle row is slow and safe and whose outer rows are fast and
    risky (every road both ways): the expected-value path is often not the most likely to
    arrive in time."""
    rng = np.random.default_rng(seed)
    k = 5
    edges = []
    for r in range(3):
        for c in range(k - 1):
            if r == 1:
                mean, var = float(rng.uniform(5, 5.6)), float(rng.uniform(0, 1))
            else:
                mean, var = float(rng.uniform(4, 5)), float(rng.uniform(10, 40))
            edges += [[r * k + c, r * k + c + 1, mean, var], [r * k + c + 1, r * k + c, mean, var]]
    for r in range(2):
        for c in range(k):
            mean, var = float(rng.uniform(0.5, 1.5)), float(rng.uniform(0, 2))
            edges += [
                [r * k + c, (r + 1) * k + c, mean, var],
                [(r + 1) * k + c, r * k + c, mean, var],
            ]
    return edges


def test_the_exact_route_reference_is_the_best_of_all_paths() -> None:
    """On small graphs, exact_route's path is as likely to arrive in time as the best of all
    simple paths (enumerated), when the deadline is at least the least expected time (here
    the best path is other than the expected-value one in 8 of 18 cases); below it,
    exact_route gives None."""
    from optgym.datasets.surco import make_route
    from optgym.envs.surco.solver import exact_route

    n, beaten = 15, 0
    for seed in range(6):
        edges = _ladder(seed)
        draft = make_route(n, edges, 0, n - 1, 1.0)
        paths = list(_simple_paths(draft, 0, frozenset({0}), []))
        least = min(draft.path_moments(p)[0] for p in paths)
        expected_value = min(paths, key=lambda p: draft.path_moments(p)[0])
        for factor in (1.05, 1.15, 1.3):
            route = make_route(n, edges, 0, n - 1, factor * least)
            best = max(route.probability(p) for p in paths)
            found = exact_route(route)
            assert found is not None
            assert route.probability(found) == pytest.approx(best, abs=1e-12)
            beaten += best > route.probability(expected_value) + 1e-9
        assert exact_route(make_route(n, edges, 0, n - 1, 0.95 * least)) is None
        at_least = make_route(n, edges, 0, n - 1, least)  # summed in another order
        assert at_least.probability(exact_route(at_least)) == pytest.approx(0.5, abs=1e-9)
    assert beaten >= 6


def test_the_linearized_sharding_reference_finds_the_best_placement() -> None:
    """On small instances, SCIP on the linearized model (outer approximation of the convex
    latency) reaches the best of all placements (enumerated), its lower bound is below that
    optimum, and the greedy placement is beaten on some of them."""
    import itertools

    from optgym.datasets.surco import greedy_placement, make_sharding
    from optgym.envs.surco.solver import linearized_sharding

    beaten = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        tables = [[round(float(rng.uniform(0.1, 1.0)), 4), round(float(rng.uniform(1, 50)), 4),
                   int(rng.integers(16, 129))] for _ in range(7)]  # fmt: skip
        total = sum(t[0] for t in tables)
        loads = sum(t[1] * t[2] for t in tables)
        instance = make_sharding(tables, [round(total * 0.45, 4)] * 3, loads / 3)
        best = min(
            (instance.latency(p) for p in itertools.product(range(3), repeat=7)
             if instance.fits(p)),
        )  # fmt: skip
        found = linearized_sharding(instance, seconds=20.0, rounds=20, gap=1e-6)
        assert instance.fits(found.placement)
        assert found.latency == pytest.approx(instance.latency(found.placement))
        assert found.latency == pytest.approx(best, rel=1e-5)
        assert found.lower_bound <= best * (1 + 1e-6)
        beaten += best < instance.latency(greedy_placement(instance)) * (1 - 1e-9)
    assert beaten >= 2
