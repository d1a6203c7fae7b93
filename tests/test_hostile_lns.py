"""ILPNeighborhood-v0 under hostile input and faults: a killed SCIP worker, a tampered initial
incumbent cache, files that are not MPS/LP (or too large, or changed), bad actions, bad
settings. Each gives a clear error or a correct result, and the env stays usable."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from ilp_instances import lns_env, vertex_cover

import optgym  # noqa: F401
from optgym.datasets.cache import cache_dir
from optgym.datasets.lns import IlpDataset
from optgym.env import BackendCrash
from optgym.envs.lns import problem as problem_module
from optgym.envs.lns.env import INITIAL_CACHE_PURPOSE, ILPNeighborhoodEnv
from optgym.integrity import read_tagged, write_tagged

SECRET = "SECRETx7f3a9c"  # a marker in hostile files: it must never reach the user


def _vertex_cover(path: Path, seed: int = 0) -> str:
    return vertex_cover(path, n=150, edges=1200, seed=seed)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    return _vertex_cover(tmp_path_factory.mktemp("hostile-lns") / "mvc.mps")


@pytest.fixture(scope="module")
def env(small):
    with lns_env(small, subproblem_time=0.1, time_budget=1.5) as e:
        yield e


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    """A private, empty cache: the initial incumbent is computed (and tagged) afresh."""
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))
    return cache_dir()


def _usable(env, small: str) -> None:
    """A good reset and a step work, and the incumbent is feasible."""
    obs, info = env.reset(options={"benchmark": small})
    assert env.benchmark == small and info["objective"] > 0
    _, _, _, _, info = env.step(np.ones(env.problem.n))
    assert "error" not in info
    assert env.problem.violation(env.incumbent) is None


def _kill_later(pid: int, delay: float) -> threading.Thread:
    def kill() -> None:
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


# ---- 1. SCIP runs in a worker process: a crash ends only the episode ------------------------
def test_scip_runs_in_the_worker_and_its_cpu_time_is_counted(env, small):
    env.reset(options={"benchmark": small})
    pid = env.worker_pid
    assert pid is not None and pid != os.getpid()
    fork = env.fork()
    assert fork.worker_pid == pid  # forks share the worker
    env.neighborhood_size = 10**9  # free every variable: a solve that takes its time
    try:
        before, parent0 = env.elapsed, time.process_time()
        _, _, _, _, info = env.step(np.ones(env.problem.n))
        parent = time.process_time() - parent0
    finally:
        env.neighborhood_size = None
    solve = info["times"]["solve"]
    assert solve > 0.05
    # the solve's CPU time is the worker's: it counts in the clock, not in this process
    assert info["elapsed"] - before >= solve
    assert parent < solve
    assert info["times"]["overhead"] >= 0
    fork.step(np.ones(env.problem.n))  # the fork solves in the same worker
    assert env.worker_pid == pid


def test_killed_worker_truncates_the_episode_and_reset_recovers(env, small):
    env.reset(options={"benchmark": small})
    env.step(np.ones(env.problem.n))
    old, folder = env.worker_pid, Path(env._worker._folder)
    assert list(folder.iterdir())  # the worker's copy of the instance
    os.kill(old, signal.SIGKILL)
    obs, reward, terminated, truncated, info = env.step(np.ones(env.problem.n))
    assert truncated and not terminated and reward == 0.0
    assert not folder.exists()  # no copy of the instance is left behind
    assert "BackendCrash" in info["error"] and "SIGKILL" in info["error"]
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.ones(env.problem.n))
    # the next reset starts a new worker and a whole episode runs to its end
    env.reset(options={"benchmark": small})
    assert env.worker_pid not in (None, old)
    done, steps = False, 0
    while not done:
        _, _, terminated, truncated, info = env.step(
            np.random.default_rng(steps).random(env.problem.n)
        )
        assert "error" not in info
        done, steps = terminated or truncated, steps + 1
    assert steps >= 2 and env.problem.violation(env.incumbent) is None
    assert env.validate(env.state).ok


def test_worker_killed_during_a_solve(env, small):
    env.reset(options={"benchmark": small})
    env.neighborhood_size = 10**9
    env.subproblem_time = 3.0
    try:
        thread = _kill_later(env.worker_pid, 0.3)
        start = time.monotonic()
        _, _, _, truncated, info = env.step(np.ones(env.problem.n))
        thread.join()
    finally:
        env.neighborhood_size = None
        env.subproblem_time = 0.1
    assert truncated and "crashed (signal SIGKILL) while solving a sub-MIP" in info["error"]
    assert time.monotonic() - start < 3.0  # noticed at once, not after the time limit
    # an agent's local-branching call on the dead worker is a BackendCrash too
    with pytest.raises(BackendCrash, match="not running"):
        env.problem.local_branching(env.incumbent, 5, relax=True)
    _usable(env, small)
    x = env.lp_features()  # local branching runs in the new worker
    assert x.shape == (env.problem.n,)


def test_worker_killed_during_reset_leaves_the_env_usable(own_cache, small):
    env = ILPNeighborhoodEnv(benchmark=small, initial_time=3.0, subproblem_time=0.1, time_budget=1)
    try:
        env._worker.start()
        thread = _kill_later(env.worker_pid, 0.5)
        with pytest.raises(BackendCrash, match="SIGKILL"):
            env.reset(options={"benchmark": small})  # no cached incumbent: SCIP runs 3 s
        thread.join()
        env.initial_time = 0.2  # a new key: a short initial solve
        _usable(env, small)
    finally:
        env.close()
    assert env.worker_pid is None  # close() ended it


# ---- 2. the cached initial incumbent is tagged and checked --------------------------------
def _initial_path(env) -> Path:
    return env._initial_path()


@pytest.mark.parametrize("tamper", ["edited", "infeasible", "objective", "seconds", "garbage"])
def test_tampered_initial_incumbent_is_recomputed(own_cache, small, tamper):
    env = ILPNeighborhoodEnv(benchmark=small, initial_time=0.2, subproblem_time=0.1)
    try:
        _, info = env.reset()
        genuine = info["objective"]
        path = _initial_path(env)
        data = json.loads(read_tagged(path, INITIAL_CACHE_PURPOSE))
        worse = dict(data, solution=[1.0] * env.problem.n)  # every vertex: feasible, worse
        worse["objective"] = env.problem.objective(np.ones(env.problem.n))
        if tamper == "edited":  # edited in place: its tag no longer matches
            path.write_text(json.dumps(worse))
            match = "integrity tag"
        else:  # a tagged record (a leaked key, a bug) that still does not hold together
            bad = {
                "infeasible": dict(data, solution=[0.0] * env.problem.n, objective=0.0),
                "objective": dict(data, objective=data["objective"] - 1000),
                "seconds": dict(data, seconds=float("nan")),
                "garbage": {"solution": "x"},
            }[tamper]
            write_tagged(path, json.dumps(bad).encode(), INITIAL_CACHE_PURPOSE)
            match = "not used"
        with pytest.warns(UserWarning, match=match):
            _, info = env.reset()
        assert env.problem.violation(env.incumbent) is None
        assert info["objective"] == pytest.approx(env.problem.objective(env.incumbent))
        assert info["objective"] < worse["objective"] and info["objective"] <= genuine * 1.5
        # the recomputed record replaced the bad one: the next reset uses it silently
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, again = env.reset()
        assert again["objective"] == info["objective"]
        env.step(np.ones(env.problem.n))
    finally:
        env.close()


def test_replaced_generated_instance_is_rebuilt(own_cache):
    """A cached generator instance edited on disk is rebuilt, never solved as it is."""
    env = ILPNeighborhoodEnv(initial_time=0.2, subproblem_time=0.1)
    uri = "generator://independent-set-s-v0/3"
    try:
        env.reset(options={"benchmark": uri})
        genuine, n = env.benchmark_sha256, env.problem.n
        path = IlpDataset("independent-set", "s").folder() / "3.mps"
        _vertex_cover(path)  # another valid instance in its place
        env.close()
        env = ILPNeighborhoodEnv(initial_time=0.2, subproblem_time=0.1)  # reads the file
        with pytest.warns(UserWarning, match="integrity tag"):
            env.reset(options={"benchmark": uri})
        assert env.benchmark_sha256 == genuine and env.problem.n == n
        assert env.problem.maximize  # independent set, not the planted vertex cover
    finally:
        env.close()


# ---- 3. instance files ----------------------------------------------------------------------
def _no_leak(capfd, error: Exception) -> None:
    out, err = capfd.readouterr()
    assert SECRET not in str(error) and SECRET not in out and SECRET not in err


def test_bitcode_given_as_an_instance(env, small, tmp_path, capfd):
    env.close()  # the next worker starts here, its fds captured by capfd
    bitcode = b"BC\xc0\xde5\x14\x00\x00\x05\x00\x00\x00b\x0c0$" + SECRET.encode() + bytes(64)
    (tmp_path / "prog.bc").write_bytes(bitcode)
    with pytest.raises(
        ValueError, match=r"prog\.bc is not an MPS or LP file .*allowed: \.mps, \.lp"
    ) as e:
        env.reset(options={"benchmark": f"file://{tmp_path / 'prog.bc'}"})
    _no_leak(capfd, e.value)
    (tmp_path / "prog.mps").write_bytes(bitcode)  # the same bytes under an MPS name
    with pytest.raises(
        ValueError, match=r"prog\.mps is not an MPS or LP file: it holds binary"
    ) as e:
        env.reset(options={"benchmark": f"file://{tmp_path / 'prog.mps'}"})
    _no_leak(capfd, e.value)
    assert "plugin" not in str(e.value)
    _usable(env, small)


@pytest.mark.parametrize(
    "name, text, match",
    [
        (
            "junk.mps",
            f"NAME junk\nROWS\n N obj\n {SECRET} what is this\nCOLUMNS\n x {SECRET} 1\n",
            r"cannot read .*junk\.mps as an MPS/LP file: SCIP's reader rejected it",
        ),
        (
            "junk.lp",
            # SCIP's LP reader prints the token it fails on: here the marker
            f"minimize\n obj: x\nsubject to\n c1: x >= {SECRET}\nend\n",
            r"cannot read .*junk\.lp as an MPS/LP file: SCIP's reader rejected it",
        ),
        (  # SCIP's LP reader takes this as an empty problem
            "shadow.lp",
            f"root:{SECRET}:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n",
            r"shadow\.lp has no variables",
        ),
    ],
)
def test_unparsable_text_is_not_echoed(env, small, tmp_path, capfd, name, text, match):
    (tmp_path / name).write_text(text)
    env.close()  # the next worker starts here, its fds captured by capfd
    with pytest.raises(ValueError, match=match) as e:
        env.reset(options={"benchmark": f"file://{tmp_path / name}"})
    _no_leak(capfd, e.value)
    _usable(env, small)


def test_empty_compressed_and_oversized_files(env, small, tmp_path, monkeypatch):
    (tmp_path / "empty.mps").write_bytes(b"  \n")
    with pytest.raises(ValueError, match=r"empty\.mps is empty"):
        env.reset(options={"benchmark": f"file://{tmp_path / 'empty.mps'}"})
    (tmp_path / "x.mps").write_bytes(b"\x1f\x8b\x08\x00" + bytes(20))
    with pytest.raises(ValueError, match=r"x\.mps is compressed; decompress it first"):
        env.reset(options={"benchmark": f"file://{tmp_path / 'x.mps'}"})
    other = _vertex_cover(tmp_path / "other.mps", seed=1)  # not loaded yet: it is read
    size = Path(other.removeprefix("file://")).stat().st_size
    monkeypatch.setattr(problem_module, "MAX_INSTANCE_BYTES", size - 1)
    with pytest.raises(
        ValueError, match=f"is {size} bytes; instance files are limited to {size - 1}"
    ):
        env.reset(options={"benchmark": other})
    monkeypatch.undo()
    _usable(env, small)


def test_instance_is_read_from_the_verified_bytes(env, small, tmp_path):
    uri = _vertex_cover(tmp_path / "changing.mps", seed=2)
    benchmark = env.datasets.benchmark(uri)  # resolved: its sha256 recorded
    _vertex_cover(tmp_path / "changing.mps", seed=3)  # replaced before it is read
    with pytest.raises(ValueError, match="changed after it was checked"):
        env._reset(benchmark)
    _usable(env, small)


# ---- 4. actions -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "action, problem",
    [
        ("nan", "1 NaN score"),
        ("inf", r"1 \+inf score"),
        ("abc", r"must hold numbers, got an array of dtype <U3 \(str\)"),
        ("short", r"shape \(150,\); got shape \(3,\)"),
        ("matrix", r"got shape \(150, 1\)"),
        (True, r"must hold numbers, not booleans \(a mask\)"),
        ("bools", r"must hold numbers, not booleans \(a mask\)"),
        ("strings", "must hold numbers, got an array of dtype <U"),
        ("objects", "must hold numbers, got an array of dtype object"),
        ("complex", "must hold numbers, got an array of dtype complex"),
        ("ragged", "must be an array of numbers|dtype object"),
        (None, r"must hold numbers, got an array of dtype object \(NoneType\)"),
    ],
)
def test_bad_actions_name_the_problem(env, small, action, problem):
    env.reset(options={"benchmark": small})
    n = env.problem.n
    values = {
        "nan": np.where(np.arange(n) == 4, np.nan, 1.0),
        "inf": np.where(np.arange(n) == 4, np.inf, 1.0),
        "short": np.ones(3),
        "matrix": np.ones((n, 1)),
        "bools": np.ones(n, dtype=bool),
        "strings": ["1.0"] * n,
        "objects": [1.0] * (n - 1) + [None],
        "complex": np.ones(n, dtype=complex),
        "ragged": [[1.0], [1.0, 2.0]],
    }
    bad = values.get(action, action) if isinstance(action, str) else action
    with pytest.raises(ValueError, match=problem) as e:
        env.step(bad)
    message = str(e.value)
    assert "allowed: an array of shape (150,) of real scores" in message
    assert "could not convert" not in message
    scores = np.ones(n)
    scores[:10] = -np.inf  # -inf is allowed: never freed
    _, _, _, _, info = env.step(scores)
    assert "error" not in info


# ---- 5. settings --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"time_budget": float("inf")}, "time_budget must be a positive, finite number"),
        ({"subproblem_time": float("nan")}, "subproblem_time must be a positive, finite"),
        ({"initial_time": "5"}, "initial_time must be a positive, finite"),
        ({"k_growth": float("inf")}, "k_growth must be a finite number"),
        ({"scip_seed": True}, "scip_seed must be an integer"),
        ({"scip_seed": 2**40}, r"scip_seed must be in \[0, 2147483647\]"),
        ({"scip_seed": -1}, r"scip_seed must be in \[0, 2147483647\]"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ILPNeighborhoodEnv(**kwargs)


def test_bad_agent_controls(env):
    for value in (float("nan"), 0.0, float("inf"), "1"):
        with pytest.raises(ValueError, match="subproblem_time must be a positive, finite"):
            env.subproblem_time = value
    for value in (0, -3, True, 2.5, "5"):
        with pytest.raises(ValueError, match="neighborhood_size must be"):
            env.neighborhood_size = value
    assert env.subproblem_time == 0.1 and env.neighborhood_size is None


def test_nan_in_a_state_fails_validation(env, small):
    """NaN compares false with everything: a NaN gap or primal integral used to pass. A
    genuine state's extras are what its replay holds."""
    from optgym.state import EpisodeState

    env.reset(options={"benchmark": small})
    env.step(np.ones(env.problem.n))
    state = env.state
    assert env.validate(state).ok
    env.apply(state)  # the replay holds the extras the state claims (its clock aside)
    assert env.check_extras(json.loads(state.to_json())["extras"], {}) is None
    for change, match in [
        (lambda s: s.extras["trace"][0].__setitem__(2, float("nan")), "gap nan"),
        (lambda s: s.extras.update(cpu_seconds=-1.0), "cpu_seconds -1.0 must be"),
        (lambda s: s.extras.update(cpu_seconds="1"), "cpu_seconds '1' must be"),
        (lambda s: s.extras.update(primal_integral=float("nan")), "claimed primal integral nan"),
        (lambda s: s.extras.update(primal_integral=True), "claimed primal integral True"),
    ]:
        bad = EpisodeState.from_dict(json.loads(state.to_json()))
        change(bad)
        result = env.validate(bad)
        assert not result.ok and match in result.error, (match, result.error)
