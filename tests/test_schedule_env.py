"""ScheduleSearch-v0 on small real Halide pipelines: episodes, masks, measurement, faults."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import gymnasium as gym
import numpy as np
import pytest

import optgym  # noqa: F401
from optgym.datasets.schedule import HalideOpsDataset, RandomDagDataset
from optgym.envs.schedule.actions import (
    AT_TILE,
    COMPONENTS,
    INLINE,
    NVEC,
    ROOT,
    StageSchedule,
    apply_schedule,
    sample_action,
)
from optgym.envs.schedule.measure import MeasureError, Timer

SMALL = "benchmark://halide-ops-v0/matmul-192"
CHAIN = "generator://halide-random-v0/2003"  # a few stencil/pointwise stages


def _ops_uri(family: str) -> str:
    ops = HalideOpsDataset()
    return next(u for u in ops.benchmark_uris("test") if u.split("/")[-1].startswith(family))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = gym.make(
        "optgym/ScheduleSearch-v0", samples=3, baseline_info=False, mode="cache",
        cache_path=tmp_path_factory.mktemp("sched") / "m.sqlite",
    )  # fmt: skip
    yield e.unwrapped
    e.close()


def _random_episode(env, uri: str, seed: int):
    obs, info = env.reset(seed=seed, options={"benchmark": uri})
    rng = np.random.default_rng(seed)
    done = False
    while not done:
        obs, reward, done, _, info = env.step(sample_action(env.masks(), rng))
    return reward, info


def test_episode_schedules_each_stage_then_measures(env):
    obs, info = env.reset(options={"benchmark": CHAIN})
    n = len(env.stage_names)
    assert obs.shape == env.observation_space.shape and env.observation_space.contains(obs)
    assert info["action_mask"].shape == (int(NVEC.sum()),)
    assert info["stage"] == env.stage_names[0] == env.pipeline.stages[-1].name
    rng = np.random.default_rng(1)
    for i in range(n):
        obs, reward, terminated, truncated, info = env.step(sample_action(env.masks(), rng))
        assert terminated == (i == n - 1) and not truncated
    assert "error" not in info, info.get("error")
    assert info["runtime_s"] > 0 and np.isclose(reward, np.log(info["naive_s"] / info["runtime_s"]))
    assert env.state.reward == reward and len(env.state.actions) == n


def test_observation_fills_rows_as_stages_are_scheduled(env):
    obs, _ = env.reset(options={"benchmark": CHAIN})
    from optgym.envs.schedule.features import ACQUIRED_NAMES

    scheduled = -len(ACQUIRED_NAMES) + ACQUIRED_NAMES.index("scheduled")
    n = len(env.stage_names)
    assert obs[:n, scheduled].sum() == 0 and not obs[n:].any()
    rng = np.random.default_rng(2)
    a = sample_action(env.masks(), rng)
    peeked = env.peek(a)
    obs, *_ = env.step(a)
    assert obs[0, scheduled] == 1 and obs[1:, scheduled].sum() == 0
    np.testing.assert_array_equal(peeked, obs)


def test_output_stage_must_be_root_and_masked_actions_raise(env):
    env.reset(options={"benchmark": SMALL})
    masks = env.masks()
    assert masks[0].tolist() == [True, False, False, False]  # the output is computed at root
    bad = [INLINE] + [0] * (len(NVEC) - 1)
    with pytest.raises(ValueError, match="compute=1 is masked.*allowed: \\[0\\]"):
        env.step(bad)
    with pytest.raises(ValueError, match="9 components"):
        env.step([0, 0, 0])
    with pytest.raises(ValueError, match="outside"):
        env.step([0, 0, 0, 0, 0, 0, 0, 0, 5])
    for _ in range(20):  # gymnasium's sample() draws legal actions only
        a = env.action_space.sample()
        assert all(m[v] for m, v in zip(masks, a, strict=True))


def test_unknown_benchmark_is_a_clear_error(env):
    with pytest.raises(ValueError, match="unknown benchmark 'nope'.*allowed: matmul"):
        env.reset(options={"benchmark": "benchmark://halide-ops-v0/nope"})
    with pytest.raises(ValueError, match="unknown dataset.*known:.*halide-ops-v0"):
        env.reset(options={"benchmark": "benchmark://tvm-v0/x"})
    env.reset(options={"benchmark": SMALL})  # still usable


def test_same_actions_same_observations_and_fork_is_independent(env):
    env.reset(options={"benchmark": CHAIN})
    rng = np.random.default_rng(3)
    a0 = sample_action(env.masks(), rng)
    obs0, *_ = env.step(a0)
    fork = env.fork()
    a1 = sample_action(fork.masks(), rng)
    fork_obs, *_ = fork.step(a1)
    assert len(fork._actions) == 2 and len(env.state.actions) == 1
    # the fork's action space samples the fork's legal actions (here inlining is legal for
    # the fork's stage, not for the original's)
    assert not env.masks()[0][INLINE] and fork.masks()[0][INLINE]
    fork.action_space.seed(0)
    drawn = [fork.action_space.sample() for _ in range(50)]
    assert all(m[v] for a in drawn for m, v in zip(fork.masks(), a, strict=True))
    assert any(a[0] == INLINE for a in drawn)
    env.reset(options={"benchmark": CHAIN})
    again, *_ = env.step(a0)
    np.testing.assert_array_equal(obs0, again)
    np.testing.assert_array_equal(env.peek(a1), fork_obs)


def test_cache_mode_reuses_measurements(env):
    r1, i1 = _random_episode(env, SMALL, 5)
    r2, i2 = _random_episode(env, SMALL, 5)
    assert not i1["cached"] and i2["cached"] and r1 == r2
    db = sqlite3.connect(env.timer.cache_path)
    cols = [c[1] for c in db.execute("PRAGMA table_info(measurements)")]
    assert cols[:5] == ["pipeline", "schedule", "host", "halide", "threads"]
    host, threads = db.execute("SELECT host, threads FROM measurements LIMIT 1").fetchone()
    assert "x86" in host and threads == 1


def test_state_replays_and_validates(env):
    reward, info = _random_episode(env, CHAIN, 7)
    state = env.state
    assert env.validate(state).ok
    forged = type(state).from_dict(dict(state.to_dict(), reward=state.reward + 1.0))
    result = env.validate(forged)  # the reward no longer agrees with the measured extras
    assert not result.ok and "reward is not log(naive_s / runtime_s)" in result.error
    short = type(state).from_dict(dict(state.to_dict(), actions=state.actions[:-1]))
    result = env.validate(short)
    assert not result.ok and "stages (one action each)" in result.error


def test_a_cache_mode_state_replays_in_cache_mode(env):
    """validate() rebuilds the env from the state's config: an env that measures replays a
    cache-mode state from the same cache (here a stored time 100x too fast, which a new
    measurement could never reproduce)."""
    reward, info = _random_episode(env, CHAIN, 21)
    assert "error" not in info
    cache = env.timer.cache
    stored = cache.get(env.pipeline_json, _jsonable(env._schedules))
    cache.put(env.pipeline_json, _jsonable(env._schedules), type(stored)(**dict(
        stored.__dict__, time_s=stored.time_s / 100, ratio=stored.ratio * 100,
        cached=False)))  # fmt: skip
    faked, info = _random_episode(env, CHAIN, 21)
    assert info["cached"] and faked == pytest.approx(reward + np.log(100))
    state = env.state
    assert state.config["mode"] == "cache" and state.config["samples"] == 3
    assert "mode" not in state.extras and state.extras["runtime_s"] == info["runtime_s"]
    measuring = gym.make("optgym/ScheduleSearch-v0", samples=3, baseline_info=False).unwrapped
    try:
        result = measuring.validate(state)
        assert result.ok and result.reward == pytest.approx(faked) and result.work == 1
    finally:
        measuring.close()


def test_measurements_are_the_work_unit_and_peek_is_free(env):
    from optgym.budget import Budget, BudgetExceeded, BudgetMeter

    meter = BudgetMeter(Budget(calls=3))
    env.attach_meter(meter)
    try:
        obs, info = env.reset(options={"benchmark": CHAIN})
        assert info["measurements"] == 0
        rng = np.random.default_rng(4)
        n = len(env.stage_names)
        for i in range(n):
            a = sample_action(env.masks(), rng)
            env.peek(a)
            *_, info = env.step(a)
            assert info["measurements"] == (1 if i == n - 1 else 0)
        assert meter.calls == 1 and meter.steps == n
        env.reset(options={"benchmark": CHAIN})
        rng = np.random.default_rng(4)
        for _ in range(n):  # the same schedule: a cache hit, charged all the same
            *_, info = env.step(sample_action(env.masks(), rng))
        assert info["cached"] and info["measurements"] == 1 and meter.calls == 2
        env.reset(options={"benchmark": SMALL})
        *_, info = env.apply_reference("naive")
        assert info["measurements"] == 1 and meter.calls == 3 and env.episode_work == 1
        env.reset(options={"benchmark": SMALL})
        measured = env.measured["measurements"]
        with pytest.raises(BudgetExceeded, match="measurements"):
            env.step([0] * len(NVEC))
        with pytest.raises(BudgetExceeded):
            env.apply_reference("naive")
        assert env.state.actions == [] and env.state.reference is None and env._index == 0
        assert env.measured["measurements"] == measured and meter.calls == 3
    finally:
        env.attach_meter(None)


def test_reference_autoschedulers_run_and_replay(env):
    env.reset(options={"benchmark": SMALL})
    _, reward, terminated, _, info = env.apply_reference("Adams2019-beam1")
    assert terminated and "error" not in info and reward > 0  # far faster than naive
    state = env.state
    assert state.reference == "Adams2019-beam1" and state.actions == []
    assert env.validate(state).ok
    env.reset()
    with pytest.raises(ValueError, match="unknown reference 'TVM'.*allowed: naive"):
        env.apply_reference("TVM")
    mixed = type(state).from_dict(dict(state.to_dict(), actions=[[0] * len(NVEC)]))
    result = env.validate(mixed)
    assert not result.ok and "a reference ends the episode" in result.error


def test_halide_compile_error_is_reported_not_raised(tmp_path):
    from optgym.datasets.schedule import load_spec

    ops = RandomDagDataset()
    spec = load_spec(ops.benchmark(CHAIN))
    names = [s.name for s in reversed(spec.stages)]
    full = tuple(1 for _ in spec.stages[-1].shape)
    sched = {n: StageSchedule(ROOT, full, tuple(range(len(full))), 1, 1, False, False)
             for n in names}  # fmt: skip
    # compute a producer inside a consumer that is inlined: Halide rejects the schedule.
    first = spec.stage(names[1])
    dims = len(first.shape)
    sched[names[1]] = StageSchedule(INLINE, (1,) * dims, tuple(range(dims)), 1, 1, False, False)
    producer = spec.stage(names[2])
    pd = len(producer.shape)
    sched[names[2]] = StageSchedule(AT_TILE, (1,) * pd, tuple(range(pd)), 1, 1, False, False)
    timer = Timer(samples=1)
    try:
        with pytest.raises(MeasureError, match="HalideError|Error"):
            timer.measure(spec.to_json(), sched)
        assert timer.measure(spec.to_json(), "naive").time_s > 0  # the same worker goes on
    finally:
        timer.close()


def test_a_crash_in_jit_code_ends_the_episode_and_the_env_recovers(tmp_path):
    e = gym.make("optgym/ScheduleSearch-v0", samples=15, baseline_info=False).unwrapped
    try:
        e.reset(options={"benchmark": SMALL})
        e.apply_reference("naive")  # starts the worker, measures the naive time
        pid = e.timer.worker.pid
        assert pid is not None

        def segfault_soon():
            time.sleep(0.3)
            os.kill(pid, signal.SIGSEGV)

        killer = threading.Thread(target=segfault_soon)
        e.reset()
        killer.start()
        e.timer.samples = 400  # a measurement long enough to be inside JIT code at the kill
        done = False
        while not done:
            *_, terminated, truncated, info = e.step([0, 0, 0, 0, 0, 0, 0, 0, 0])
            done = terminated or truncated
        killer.join()
        # a dead worker is a backend crash: the episode is truncated, not a verdict
        assert truncated and not terminated
        assert "BackendCrash" in info["error"] and "crashed (signal SIGSEGV)" in info["error"]
        assert e.state.reward == 0.0
        e.timer.samples = 3
        reward, info = _random_episode(e, SMALL, 0)
        assert "error" not in info and e.timer.worker.restarts == 1
    finally:
        e.close()


def test_a_wrong_output_is_detected_and_never_rewarded(env, tmp_path):
    """A racy schedule (vector lanes of a reduction writing the same point) gives a wrong
    result; the worker's check catches it, and the env never rewards a schedule whose
    stored measurement says its output was wrong."""
    import halide as hl

    from optgym.datasets.schedule import load_spec
    from optgym.datasets.schedule.ops import input_data, reference_output
    from optgym.envs.schedule.lower import lower
    from optgym.envs.schedule.worker import time_pipeline

    spec = load_spec(env.datasets.benchmark(SMALL))
    low = lower(spec, input_data(spec))
    f = low.funcs[spec.output.name]
    (k,) = low.rvars[spec.output.name]
    f.compute_root()
    f.update(0).allow_race_conditions().reorder(
        [hl.VarOrRVar(v) for v in (k, *low.vars[spec.output.name])]
    ).vectorize(k, 8)
    got = time_pipeline(low, hl.get_jit_target_from_environment(), reference_output(spec), 1)
    assert got["output_ok"] is False

    # The env in cache mode reads a stored measurement that says the output was wrong.
    reward, info = _random_episode(env, SMALL, 11)
    schedules = dict(env._schedules)
    cache = env.timer.cache
    stored = cache.get(env.pipeline_json, _jsonable(schedules))
    cache.put(env.pipeline_json, _jsonable(schedules), type(stored)(**dict(
        stored.__dict__, output_ok=False, cached=False)))  # fmt: skip
    reward, info = _random_episode(env, SMALL, 11)
    assert reward == 0.0 and "wrong output" in info["error"]


def _jsonable(schedules):
    """The cache's key for the env's measurement of ``schedules`` (paired with naive)."""
    from optgym.envs.schedule.measure import paired_key

    return paired_key(schedules, "naive")


def test_action_components_are_documented():
    assert [n for n, _ in COMPONENTS][:2] == ["compute", "split_x"]
    assert apply_schedule.__doc__ and "GuardWithIf" in apply_schedule.__doc__


def test_replay_tolerance_follows_the_spread_of_the_rounds():
    from optgym.envs.schedule.env import (
        REPLAY_TOLERANCE_MIN,
        REWARD_TOLERANCE,
        replay_tolerance,
    )

    assert replay_tolerance(None) == replay_tolerance([2.0, 2.0]) == REWARD_TOLERANCE
    assert replay_tolerance([2.0] * 15) == REPLAY_TOLERANCE_MIN  # rounds that agree
    wide = np.exp(np.linspace(-1.0, 1.0, 15)).tolist()
    assert replay_tolerance(wide) == REWARD_TOLERANCE
    # in between: 3 standard errors of a difference of two medians, from the rounds' MAD
    logs = np.linspace(-0.15, 0.15, 15)
    mad = np.median(np.abs(logs))
    expected = 3.0 * np.sqrt(2.0) * 1.2533 * 1.4826 * mad / np.sqrt(15)
    assert REPLAY_TOLERANCE_MIN < expected < REWARD_TOLERANCE
    assert replay_tolerance(np.exp(logs).tolist()) == pytest.approx(expected)
    assert replay_tolerance([np.nan, 0.0, -1.0, 2.0]) == REWARD_TOLERANCE  # not 3 usable
