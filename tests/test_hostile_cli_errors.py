"""Hostile settings for ``optgym train`` and ``optgym bench`` (an algorithm setting SB3 would
crash on, an env setting the env does not take, a thread or episode count out of range) and
misuse of an env (a mask before reset, a fork after close): each is one clear error naming
the bad value and what is allowed, before anything runs, never a traceback."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import optgym
from optgym.bench import MAX_EPISODES, benchmark_uris
from optgym.cli import main

NAV = "optgym/PathPlanning2DClosedLoop-v0"
PASSES = "optgym/PassOrdering-v0"
CPUS = os.cpu_count() or 1


def _one_error(err: str, command: str) -> str:
    """The one error line of ``err`` (warnings aside); fails on a traceback or more lines."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith(f"optgym {command}: error: "), err
    return lines[0]


def _train(tmp_path: Path, *argv: str) -> list[str]:
    return ["train", *argv, "--out", str(tmp_path / "out"), "--no-progress"]


# --- algorithm settings (C2) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "setting", "message"),
    [
        (NAV, "n_epochs=-1", r"n_epochs must be an integer >= 1, got -1 \(from --set\)"),
        (NAV, "n_epochs=0", "n_epochs must be an integer >= 1, got 0"),
        (NAV, "n_steps=2.5", "n_steps must be an integer >= 1, got 2.5"),
        (NAV, "batch_size=0", "batch_size must be an integer >= 1, got 0"),
        (NAV, "gamma=1.5", r"gamma must be a number in \[0, 1\], got 1.5"),
        (NAV, "gae_lambda=-0.1", r"gae_lambda must be a number in \[0, 1\], got -0.1"),
        (NAV, "learning_rate=0", "learning_rate must be a number > 0 .*, got 0"),
        (NAV, "learning_rate=.nan", "learning_rate must be a number > 0 .*, got nan"),
        (NAV, "learning_rate=fast", "learning_rate must be a number > 0 .*, got 'fast'"),
        (NAV, "clip_range=0", "clip_range must be a number > 0"),
        (NAV, "ent_coef=-0.01", "ent_coef must be a number >= 0, got -0.01"),
        (NAV, "vf_coef=-1", "vf_coef must be a number >= 0, got -1"),
        (NAV, "max_grad_norm=0", "max_grad_norm must be a number > 0, got 0"),
        (NAV, "target_kl=-1", "target_kl must be a number > 0 .*or None"),
        (NAV, "n_timesteps=0", "n_timesteps must be an integer >= 1"),
        (NAV, "normalize_advantage=1", "normalize_advantage must be true or false, got 1"),
        (NAV, "device=teapot", "device must be a torch device"),
        (NAV, "policy=Foo", "unknown policy 'Foo' for PPO .*allowed: CnnPolicy, MlpPolicy"),
        (NAV, "seed=3", "seed is set by --seed"),
        (NAV, "bogus=1", "unknown setting 'bogus' .*allowed: batch_size, clip_range"),
        (PASSES, "gradient_steps=-2", r"gradient_steps must be an integer >= -1 \(-1: as many"),
        (PASSES, "buffer_size=0", "buffer_size must be an integer >= 1, got 0"),
        (PASSES, "learning_starts=-1", "learning_starts must be an integer >= 0, got -1"),
        (PASSES, "train_freq=0", "train_freq must be an integer >= 1"),
        (PASSES, "target_update_interval=0", "target_update_interval must be an integer >= 1"),
        (PASSES, "tau=1.5", r"tau must be a number in \[0, 1\], got 1.5"),
        (PASSES, "exploration_fraction=2", r"exploration_fraction must be a number in \[0, 1\]"),
        (PASSES, "exploration_final_eps=-0.1", r"exploration_final_eps must be a number in"),
    ],
)
def test_bad_algorithm_settings_are_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture, target: str, setting: str, message: str
) -> None:
    algo = "dqn" if target == PASSES else "ppo"
    argv = _train(tmp_path, target, "--algo", algo, "--steps", "256", "--set", setting)
    assert main(argv) == 2
    line = _one_error(capsys.readouterr().err, "train")
    assert re.search(message, line), line
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_yaml_file_is_checked_like_set(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "h.yml"
    benchmarks = "benchmarks:\n  - {dataset: generator://nav2d-random-v0, count: 5}\n"
    path.write_text(benchmarks + "ppo:\n  n_epochs: -1\n")
    assert main(_train(tmp_path, NAV, "--hyperparams", str(path))) == 2
    line = _one_error(capsys.readouterr().err, "train")
    assert f"n_epochs must be an integer >= 1, got -1 (in {path})" in line

    # YAML 1.1 reads 1e-3 as text: say so, rather than "not a number"
    path.write_text(benchmarks + "ppo:\n  learning_rate: 1e-3\n")
    assert main(_train(tmp_path, NAV, "--hyperparams", str(path))) == 2
    line = _one_error(capsys.readouterr().err, "train")
    assert "learning_rate must be a number > 0" in line and "write 1.0e-3" in line

    path.write_text(benchmarks + "ppo:\n  policy_kwargs: {net_arch: [64, -1]}\n")
    assert main(_train(tmp_path, NAV, "--hyperparams", str(path))) == 2
    assert "net_arch must be a list of layer sizes" in capsys.readouterr().err

    path.write_text(benchmarks + "ppo:\n  policy_kwargs: {widths: [64]}\n")
    assert main(_train(tmp_path, NAV, "--hyperparams", str(path))) == 2
    line = _one_error(capsys.readouterr().err, "train")
    assert "unknown policy_kwargs widths for ActorCriticPolicy" in line and "net_arch" in line


def test_set_reads_1e_minus_3_as_a_number(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--set learning_rate=1e-3`` is a number (YAML alone would read text); the run then
    stops at the next setting, ``gamma``, which is out of range."""
    argv = _train(tmp_path, NAV, "--set", "learning_rate=1e-3", "--set", "gamma=2")
    assert main(argv) == 2
    line = _one_error(capsys.readouterr().err, "train")
    assert "gamma must be a number in [0, 1], got 2" in line


def test_what_sb3_refuses_on_construction_is_one_named_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """In range for OptGym, refused by SB3's own check (PPO normalizes advantages over a
    mini-batch: batch_size 1 fails an ``assert``): a ValueError naming the setting."""
    argv = _train(tmp_path, NAV, "--steps", "256", "--set", "n_steps=64", "--set", "batch_size=1")
    assert main(argv) == 2
    line = _one_error(capsys.readouterr().err, "train")
    assert "cannot make PPO for optgym/PathPlanning2DClosedLoop-v0" in line
    assert "batch_size" in line


# --- env settings (C3) -------------------------------------------------------------------------


def test_an_unknown_env_setting_lists_the_allowed_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(_train(tmp_path, NAV, "--env-kwargs", "bogus=1")) == 2
    line = _one_error(capsys.readouterr().err, "train")
    assert f"unknown env setting(s) 'bogus' for {NAV} (from --env-kwargs)" in line
    assert "allowed: benchmark, reward_space, sensor_range" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("threads=0", "threads must be >= 1, got 0"),
        ("mode=fast", "unknown mode 'fast'; allowed: measure, cache, model"),
        ("samples=many", "samples='many'"),  # a TypeError inside the constructor
    ],
)
def test_an_env_setting_the_constructor_refuses_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, setting: str, message: str
) -> None:
    argv = _train(tmp_path, "optgym/ScheduleSearch-v0", "--algo", "maskable-ppo")
    assert main([*argv, "--env-kwargs", setting]) == 2
    line = _one_error(capsys.readouterr().err, "train")
    assert "optgym/ScheduleSearch-v0 refuses its env settings" in line and message in line


# --- thread and episode counts -----------------------------------------------------------------


@pytest.mark.parametrize("threads", ["1000000", "0", "-1", "two", "٣", "1.5"])
def test_threads_must_fit_the_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture, threads: str
) -> None:
    assert main(_train(tmp_path, NAV, "--threads", threads)) == 2
    line = _one_error(capsys.readouterr().err, "train")
    assert f"threads must be an integer in [1, {CPUS}] (this machine's CPUs)" in line


def test_train_checks_threads_from_python_too(tmp_path: Path) -> None:
    from optgym.train import train

    with pytest.raises(ValueError, match=r"threads must be an integer in \[1, "):
        train(NAV, steps=64, out=tmp_path / "out", threads=10**6, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("episodes", ["99999999999999999999", "1000001", "0", "-3", "ten"])
def test_episodes_must_be_in_range(capsys: pytest.CaptureFixture, episodes: str) -> None:
    argv = ["bench", "pass-ordering", "--agent", "oz", "--episodes", episodes, "--no-progress"]
    assert main(argv) == 2
    line = _one_error(capsys.readouterr().err, "bench")
    assert f"episodes must be an integer in [1, {MAX_EPISODES}]" in line
    assert "islice" not in line


def test_episodes_of_a_learned_agents_training_are_checked_too(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["ppo", "--task", "path-planning-closed-loop", "--budget", "steps=9"]
    assert main(_train(tmp_path, *argv, "--episodes", str(10**20))) == 2
    assert f"episodes must be an integer in [1, {MAX_EPISODES}]" in capsys.readouterr().err


def test_benchmark_uris_refuses_too_many_episodes() -> None:
    with pytest.raises(ValueError, match=r"episodes must be an integer in \[1, 1000000\]"):
        benchmark_uris("pass-ordering", None, "test", 10**20)


# --- env misuse: before reset, after close ----------------------------------------------------


def test_schedule_search_masks_before_reset_ask_for_a_reset() -> None:
    from optgym.envs.schedule.env import ScheduleSearchEnv

    env = ScheduleSearchEnv()
    try:
        for call in (env.action_mask, env.action_masks, env.masks, env.fork):
            with pytest.raises(RuntimeError, match=r"call reset\(\) before"):
                call()
        with pytest.raises(RuntimeError, match=r"call reset\(\) before"):
            env.peek([0] * 6)
        with pytest.raises(RuntimeError, match=r"call reset\(\) before reading stage_names"):
            env.stage_names  # noqa: B018
        with pytest.raises(RuntimeError, match=r"call reset\(\) before reading the state"):
            env.validate()
        assert env.render() is None
        env.reset(seed=0)
        n = len(env.stage_names)
        assert env.action_mask().shape == env.action_masks().shape and n >= 1
        assert env.action_mask().any()
    finally:
        env.close()


@pytest.mark.parametrize("env_id", optgym.ENV_IDS)
def test_every_env_says_it_is_closed(env_id: str) -> None:
    """After close(), fork/step/apply/validate name the closed env (not a crashed episode or
    a dead worker); a reset starts it again."""
    env = optgym.make(env_id)
    base = env.unwrapped
    env.reset(seed=0)
    state = base.state
    action = env.action_space.sample()
    env.close()
    calls = {
        "fork": base.fork,
        "step": lambda: base.step(action),
        "apply": lambda: base.apply(state),
        "validate": lambda: base.validate(state),
    }
    for what, call in calls.items():
        with pytest.raises(RuntimeError, match=rf"the env is closed: {what}\(\) needs an open"):
            call()
    with pytest.raises(RuntimeError, match="the env is closed"):
        base.validate()
    if env_id == NAV:  # reset() starts the env again (one cheap env is enough to show it)
        try:
            env.reset(seed=0)
            env.step(env.action_space.sample())
            assert base.fork() is not None
        finally:
            env.close()


def test_limits_that_cannot_be_kept_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture):
    """W8: a plot that cannot be written is an error, not a success; the inline executor
    refuses a timeout or a memory limit it cannot enforce."""
    results = tmp_path / "r.jsonl"
    common = ["bench", "path-planning", "--agent", "shooting", "--budget", "calls=10",
              "--no-progress", "--results", str(results)]  # fmt: skip
    assert main([*common, "--executor", "inline", "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert "the inline executor runs in this process: it cannot enforce --timeout" in err
    assert main([*common, "--executor", "inline", "--memory-limit", "500"]) == 2
    assert "--memory-limit" in capsys.readouterr().err
    assert not results.exists()
    assert main([*common, "--executor", "inline", "--plot", "/dev/full"]) == 1
    err = capsys.readouterr().err
    assert "plot /dev/full is not a regular file (a character device)" in err
    assert "Traceback" not in err
