"""What users of CompilerGym and Gymnasium expect of an env and find (issue 23):
``write_bitcode``, ``multistep``, ``env.benchmark = uri``, ``env.datasets[...]``, an
``opt-19`` command line that replays an episode, rendering, and finite bounds where a
quantity has them. Everything runs for real: LLVM in the env's worker, ``opt-19`` as a
subprocess, SCIP on a small generated instance, Halide's cost model."""

from __future__ import annotations

import shlex
import subprocess
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator
from gymnasium.utils.passive_env_checker import env_render_passive_checker
from ilp_instances import vertex_cover

import optgym
from optgym.budget import Budget, BudgetExceeded
from optgym.envs.passes import actions as pass_actions
from optgym.wrappers import BudgetWrapper

PASSES_ID = "optgym/PassOrdering-v0"
CLOSED_ID = "optgym/PathPlanning2DClosedLoop-v0"
COUNTS = {"observation_space": "IrInstructionCount", "reward_space": "IrInstructionCount"}


def _count(env: gym.Env) -> int:
    return int(env.unwrapped.observation["IrInstructionCount"][0])


def _count_file(counter: gym.Env, path: Path) -> int:
    """The instruction count of a bitcode file, as the env counts it."""
    counter.reset(options={"benchmark": f"file://{path}"})
    return _count(counter)


@pytest.fixture(scope="module")
def passes():
    env = optgym.make(PASSES_ID, step_limit=False, **COUNTS).unwrapped
    yield env
    env.close()


@pytest.fixture(scope="module")
def counter():
    env = optgym.make(PASSES_ID, step_limit=False, **COUNTS).unwrapped
    yield env
    env.close()


# ---- the opt-19 command line ---------------------------------------------------------------


def _printed(pipeline: str) -> str:
    """The pipeline as opt-19 parses it (adaptors and default parameters spelled out)."""
    run = subprocess.run(
        ["opt-19", f"-passes={pipeline}", "-print-pipeline-passes", "-disable-output", "/dev/null"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return run.stdout.strip()


def test_every_flag_is_one_opt19_adaptor_that_runs_what_the_env_runs():
    steps = [p for p in pass_actions.PIPELINES if p]
    with ThreadPoolExecutor(4) as pool:
        alone = list(pool.map(_printed, steps))  # wrapped by LLVM's parser, as the env runs it
        wrapped = list(pool.map(_printed, map(pass_actions.module_pipeline, steps)))
    assert wrapped == alone
    # all of them in one module pipeline, separated as a command line separates them
    whole = _printed(pass_actions.opt_pipeline(pass_actions.PIPELINES))
    assert whole.count("invalidate<all>") == len(steps) - 1
    assert pass_actions.opt_pipeline(["", ""]) == ""  # -barrier, -loop-reroll: nothing runs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_commandline_runs_on_opt19_to_the_envs_instruction_count(passes, counter, seed, tmp_path):
    uri = f"generator://csmith-v0/{seed}"
    passes.reset(options={"benchmark": uri})
    source = passes.datasets.benchmark(uri).path  # the benchmark's own bitcode file
    rng = np.random.default_rng(seed)
    for episode in range(3):
        passes.reset()
        if episode == 0:
            passes.apply_reference("Oz")  # the command line starts with default<Oz>
        for action in rng.integers(0, len(pass_actions.FLAGS), int(rng.integers(10, 30))):
            info = passes.step(int(action))[4]
            assert "error" not in info, info
        out = tmp_path / f"out-{episode}.bc"
        command = passes.commandline(input=str(source), output=str(out))
        assert command.startswith("opt-19 -passes='") and " -instcombine " not in command
        subprocess.run(shlex.split(command), check=True, capture_output=True)
        assert _count_file(counter, out) == _count(passes), command


def test_commandline_of_a_fresh_episode_copies_the_start_state(passes, counter, tmp_path):
    passes.reset(options={"benchmark": "generator://csmith-v0/1"})
    start = passes.write_bitcode(tmp_path / "start.bc")
    out = tmp_path / "out.bc"
    command = passes.commandline(input=str(start), output=str(out))
    assert command == f"opt-19 -passes='' {start} -o {out}"
    subprocess.run(shlex.split(command), check=True, capture_output=True)
    assert _count_file(counter, out) == _count(passes)


# ---- write_bitcode -----------------------------------------------------------------------------


def test_write_bitcode_writes_the_module_as_it_is_now(passes, counter, tmp_path):
    passes.reset(options={"benchmark": "generator://csmith-v0/2"})
    initial = _count(passes)
    start = passes.write_bitcode(tmp_path / "start.bc")
    assert start == tmp_path / "start.bc" and start.read_bytes()[:4] == b"BC\xc0\xde"
    passes.multistep([passes.action_index(f) for f in ("-mem2reg", "-instcombine", "-gvn")])
    now = passes.write_bitcode(str(tmp_path / "now.bc"))
    assert _count(passes) < initial
    assert _count_file(counter, start) == initial
    assert _count_file(counter, now) == _count(passes)
    dis = subprocess.run(["llvm-dis-19", str(now), "-o", "-"], capture_output=True, check=True)
    assert b"define" in dis.stdout
    (tmp_path / "link").symlink_to(tmp_path / "target")
    passes.write_bitcode(tmp_path / "link")  # the link is replaced, never followed
    assert not (tmp_path / "target").exists() and not (tmp_path / "link").is_symlink()


def test_write_bitcode_needs_an_episode(tmp_path):
    env = optgym.make(PASSES_ID).unwrapped
    with pytest.raises(RuntimeError, match=r"call reset\(\) before write_bitcode"):
        env.write_bitcode(tmp_path / "x.bc")
    env.reset(options={"benchmark": "generator://csmith-v0/1"})
    env.close()
    with pytest.raises(RuntimeError, match="the env is closed"):
        env.write_bitcode(tmp_path / "x.bc")
    assert not (tmp_path / "x.bc").exists()


# ---- multistep ---------------------------------------------------------------------------------


def test_multistep_is_several_steps_in_one_call(passes):
    actions = [passes.action_index(f) for f in ("-sroa", "-gvn", "-simplifycfg", "-dce")]
    passes.reset(options={"benchmark": "generator://csmith-v0/3"})
    one_by_one = passes.fork()
    try:
        obs, reward, terminated, truncated, info = passes.multistep(actions)
        rewards = [one_by_one.step(a)[1] for a in actions]
        assert np.array_equal(obs, one_by_one.observation["IrInstructionCount"])
        assert reward == pytest.approx(sum(rewards)) and reward > 0
        assert not terminated and not truncated
        assert info["compilations"] == len(actions) == info["steps"] == passes.episode_work
        assert passes.state.actions == actions == one_by_one.state.actions
        assert passes.validate().ok
    finally:
        one_by_one.close()


def test_multistep_refuses_bad_actions_and_keeps_those_taken(passes):
    passes.reset(options={"benchmark": "generator://csmith-v0/3"})
    with pytest.raises(ValueError, match="at least one action"):
        passes.multistep([])
    with pytest.raises(ValueError, match="iterable of actions"):
        passes.multistep("-sroa")
    with pytest.raises(ValueError, match="out of range"):
        passes.multistep([3, 500, 4])
    assert passes.state.actions == [3]


def test_multistep_stops_when_the_budget_is_spent():
    env = BudgetWrapper(optgym.make(PASSES_ID, step_limit=False), Budget(calls=3))
    try:
        env.reset(options={"benchmark": "generator://csmith-v0/1"})
        _, _, terminated, truncated, info = env.unwrapped.multistep([1, 2, 3, 4, 5])
        assert truncated and not terminated and info["steps"] == 3
        assert env.meter.used()["calls"] == 3 and env.meter.used()["steps"] == 3
        assert env.unwrapped.state.actions == [1, 2, 3]
        with pytest.raises(BudgetExceeded):
            env.unwrapped.multistep([6])
    finally:
        env.close()


def test_multistep_stops_at_the_end_of_the_episode():
    env = gym.make(CLOSED_ID)
    try:
        env.reset(options={"benchmark": "benchmark://nav2d-v0/wall"})
        horizon = env.unwrapped.nav.horizon
        stay = [np.zeros(2)] * (horizon + 50)
        _, reward, terminated, truncated, info = env.unwrapped.multistep(stay)
        assert truncated and not terminated and info["steps"] == horizon
        assert info["plan_evaluations"] == horizon and reward == 0.0
        with pytest.raises(RuntimeError, match="episode is over"):
            env.unwrapped.multistep(stay)
    finally:
        env.close()


# ---- env.benchmark = uri -----------------------------------------------------------------------


def test_setting_the_benchmark_names_the_next_reset():
    env = gym.make(CLOSED_ID)
    u = env.unwrapped
    open_, wall, maze = (f"benchmark://nav2d-v0/{m}" for m in ("open", "wall", "maze"))
    try:
        u.benchmark = wall  # before the first reset it is the one the reset takes
        assert u.benchmark == wall
        assert env.reset()[1]["benchmark"] == wall
        env.reset(options={"benchmark": open_})
        env.step(np.array([0.5, 0.0]))
        u.benchmark = maze
        assert u.benchmark == open_ and u.state.benchmark == open_  # the episode keeps its own
        assert env.reset()[1]["benchmark"] == maze and u.state.benchmark == maze
        assert env.reset()[1]["benchmark"] == maze  # later resets keep the one they loaded
        u.benchmark = wall
        assert env.reset(options={"benchmark": open_})[1]["benchmark"] == open_  # option wins
        assert env.reset()[1]["benchmark"] == open_  # and the setting was used up
    finally:
        env.close()


@pytest.mark.parametrize("env_id", optgym.ENV_IDS)
def test_a_bad_benchmark_is_refused_when_set(env_id):
    env = gym.make(env_id)
    u = env.unwrapped
    try:
        before = u.benchmark
        for bad, match in (
            ("no-scheme", "malformed benchmark URI"),
            ("generator://nope-v0/1", "unknown dataset"),
            ("file:///no/such/file.bc", "not found"),
            (3, "must be a URI string"),
        ):
            with pytest.raises(ValueError, match=match):
                u.benchmark = bad
        assert u.benchmark == before
        u.benchmark = before  # the env's own default is accepted
    finally:
        env.close()


# ---- env.datasets[...] -------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", optgym.ENV_IDS)
def test_datasets_are_indexed_by_name_and_uri(env_id):
    env = gym.make(env_id)
    datasets = env.unwrapped.datasets
    try:
        assert len(datasets) == len(list(datasets)) >= 1
        assert datasets.keys() == [d.uri for d in datasets]
        for d in datasets:
            assert datasets[d.name] is d and datasets[d.uri] is d
            assert datasets[f"{d.uri}/0"] is d  # a benchmark's URI names its dataset
        default = env.unwrapped.default_benchmark
        assert default.startswith(datasets[default].uri)
        for bad in ("nope-v0", "generator://nope-v0", "file:///x.bc", "", 7):
            with pytest.raises(KeyError):
                datasets[bad]
    finally:
        env.close()


# ---- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", optgym.ENV_IDS)
def test_render_modes_are_declared_and_documented(env_id):
    cls = load_env_creator(gym.spec(env_id).entry_point)
    modes = cls.metadata["render_modes"]
    assert isinstance(modes, list)
    if modes:
        assert cls.metadata["render_fps"] > 0
    for mode in modes:
        assert f'``"{mode}"``' in cls.__doc__, f"{env_id} does not document {mode!r}"
    assert ("render" in cls.__doc__) or not modes


def _render_checked(env: gym.Env):
    """``render()``, checked by gymnasium's render checker with its warnings as errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return env_render_passive_checker(env.unwrapped)


@pytest.fixture(scope="module")
def small_ilp(tmp_path_factory) -> str:
    return vertex_cover(tmp_path_factory.mktemp("ilp") / "mvc.mps", n=120, edges=800, seed=1)


def test_lns_renders_the_primal_gap_over_time(small_ilp):
    settings = {"initial_time": 0.1, "subproblem_time": 0.2, "time_budget": 3.0}
    env = gym.make("optgym/ILPNeighborhood-v0", benchmark=small_ilp, render_mode="rgb_array",
                   **settings)  # fmt: skip
    plain = gym.make("optgym/ILPNeighborhood-v0", benchmark=small_ilp, **settings)
    try:
        env.reset(seed=0)
        scores = np.random.default_rng(0).random(env.unwrapped.action_space.shape)
        for _ in range(2):
            env.step(scores)
        image = _render_checked(env)
        assert image.shape == (320, 480, 3) and image.dtype == np.uint8
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # a plot, not a blank
        assert "render_mode" not in env.unwrapped.config
        plain.reset(seed=0)
        assert plain.unwrapped.render() is None
    finally:
        env.close()
        plain.close()


def test_schedule_renders_its_loop_nest_as_text():
    env = gym.make("optgym/ScheduleSearch-v0", mode="model", render_mode="ansi")
    try:
        env.reset(seed=0, options={"benchmark": "benchmark://halide-ops-v0/conv2d-relu-192"})
        assert env.render().endswith("not scheduled yet: relu, conv")
        # relu at root, 8x8 tiles, vectorized by 8, parallel; conv at relu's tile loop
        env.step([0, 3, 3, 0, 0, 2, 0, 1, 0])
        env.step([3, 3, 3, 0, 0, 2, 0, 0, 0])
        text = _render_checked(env)
        assert text.startswith("benchmark://halide-ops-v0/conv2d-relu-192: 2 of 2 stages;")
        lines = text.splitlines()
        assert lines[1] == "realize relu:" and "parallel for" in lines[2]
        depth = {ln.strip(): len(ln) - len(ln.lstrip()) for ln in lines}
        assert depth["realize conv:"] > depth["realize relu:"]  # nested in relu's tile loop
        assert "vectorized x_v in [0, 8):" in depth
        assert "for r in [0, 144) (reduction):" in depth
    finally:
        env.close()
    plain = gym.make("optgym/ScheduleSearch-v0", mode="model")
    try:
        plain.reset(seed=0)
        assert plain.unwrapped.render() is None  # no render_mode: nothing rendered
    finally:
        plain.close()


def test_pass_ordering_renders_its_opt19_command():
    env = optgym.make(PASSES_ID, render_mode="ansi", **COUNTS)
    try:
        env.reset(options={"benchmark": "generator://csmith-v0/1"})
        env.step(env.unwrapped.action_index("-sroa"))
        text = _render_checked(env)
        assert text.splitlines() == [
            env.unwrapped.commandline(),
            f"# IrInstructionCount: {_count(env)}",
        ]
        assert text.startswith("opt-19 -passes='function(sroa)' ")
    finally:
        env.close()


# ---- finite bounds -----------------------------------------------------------------------------


def test_lns_observations_lie_in_their_finite_bounds(small_ilp):
    env = gym.make("optgym/ILPNeighborhood-v0", benchmark=small_ilp, initial_time=0.1,
                   subproblem_time=0.2, time_budget=3.0)  # fmt: skip
    try:
        space = env.observation_space
        assert space["budget_left"].high[0] == 3.0 and space["k_fraction"].high[0] == 1.0
        graph = space["graph"]
        assert (graph.edge_space.low, graph.edge_space.high) == (-1.0, 1.0)
        assert np.isfinite(graph.node_space.high[[0, 3]]).all()
        obs, _ = env.reset(seed=0)
        observations = [obs]
        for seed in range(2):
            scores = np.random.default_rng(seed).random(env.unwrapped.action_space.shape)
            observations.append(env.step(scores)[0])
        for obs in observations:
            assert space.contains(obs)
            assert np.abs(obs["graph"].edges).max() == 1.0  # the bound is reached
    finally:
        env.close()


def test_data_selection_gradient_norms_lie_in_their_bound():
    env = gym.make("optgym/DataSelection-v0")
    try:
        features = env.observation_space["features"]
        assert features.high[0, 75] == pytest.approx(np.sqrt(128), rel=1e-5)
        assert np.isinf(features.high[0, 74])  # a loss has no upper bound
        obs, _ = env.reset(options={"benchmark": "generator://digits-noisy-v0/0"})
        assert env.observation_space.contains(obs)
        obs = env.step(obs["features"][:, 74])[0]
        assert env.observation_space.contains(obs)
    finally:
        env.close()
