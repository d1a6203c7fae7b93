"""SurCo's embedding-table sharding (``optgym/SurrogateOptimization-v0`` on ``"kind":
"sharding"`` instances): the seeded instances, the latency model on a hand-written instance,
the assignment MIP, hostile sharding files, every sharding agent end to end through
``run_bench`` and ``validate``, the route-only agents refusing, and ``check_env``."""

from __future__ import annotations

import json
from pathlib import Path

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
from optgym.datasets.surco import greedy_placement, instance_from_bytes, placement_costs
from optgym.datasets.surco.generator import ShardingDataset, generate_sharding
from optgym.datasets.surco.sharding import MAX_FILE_BYTES, MAX_TABLES, ShardingInstance
from optgym.envs.surco import ENV_ID, PROBLEM, speedup
from optgym.envs.surco.solver import assign_tables
from optgym.problem import Task
from optgym.validate import PASSED, validate_results

AGENTS = ("greedy-sharding", "random-search", "surco-zero")
# Three tables (loads 1000, 500 and 200 values a sample) on two devices of 3 and 2 GiB.
THREE = {
    "kind": "sharding",
    "tables": [[2, 10, 100], [1, 5, 100], [1, 4, 50]],
    "capacities": [3, 2],
    "knee": 1000,
}


def _latency(load: float, tables: int, knee: float = 1000.0) -> float:
    """The documented model, written out: compute with saturation, communication, overhead."""
    return 1e-3 * load * (1 + (load / knee) ** 2) + 5e-4 * load + 1.0 * tables


@pytest.fixture(scope="module")
def env():
    made = optgym.make(ENV_ID, step_limit=False, reward_space="Speedup")
    yield made
    made.close()


@pytest.fixture
def task(monkeypatch: pytest.MonkeyPatch) -> Task:
    """A sharding task for the test only: surco-sharding with a budget of 30 calls."""
    made = Task(
        name="surco-sharding-test",
        env_id=ENV_ID,
        env_kwargs={"reward_space": "Speedup"},
        datasets=(("generator://sharding-v0", "test"),),
        budget=Budget(calls=30),
        score=speedup,
        score_name="speedup over the greedy placement (mean)",
        aggregate="mean",
        problem=PROBLEM.name,
    )
    tasks = {**optgym.tasks.all_tasks(), made.name: made}
    monkeypatch.setattr(optgym.tasks, "all_tasks", lambda: tasks)
    return made


def test_the_sharding_instances_fit_their_devices(tmp_path: Path) -> None:
    # seeding and splits: test_surco.py checks every generator of the problem
    dataset = ShardingDataset()
    assert "generator://sharding-v0" in PROBLEM.dataset_registry().keys()
    for seed in (0, 1000, 2000):
        data = dataset.generate(seed, tmp_path)
        instance = instance_from_bytes(data, "instance")
        assert isinstance(instance, ShardingInstance) and json.loads(data)["kind"] == "sharding"
        assert 20 <= instance.n_tables <= 60 and 4 <= instance.n_devices <= 8
        assert instance.fits(greedy_placement(instance), rtol=0.0)


def test_the_latency_is_the_documented_model_on_a_hand_written_instance(tmp_path) -> None:
    instance = instance_from_bytes(json.dumps(THREE).encode(), "three")
    assert instance.loads.tolist() == [1000.0, 500.0, 200.0]
    assert instance.device_latencies([0, 1, 0]) == pytest.approx(
        [_latency(1200, 2), _latency(500, 1)], rel=1e-15
    )
    assert instance.latency([0, 1, 0]) == pytest.approx(5.528, rel=1e-12)
    assert instance.device_latencies([0, 0, 0])[1] == 0.0  # an empty device
    # greedy: the hot table first (a tie: device 0), then each on the device that stays fastest
    assert greedy_placement(instance) == [0, 1, 1]
    assert instance.latency([0, 1, 1]) == pytest.approx(max(_latency(1000, 1), _latency(700, 2)))
    assert not instance.fits([0, 0, 0]) and instance.fits([1, 0, 0])


def test_the_assignment_mip_keeps_the_capacities_and_gives_the_committed_placement() -> None:
    instance = generate_sharding(2001)
    t, d = instance.n_tables, instance.n_devices
    greedy = greedy_placement(instance)
    rng = np.random.default_rng(0)
    for _ in range(3):
        costs = rng.random(t * d)
        solved = assign_tables(instance, costs)
        assert solved.optimal and instance.fits(solved.placement)
        c = costs.reshape(t, d)
        # no cheaper than what every table's cheapest device gives, no dearer than greedy's
        total = sum(c[i, solved.placement[i]] for i in range(t))
        assert c.min(axis=1).sum() <= total <= sum(c[i, greedy[i]] for i in range(t)) + 1e-9
    assert assign_tables(instance, costs).placement == solved.placement  # deterministic
    assert assign_tables(instance, 1e6 * costs).placement == solved.placement  # scale-free
    assert assign_tables(instance, placement_costs(greedy, d)).placement == greedy


def test_an_episode_scores_the_speedup_over_the_reference(env, tmp_path: Path) -> None:
    base = env.unwrapped
    _, info = base.reset(options={"benchmark": write_instance(tmp_path, "three.json", THREE)})
    reference = max(_latency(1000, 1), _latency(700, 2))
    assert info["reference_latency"] == pytest.approx(reference)
    assert base.reference_placement == [0, 1, 1] and base.action_space.shape == (6,)
    # table 0 on device 1 is cheapest, then the others go where they fit
    obs, reward, _, _, info = base.step([1, 0, 0, 1, 0, 1])
    assert info["placement"] == [1, 0, 0]
    assert info["latency"] == pytest.approx(max(_latency(1000, 1), _latency(700, 2)))
    assert reward == info["speedup"] == pytest.approx(1.0)
    _, reward, _, _, info = base.step([0, 1, 0, 1, 0, 1])  # tables 1 and 2 with table 0
    assert info["placement"] == [0, 0, 0] or not base.sharding.fits([0, 0, 0])
    assert base.sharding.fits(info["placement"]) and reward == 0.0
    assert base.episode_reward == base.state.reward == pytest.approx(1.0)
    assert base.state.extras["best_placement"] == [1, 0, 0]
    assert base.state.reward_space == "Speedup" and "scip" in base.state.versions
    graph = obs["graph"]
    assert graph.nodes.shape == (5, 5) and graph.edges.shape == (6, 3)
    assert graph.edge_links.tolist() == [[0, 3], [0, 4], [1, 3], [1, 4], [2, 3], [2, 4]]
    assert graph.edges[:, 2].tolist() == [0, 1, 1, 0, 1, 0]  # on the best placement
    assert base.observation["RouteGraph"]["graph"].nodes.shape == (0, 2)  # not a route
    result = base.validate()
    assert result.ok and result.reward == pytest.approx(1.0)
    bad = base.state
    bad.reward = 1.5
    assert not base.validate(bad).ok


def test_the_reward_space_names_the_kind_it_scores(tmp_path: Path) -> None:
    route_env = optgym.make(ENV_ID, step_limit=False)
    try:
        with pytest.raises(ValueError, match="is a sharding instance, scored by the reward "
                           "space 'Speedup'.*make it with reward_space='Speedup'"):  # fmt: skip
            route_env.reset(options={"benchmark": write_instance(tmp_path, "three.json", THREE)})
    finally:
        route_env.close()


@pytest.mark.parametrize("name", ["ev-path", "mean-variance"])
def test_the_route_only_agents_refuse_a_sharding_instance(env, name: str) -> None:
    with pytest.raises(ValueError, match=r"solves route instances only; "
                       r"generator://sharding-v0/1 is a sharding instance"):  # fmt: skip
        make_agent(name).solve(env, "generator://sharding-v0/1", Budget(calls=5), seed=0)


def _many_tables() -> bytes:
    tables = ",".join("[0.001,1,4]" for _ in range(MAX_TABLES + 1))
    return f'{{"kind":"sharding","capacities":[100],"knee":5,"tables":[{tables}]}}'.encode()


MARK = "SECRET-CONTENT-9d2e"
HOSTILE = [
    (f'{{"kind": "sharding", "{MARK}": [1,', "is not UTF-8 JSON"),
    ({**THREE, MARK: 1}, "1 unknown key"),
    ({k: v for k, v in THREE.items() if k != "knee"}, "lacks 'knee'"),
    ({**THREE, "tables": [[2, 10, 100], [-3.25, 5, 100]]},
     "table 1's size is negative; sizes must be >= 0"),
    ({**THREE, "tables": [[2, 10, 100], [1, 5, 1.5]]},
     r"table 1's dim must be an integer in \[1, 65536\]"),
    ({**THREE, "tables": [[2, 10, 0]]}, "table 0's dim is out of range"),
    ('{"kind": "sharding", "tables": [[1, NaN, 8]], "capacities": [3], "knee": 5}',
     "table 0's pooling is not a finite number"),
    ({**THREE, "tables": [[2, 10, 100], [1, 5]]}, "table 1 must be .size, pooling, dim."),
    ({**THREE, "capacities": [2, 1.5]}, "total size exceeds the devices' total capacity"),
    ({**THREE, "tables": [[2.5, 1, 8]], "capacities": [2, 2]},
     "table 0 is larger than every device's capacity"),
    ({**THREE, "capacities": [1] * 65}, "has 65 devices; 1 to 64 allowed"),
    ({**THREE, "knee": 0}, "'knee' is 0; the knee must be > 0"),
    ({**THREE, "knee": 1e-300}, "'knee' is too small for the tables' loads"),
    ({**THREE, "tables": "x"}, "'tables' must be a list"),
    (_many_tables(), f"has {MAX_TABLES + 1} tables; 1 to {MAX_TABLES} allowed"),
    (b'{"kind": "sharding", "tables": []' + b" " * MAX_FILE_BYTES + b"}",
     f"at most {MAX_FILE_BYTES} allowed for a sharding instance"),
    # three 2 GiB tables fit no pair of 3 GiB devices, though the sums and sizes do
    ({**THREE, "tables": [[2, 1, 8]] * 3, "capacities": [3, 3]},
     "no placement of the tables fits the capacities"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "match"), HOSTILE)
def test_a_hostile_sharding_file_is_refused_in_one_line_without_its_contents(
    env, tmp_path: Path, content: object, match: str
) -> None:
    base = env.unwrapped
    good = write_instance(tmp_path, "three.json", THREE)
    base.reset(options={"benchmark": good})
    uri = write_instance(tmp_path, "hostile.json", content)
    with pytest.raises(ValueError, match=match) as caught:
        base.reset(options={"benchmark": uri})
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert MARK not in message and "-3.25" not in message and "NaN" not in message
    assert str(tmp_path / "hostile.json") in message  # it names the file
    base.reset(options={"benchmark": good})  # the env stays usable on its last instance
    assert base.step([0, 1, 1, 0, 1, 0])[4]["placement"] == [0, 1, 1]


def test_an_instance_no_placement_fits_is_refused_before_any_episode(task, tmp_path) -> None:
    uri = write_instance(tmp_path, "packed.json", {**THREE, "tables": [[2, 1, 8]] * 3,
                                           "capacities": [3, 3]})  # fmt: skip
    results = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match=r"packed.json: no placement of the tables fits"):
        run_bench(task.name, ["greedy-sharding"], [uri], [0], Budget(calls=5), results,
                  executor="inline", progress=False)  # fmt: skip
    assert not results.exists()


def test_every_sharding_agent_runs_a_hand_written_instance_end_to_end_and_validates(
    task, tmp_path: Path
) -> None:
    path = tmp_path / "three.json"
    uri = write_instance(tmp_path, "three.json", THREE)
    results = tmp_path / "r.jsonl"
    by_agent = every_agent_rows(task, list(AGENTS), uri, results)
    for row in by_agent.values():
        assert row["score"] == pytest.approx(1.0)  # the greedy placement is optimal here
    assert by_agent["greedy-sharding"]["budget_used"]["calls"] == 1
    assert by_agent["greedy-sharding"]["state"]["extras"]["best_placement"] == [0, 1, 1]
    checked = validate_results(results, allowed_files=[str(path)], split="any")
    assert len(checked) == len(AGENTS)
    assert all(verdict == PASSED for _, verdict, _ in checked), checked


def test_surco_zero_is_never_worse_than_the_greedy_placement(env) -> None:
    budget = Budget(calls=20)
    greedy, surco = make_agent("greedy-sharding"), make_agent("surco-zero")
    random = make_agent("random-search")
    for seed in (2000, 2001, 2002):
        uri = f"generator://sharding-v0/{seed}"
        start = greedy.solve(env, uri, budget, seed=0)
        assert start.reward == pytest.approx(1.0)  # the reference is the greedy placement
        found = surco.solve(env, uri, budget, seed=0)
        assert found.budget_used["calls"] <= 20 and found.reward >= start.reward, seed
        assert env.unwrapped.validate(found.state).ok
        one = random.solve(env, uri, Budget(calls=6), seed=3)
        assert one.state.actions == random.solve(env, uri, Budget(calls=6), seed=3).state.actions
        assert 0 < one.reward and one.budget_used["calls"] <= 6


def test_gymnasium_check_env_passes_on_a_sharding_instance() -> None:
    made = gym.make(ENV_ID, reward_space="Speedup")
    try:
        check_env(made.unwrapped, skip_render_check=True)
        base = made.unwrapped
        assert base.benchmark == "generator://sharding-v0/0" and base.kind == "sharding"
        assert base.config == {"reward_space": "Speedup", "deadline_factor": None}
        assert base.observation.spaces["ShardingGraph"] == base.observation_space
    finally:
        made.close()
