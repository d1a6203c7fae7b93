"""PassOrdering-v0 end to end: spaces, rewards, references, determinism, fork, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import optgym
from optgym.envs.passes import actions as pass_actions
from optgym.envs.passes.compilergym_csv import read_csv, write_csv
from optgym.envs.passes.spaces import AUTOPHASE_NAMES, OBSERVATION_SPACES, REWARD_SPACES

SMALL = "generator://csmith-v0/5"  # about 200 instructions
MEDIUM = "generator://csmith-v0/6"  # about 1,100 instructions


@pytest.fixture(scope="module")
def env():
    e = gym.make("optgym/PassOrdering-v0")
    yield e.unwrapped
    e.close()


def test_episode_reduces_instructions(env):
    obs, info = env.reset(options={"benchmark": MEDIUM})
    assert info["benchmark"] == MEDIUM
    assert obs.shape == (56,) and obs.dtype == np.int64
    start = env.observation["IrInstructionCount"][0]
    assert start == obs[51]  # Autophase's TotalInsts
    total = 0.0
    for flag in ("-mem2reg", "-instcombine", "-simplifycfg", "-gvn", "-dce"):
        obs, reward, terminated, truncated, info = env.step(env.action_index(flag))
        assert not terminated and not truncated
        assert info["action"] == flag
        total += reward
    end = env.observation["IrInstructionCount"][0]
    oz = env.observation["IrInstructionCountOz"][0]
    assert end < start
    assert total == pytest.approx((start - end) / (start - oz))
    assert env.episode_reward == pytest.approx(total)


def test_every_observation_space_is_in_its_space(env):
    env.reset(options={"benchmark": SMALL})
    env.step(env.action_index("-mem2reg"))
    for name, (space, _, _) in OBSERVATION_SPACES.items():
        value = env.observation[name]
        assert space.contains(value), name
    ic = env.observation["InstCount"]
    assert ic[0] == env.observation["IrInstructionCount"][0] == ic[3:].sum()
    graph = env.observation["Programl"]
    instructions = int((graph.x[:, 0] == 0).sum())
    assert instructions == ic[0]
    assert set(graph.edge_attr[:, 0].tolist()) <= {0, 1, 2}
    assert "define" in env.observation["Ir"]


@pytest.mark.parametrize("reward_space", list(REWARD_SPACES))
def test_reference_agent_scores_one_on_normalized_rewards(reward_space):
    e = gym.make("optgym/PassOrdering-v0", reward_space=reward_space).unwrapped
    try:
        e.reset(options={"benchmark": MEDIUM})
        space = REWARD_SPACES[reward_space]
        cost = "IrInstructionCount" if space.cost == "IrInstructionCount" else "ObjectTextSize"
        start = int(e.observation[space.cost][0])
        reward = e.apply_reference(space.reference or "Oz")[1]
        if space.reference:
            ref = int(e.observation[f"{cost}{space.reference}"][0])
            # CompilerGym's normalization: 1.0 when the reference shrinks the program
            # (always for -Oz); -O3 can grow it, and then the norm is 1.
            assert reward == pytest.approx((start - ref) / max(start - ref, 1))
            if space.reference == "Oz":
                assert reward == pytest.approx(1.0)
        else:
            assert reward == start - int(e.observation[space.cost][0]) > 0
    finally:
        e.close()


def _opt_oz_count(env, bitcode: Path, tmp: Path) -> tuple[int, int]:
    """(instructions of opt-19's -Oz output counted in process, and by func-properties)."""
    out = tmp / "oz.bc"
    subprocess.run(["opt-19", "-passes=default<Oz>", str(bitcode), "-o", str(out)], check=True)
    props = subprocess.run(
        ["opt-19", "-passes=print<func-properties>", "-disable-output", str(out)],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    by_props = sum(
        int(line.split(":")[1]) for line in props.splitlines() if "TotalInstructionCount" in line
    )
    env.reset(options={"benchmark": f"file://{out}"})
    return int(env.observation["IrInstructionCount"][0]), by_props


def test_oz_reference_equals_opt_on_20_csmith_test_programs(env, tmp_path):
    uris = env.datasets.dataset("generator://csmith-v0").take("test", 20)
    for uri in uris:
        bench = env.datasets.benchmark(uri)
        env.reset(options={"benchmark": uri})
        ours = int(env.observation["IrInstructionCountOz"][0])
        in_process, by_props = _opt_oz_count(env, bench.path, tmp_path)
        assert ours == in_process == by_props, uri


def test_seeded_episodes_are_deterministic(env):
    def run() -> list:
        obs, _ = env.reset(seed=3, options={"benchmark": MEDIUM})
        out = [obs.copy()]
        rng = np.random.default_rng(7)
        for a in rng.integers(0, 124, size=25):
            obs, reward, *_ = env.step(int(a))
            out.append((obs.copy(), reward))
        return out

    first, second = run(), run()
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first[1:], second[1:], strict=True))
    assert [r for _, r in first[1:]] == [r for _, r in second[1:]]


def test_fork_is_independent(env):
    env.reset(options={"benchmark": MEDIUM})
    env.step(env.action_index("-mem2reg"))
    fork = env.fork()
    try:
        assert fork.state == env.state
        before = env.observation["IrInstructionCount"][0]
        fork.step(fork.action_index("-instcombine"))
        assert fork.observation["IrInstructionCount"][0] < before
        assert env.observation["IrInstructionCount"][0] == before
        # The fork matches a fresh replay of the same actions exactly.
        env.step(env.action_index("-instcombine"))
        assert env.state == fork.state
        assert np.array_equal(env.observation["Autophase"], fork.observation["Autophase"])
    finally:
        fork.close()


def test_state_validates_and_survives_compilergym_csv(env, tmp_path):
    env.reset(options={"benchmark": MEDIUM})
    for flag in ("-sroa", "-gvn", "-simplifycfg", "-inline", "-dce"):
        env.step(env.action_index(flag))
    state = env.state
    assert env.validate(state).ok
    path = tmp_path / "states.csv"
    write_csv([state], path)
    assert "opt -sroa -gvn -simplifycfg -inline -dce input.bc -o output.bc" in path.read_text()
    (back,) = read_csv(path)
    assert back == state
    assert env.validate(back).ok
    tampered = type(state)(**{**state.to_dict(), "reward": state.reward + 0.01})
    result = env.validate(tampered)
    assert not result.ok and "claimed reward" in str(result)


def test_reference_state_replays(env):
    env.reset(options={"benchmark": SMALL})
    env.apply_reference("Oz")
    env.step(env.action_index("-instcombine"))
    state = env.state
    assert state.reference == "Oz"
    assert env.validate(state).ok
    assert env.commandline().startswith(
        "opt-19 -passes='default<Oz>,invalidate<all>,invalidate<globals-aa>,"
        "function(instcombine<no-verify-fixpoint>)' "
    )


# ---- bad input ---------------------------------------------------------------------------


def test_unknown_env_id():
    with pytest.raises(ValueError, match="optgym/Nope-v0.*PassOrdering-v0"):
        optgym.make("optgym/Nope-v0")
    with pytest.raises(gym.error.Error, match="Nope"):
        gym.make("optgym/Nope-v0")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"observation_space": "Autofase"}, "Autofase.*allowed: Ir, InstCount, Autophase"),
        ({"reward_space": "Size"}, "Size.*allowed: IrInstructionCount"),
    ],
)
def test_unknown_spaces(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("optgym/PassOrdering-v0", **kwargs)


@pytest.mark.parametrize(
    "uri, match",
    [
        ("csmith-v0/1", "malformed benchmark URI"),
        ("http://csmith-v0/1", "unknown URI scheme 'http'"),
        ("generator://csmith/1", "malformed dataset 'csmith'"),
        ("generator://csmith-v0/abc", "needs a seed after the dataset"),
        ("generator://nosuch-v0/1", "unknown dataset 'generator://nosuch-v0'.*csmith-v0"),
        ("benchmark://debian-v0/gzip", "unknown package 'gzip' in debian-v0; allowed: bzip2"),
        ("file:///no/such/file.bc", "not found"),
    ],
)
def test_bad_benchmark_uris(env, uri, match):
    with pytest.raises(ValueError, match=match):
        env.reset(options={"benchmark": uri})


def test_bad_actions(env):
    env.reset(options={"benchmark": SMALL})
    for bad in (124, -1, 1000):
        with pytest.raises(ValueError, match=r"out of range; allowed: 0 <= action < 124"):
            env.step(bad)
    for bad in (1.5, "sroa", None, True):
        with pytest.raises(ValueError, match="action must be an integer"):
            env.step(bad)
    with pytest.raises(ValueError, match="unknown pass flag '-nosuchpass'"):
        env.action_index("-nosuchpass")
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"benchmarks": SMALL})


def test_corrupt_file_gives_clear_error_and_env_stays_usable(env, tmp_path):
    junk = tmp_path / "junk.bc"
    junk.write_bytes(b"BC\xc0\xde" + os.urandom(300))
    with pytest.raises(ValueError, match="cannot load benchmark .* as LLVM bitcode"):
        env.reset(options={"benchmark": f"file://{junk}"})
    text = tmp_path / "notes.txt"
    text.write_text("this is not LLVM IR\n")
    with pytest.raises(ValueError, match="as textual LLVM IR"):
        env.reset(options={"benchmark": f"file://{text}"})
    obs, _ = env.reset(options={"benchmark": SMALL})
    assert env.step(0)[4].get("error") is None


# ---- faults --------------------------------------------------------------------------------


def test_llvm_fatal_error_ends_episode_and_next_reset_works(env, monkeypatch):
    env.reset(options={"benchmark": MEDIUM})
    # loop(licm) without MemorySSA makes LLVM 19 stop with "LLVM ERROR: LICM requires
    # MemorySSA": a real fatal error inside LLVM, in the worker.
    broken = list(pass_actions.PIPELINES)
    broken[0] = "loop(licm)"
    monkeypatch.setattr(pass_actions, "PIPELINES", tuple(broken))
    obs, reward, terminated, truncated, info = env.step(0)
    assert truncated and reward == 0.0
    assert "LICM requires MemorySSA" in info["error"]
    with pytest.raises(RuntimeError, match="episode ended with an error"):
        env.step(1)
    monkeypatch.undo()
    env.reset()
    assert env.step(env.action_index("-mem2reg"))[4].get("error") is None


def test_real_llvm_crash_in_an_action_is_contained(env):
    # LLVM 19.1.7's scalarizer segfaults on this llvm-stress program (opt-19 crashes too).
    env.reset(options={"benchmark": "generator://llvm-stress-v0/3"})
    obs, reward, terminated, truncated, info = env.step(env.action_index("-scalarizer"))
    assert truncated and "killed by SIGSEGV" in info["error"]
    env.reset()  # same benchmark, a new worker
    assert env.step(env.action_index("-sroa"))[4].get("error") is None


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV])
def test_worker_killed_mid_episode(env, sig):
    env.reset(options={"benchmark": MEDIUM})
    env.step(env.action_index("-mem2reg"))
    os.kill(env._session.pid, sig)
    obs, reward, terminated, truncated, info = env.step(env.action_index("-gvn"))
    assert truncated and "LLVM worker died" in info["error"]
    env.reset()
    obs, reward, *_ = env.step(env.action_index("-mem2reg"))
    assert reward > 0


def test_a_step_outlasting_the_budget_seconds_is_killed_then(env):
    """Under a seconds budget a pass runs at most until the seconds and their grace run
    out: then the worker is killed, the episode ends with the reason, the next reset works,
    and an env without a meter keeps its own timeout."""
    from optgym.budget import Budget
    from optgym.wrappers import BudgetWrapper

    wrapped = BudgetWrapper(env, Budget(seconds=5.0))
    try:
        wrapped.reset(options={"benchmark": "benchmark://debian-v0/zlib"})
        assert wrapped.step(env.action_index("-mem2reg"))[4].get("error") is None
        # 0.502 s of the seconds and their grace (1 s) left: 2 ms past the kill margin
        env.meter.start = time.monotonic() - (5.0 + 1.0 - 0.502)
        obs, reward, terminated, truncated, info = wrapped.step(env.action_index("-gvn"))
        assert truncated and "timed out" in info["error"]
    finally:
        wrapped.detach()
    assert env._session is None or env._session.timeout == env.timeout
    env.reset(options={"benchmark": MEDIUM})
    assert env._session.timeout == env.timeout
    assert env.step(env.action_index("-mem2reg"))[1] > 0


def test_missing_libllvm_names_library_and_install_command():
    code = (
        "import gymnasium as gym, optgym\n"
        "env = gym.make('optgym/PassOrdering-v0')\n"
        "env.reset(options={'benchmark': 'generator://csmith-v0/5'})\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "OPTGYM_LLVM_PREFIX": "/nonexistent/llvm-19"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "/nonexistent/llvm-19/lib/libLLVM-19.so" in proc.stderr
    assert "apt-get install llvm-19" in proc.stderr


def test_autophase_agrees_with_opt_func_properties(env, tmp_path):
    """Block, load and store counts against LLVM's own analysis, on -Oz output (which has
    no unreachable blocks, the only ones func-properties skips)."""
    for uri in (SMALL, MEDIUM, "generator://csmith-v0/1"):
        bench = env.datasets.benchmark(uri)
        out = tmp_path / "oz.bc"
        subprocess.run(
            ["opt-19", "-passes=default<Oz>", str(bench.path), "-o", str(out)], check=True
        )
        props = subprocess.run(
            ["opt-19", "-passes=print<func-properties>", "-disable-output", str(out)],
            capture_output=True, text=True, check=True,
        ).stderr  # fmt: skip
        totals: dict[str, int] = {}
        for line in props.splitlines():
            key, sep, value = line.partition(": ")
            if sep and value.strip().lstrip("-").isdigit():
                totals[key] = totals.get(key, 0) + int(value)
        env.reset(options={"benchmark": f"file://{out}"})
        ap = dict(zip(AUTOPHASE_NAMES, env.observation["Autophase"].tolist(), strict=True))
        assert ap["TotalBlocks"] == totals["BasicBlockCount"], uri
        assert ap["NumLoadInst"] == totals["LoadInstCount"], uri
        assert ap["NumStoreInst"] == totals["StoreInstCount"], uri
        assert ap["TotalInsts"] == totals["TotalInstructionCount"], uri


# ---- trying every action from one state in one request (issue 25) ------------------------


def test_try_actions_gives_each_action_s_reward_as_a_step_on_a_fork_would(env):
    env.reset(options={"benchmark": SMALL})
    env.step(env.action_index("-mem2reg"))
    before = env.observation["IrInstructionCount"][0]
    work = env.episode_work
    tried = env.try_actions(list(range(env.action_space.n)))
    assert tried.shape == (env.action_space.n,) and not np.isnan(tried).any()
    assert env.episode_work == work + env.action_space.n  # one compilation each
    assert env.observation["IrInstructionCount"][0] == before  # nothing was taken
    assert len(env.state.actions) == 1
    for action in range(0, env.action_space.n, 7):
        trial = env.fork()
        try:
            assert trial.step(action)[1] == tried[action], pass_actions.FLAGS[action]
        finally:
            trial.close()


def test_try_actions_contains_a_crash_to_its_own_copy(env):
    env.reset(options={"benchmark": "generator://llvm-stress-v0/3"})
    crash = env.action_index("-scalarizer")  # segfaults in LLVM 19.1.7 on this program
    tried = env.try_actions([env.action_index("-sroa"), crash, env.action_index("-dce")])
    assert np.isnan(tried[1]) and not np.isnan(tried[[0, 2]]).any()
    obs, reward, terminated, truncated, info = env.step(env.action_index("-sroa"))
    assert "error" not in info and reward == tried[0]


def test_try_actions_refuses_bad_input_and_an_over_budget_batch(env):
    from optgym.budget import Budget, BudgetExceeded
    from optgym.wrappers import BudgetWrapper

    env.reset(options={"benchmark": SMALL})
    for bad in ([1.5], [-1], [124], "abc", 7, [True]):
        with pytest.raises(ValueError, match="action|sequence"):
            env.try_actions(bad)
    for bad in (float("nan"), "1", True, [1.0]):
        with pytest.raises(ValueError, match="seconds must be a number of seconds"):
            env.try_actions([0], bad)
    assert env.episode_work == 0
    assert np.isnan(env.try_actions([0, 1], -1.0)).all()  # no time: nothing runs or counts
    assert env.episode_work == 0
    assert env.try_actions([]).shape == (0,)
    wrapped = BudgetWrapper(env, Budget(calls=5))
    try:
        wrapped.reset(options={"benchmark": SMALL})
        with pytest.raises(BudgetExceeded):
            env.try_actions(list(range(6)))
        assert env.meter.calls == 0  # refused whole: nothing ran
        assert env.try_actions(list(range(5))).shape == (5,)
        assert env.meter.calls == 5
    finally:
        wrapped.detach()


def _llvm_workers() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"optgym-llvm-worker\0"):
                    pids.add(int(entry.name))
            except OSError:
                pass
    return pids


def _until_gone(pids: set[int], seconds: float) -> set[int]:
    """``pids`` still running (zombies are gone) after waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    left = pids
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = pids & _llvm_workers()
    return left


def test_try_actions_stops_at_its_time_limit_and_the_episode_goes_on():
    e = gym.make("optgym/PassOrdering-v0", reward_space="IrInstructionCount").unwrapped
    try:
        e.reset(options={"benchmark": "benchmark://debian-v0/lua5.4"})
        e.set_step_timeout(0.3)
        before = _llvm_workers()
        start = time.monotonic()
        slow = [e.action_index("-attributor")] * 4  # 9 s each on lua
        tried = e.try_actions(slow + [e.action_index("-sroa")])
        assert time.monotonic() - start < 3.0
        assert np.isnan(tried).all()  # killed at the limit, or never started
        assert not _until_gone(_llvm_workers() - before, 2.0)  # no copy outlived it
        e.set_step_timeout(600)
        assert "error" not in e.step(e.action_index("-sroa"))[4]  # the episode goes on
    finally:
        e.close()


def test_try_actions_copies_die_with_their_worker():
    import threading

    e = gym.make("optgym/PassOrdering-v0", reward_space="IrInstructionCount").unwrapped
    try:
        e.reset(options={"benchmark": "benchmark://debian-v0/lua5.4"})
        before = _llvm_workers()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                e.try_actions([e.action_index("-attributor")] * 4)
            except RuntimeError as err:
                errors.append(err)

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(1.0)
        copies = _llvm_workers() - before
        assert copies  # the attributor runs on two copies
        os.kill(e._session.pid, signal.SIGKILL)
        thread.join(30)
        assert errors and "LLVM worker died" in str(errors[0])
        assert not _until_gone(copies, 2.0)  # the copies would run for 8 s more
    finally:
        e.close()


def test_a_pass_sequence_is_one_compilation_and_the_same_module_as_its_steps(env, tmp_path):
    flags = ("-sroa", "-instcombine", "-gvn", "-simplifycfg", "-dce")
    seq = [env.action_index(f) for f in flags]
    env.reset(options={"benchmark": MEDIUM})
    for a in seq:
        env.step(a)
    stepped, count = env.episode_reward, env.observation["IrInstructionCount"][0]
    env.reset(options={"benchmark": MEDIUM})
    _, reward, _, _, info = env.step(seq)
    assert info["compilations"] == 1 and info["action"] == " ".join(flags)
    assert env.episode_work == 1
    assert env.observation["IrInstructionCount"][0] == count
    assert reward == pytest.approx(stepped, rel=1e-12) and env.episode_reward == stepped
    env.step(env.action_index("-mem2reg"))
    state = env.state
    assert state.actions == [seq, env.action_index("-mem2reg")]
    result = env.validate(state)
    assert result.ok and result.work == 2
    assert "-sroa -instcombine -gvn -simplifycfg -dce -mem2reg input.bc" in "\n".join(
        [write_csv([state], tmp_path / "s.csv") or (tmp_path / "s.csv").read_text()]
    )
    assert "function(sroa)" in env.commandline()


def test_bad_pass_sequences_are_refused(env):
    env.reset(options={"benchmark": SMALL})
    for bad, match in (
        ([], "a pass sequence must hold 1 to 1000 passes, got 0"),
        ([1] * 1001, "a pass sequence must hold 1 to 1000 passes, got 1001"),
        ([1, [2]], "holds passes \\(integers\\), not sequences"),
        ([1, 124], "out of range; allowed: 0 <= action < 124"),
        ([1, "sroa"], "action must be an integer"),
    ):
        with pytest.raises(ValueError, match=match):
            env.step(bad)
    assert env.state.actions == []
    with pytest.raises(ValueError, match="try_actions tries single passes"):
        env.try_actions([[1, 2]])


def test_a_compilation_past_the_per_call_cap_ends_the_episode_under_a_calls_only_budget():
    from optgym.agents import make_agent
    from optgym.budget import Budget, BudgetMeter
    from optgym.envs.passes.env import CALL_SECONDS

    assert CALL_SECONDS == 20.0
    e = gym.make("optgym/PassOrdering-v0").unwrapped
    try:
        e.call_seconds = 1e-6  # every compilation runs past it
        e.attach_meter(BudgetMeter(Budget(calls=10)))
        e.reset(options={"benchmark": MEDIUM})
        info = e.step(e.action_index("-inline"))[4]
        assert "timed out" in info["error"] and "the per-call cap: 1e-06 s" in info["error"]
        e.reset(options={"benchmark": MEDIUM})  # a new worker; tries are capped too
        assert np.isnan(e.try_actions([0, 1])).all()
        e.attach_meter(None)
        # a budget with seconds bounds each call by its own seconds, not by the cap
        e.attach_meter(BudgetMeter(Budget(calls=10, seconds=60)))
        e.reset(options={"benchmark": MEDIUM})
        assert "error" not in e.step(e.action_index("-inline"))[4]
        e.attach_meter(None)
        # an agent under a calls-only budget returns in its time, with a valid result
        start = time.monotonic()
        for name in ("random", "ppo-gnn"):  # ppo-gnn observes through NamedObservation
            result = make_agent(name).solve(e, MEDIUM, Budget(calls=20), seed=0)
            assert result.budget_used["calls"] <= 20
            e.attach_meter(None)
            assert e.validate(result.state).ok
        assert time.monotonic() - start < 60
    finally:
        e.close()
