"""``optgym train``: stable-baselines3 on every registered id, the shipped hyperparameter
files, the trained model as an agent, and the errors of bad settings and files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import optgym
from optgym.cli import main
from optgym.train import (
    ADAPTERS,
    ALGOS,
    apply_wrappers,
    hyperparams_path,
    load_policy,
    make_eval_env,
    read_hyperparams,
    resolve,
)

#: Env settings that make a 256-step run quick (LNS: short sub-MIPs and episodes).
QUICK = {
    "optgym/ILPNeighborhood-v0": [
        "--env-kwargs", "subproblem_time=0.05",
        "--env-kwargs", "initial_time=0.2",
        "--env-kwargs", "time_budget=3",
        "--set", "n_epochs=1",
    ],
    "optgym/DataSelection-v0": ["--env-kwargs", "budget=200", "--set", "n_epochs=1"],
    "optgym/PassOrdering-v0": ["--n-envs", "1", "--set", "n_epochs=1"],
}  # fmt: skip


def _algo(env_id: str) -> str:
    """PPO, or MaskablePPO where the env's file says actions are masked."""
    data = read_hyperparams(hyperparams_path(env_id))
    return "ppo" if "ppo" in data else "maskable-ppo"


@pytest.mark.parametrize("env_id", optgym.ENV_IDS)
def test_every_id_trains_256_steps_from_the_command_line(
    env_id: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "model"
    argv = ["train", env_id, "--algo", _algo(env_id), "--steps", "256", "--out", str(out)]
    argv += ["--no-progress", "--seed", "3"]
    argv += QUICK.get(env_id, [])
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    record = json.loads((out / "train.json").read_text())
    # on-policy algorithms learn in whole rollouts: at least the steps asked for
    steps = record["steps"]
    assert f"on {env_id}: {steps} steps" in printed and 256 <= steps < 512
    assert record["env_id"] == env_id and record["seed"] == 3
    assert all("/test" not in uri and uri.count("/") >= 3 for uri in record["benchmarks"])
    assert (out / "tensorboard").is_dir() and any((out / "tensorboard").rglob("events.*"))
    policy = load_policy(out)
    assert policy.env_id == env_id and policy.model.num_timesteps == steps


def test_every_id_registers_a_step_limit_and_the_runner_drops_it() -> None:
    for env_id in optgym.ENV_IDS:
        assert hyperparams_path(env_id).is_file(), env_id
        if env_id == "optgym/PathPlanning2D-v0":  # one step: it terminates by itself
            env = optgym.make(env_id)
            env.reset(seed=0)
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            assert terminated and not truncated
            env.close()
        else:
            assert gym.spec(env_id).max_episode_steps, env_id
    limited = optgym.make("optgym/PassOrdering-v0", observation_space="InstCount")
    free = optgym.make("optgym/PassOrdering-v0", step_limit=False, observation_space="InstCount")
    try:
        assert isinstance(limited, gym.wrappers.TimeLimit) or any(
            isinstance(w, gym.wrappers.TimeLimit) for w in _chain(limited)
        )
        assert not any(isinstance(w, gym.wrappers.TimeLimit) for w in _chain(free))
    finally:
        limited.close()
        free.close()


def _chain(env: gym.Env) -> list[gym.Env]:
    out = [env]
    while hasattr(out[-1], "env"):
        out.append(out[-1].env)
    return out


def test_training_never_draws_test_benchmarks_and_task_targets_use_train_splits(
    tmp_path: Path,
) -> None:
    config = resolve("pass-ordering", "ppo")
    assert config.env_id == "optgym/PassOrdering-v0"
    # the task's datasets that have a train split (debian-v0 has none)
    assert {u.split("/")[2] for u in config.benchmarks} == {"csmith-v0"}
    assert all(int(u.rsplit("/", 1)[1]) >= 2000 for u in config.benchmarks)
    bad = tmp_path / "bad.yml"
    bad.write_text("benchmarks:\n  - {dataset: generator://csmith-v0, split: test}\nppo: {}\n")
    with pytest.raises(ValueError, match="never 'test'"):
        resolve("optgym/PassOrdering-v0", "ppo", bad)


def test_a_wrapper_is_named_by_its_import_path(tmp_path: Path) -> None:
    path = tmp_path / "h.yml"
    path.write_text(
        "wrappers:\n"
        "  - gymnasium.wrappers:ClipReward: {min_reward: -0.5, max_reward: 0.5}\n"
        "  - TimeLimit: {max_episode_steps: 3}\n"
        "benchmarks:\n  - {dataset: generator://nav2d-random-v0, split: train, count: 1}\n"
        "ppo: {}\n"
    )
    config = resolve("optgym/PathPlanning2DClosedLoop-v0", "ppo", path)
    assert config.wrappers[0] == (
        "gymnasium.wrappers:ClipReward", {"min_reward": -0.5, "max_reward": 0.5}
    )
    env = make_eval_env(config)
    try:
        assert isinstance(env, gym.wrappers.TimeLimit) and env._max_episode_steps == 3
        assert isinstance(env.env, gym.wrappers.ClipReward)
        env.reset(options={"benchmark": "benchmark://nav2d-v0/open"})
        rewards = [env.step(np.array([1.0, 1.0]))[1] for _ in range(3)]
        assert all(-0.5 <= r <= 0.5 for r in rewards)
    finally:
        env.close()
    # the wrapper named by its path adapts a trained policy's env too; TimeLimit does not
    adapted = apply_wrappers(optgym.make("optgym/PathPlanning2DClosedLoop-v0"),
                             config.wrappers, only=ADAPTERS)  # fmt: skip
    assert isinstance(adapted, gym.wrappers.ClipReward)
    adapted.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ppo: [1, 2\n", "not valid YAML at line"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("ppo: {}\nlearning: 3\n", "unknown keys .*: learning; allowed"),
        ("a2c: {}\n", "has no 'ppo' section .* it has: a2c"),
        ("wrappers: [Explode]\nppo: {}\n", "unknown wrapper 'Explode'.*allowed: PaddedGraph"),
        ("wrappers: [no.such.module:W]\nppo: {}\n", "wrapper 'no.such.module:W' .*cannot import"),
        ("wrappers: ['gymnasium.wrappers:Nope']\nppo: {}\n", "module 'gymnasium.wrappers' has no"),
        ("wrappers: ['gymnasium:Env']\nppo: {}\n", "'gymnasium:Env' .*not a gymnasium Wrapper"),
        (
            "wrappers:\n  - gymnasium.wrappers:ClipReward: {low: 1}\nppo: {}\n",
            "'gymnasium.wrappers:ClipReward' .*does not take its settings: .*'low'",
        ),
        ("wrappers: [NamedObservation]\nppo: {}\n", "does not take its settings: missing .*'name'"),
        ("wrappers:\n  - 3: {}\nppo: {}\n", "a wrapper's name .* must be a string"),
        ("n_envs: 0\nppo: {}\n", r"n_envs must be an integer in \[1, 64\]"),
        (
            "benchmarks:\n  - {dataset: generator://nope-v0}\nppo: {}\n",
            "nope-v0",
        ),
        ("benchmarks:\n  - {dataset: generator://csmith-v0, count: -1}\nppo: {}\n", "count"),
    ],
)
def test_bad_hyperparameter_files_say_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture, text: str, message: str
) -> None:
    path = tmp_path / "h.yml"
    path.write_text(text)
    argv = ["train", "optgym/PassOrdering-v0", "--hyperparams", str(path), "--out", str(tmp_path)]
    assert main(argv + ["--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(message, err), err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nowhere-v0"], "neither an env id nor a task; env ids: optgym/PassOrdering-v0"),
        (["optgym/PassOrdering-v0", "--algo", "sac"], "unknown algorithm 'sac'; allowed: ppo"),
        (["optgym/ScheduleSearch-v0", "--algo", "ppo"], "no 'ppo' section .* maskable-ppo"),
        (["optgym/PassOrdering-v0", "--env-kwargs", "oops"], "KEY=VALUE"),
        (["optgym/PassOrdering-v0", "--set", "n_epochs=[1"], "--set n_epochs: cannot read"),
        (["optgym/PassOrdering-v0", "--set", "bogus=1"], "cannot make PPO .*bogus"),
        (["optgym/PassOrdering-v0", "--budget", "steps=5"], "use --steps"),
        (["optgym/PassOrdering-v0", "--steps", "0"], "steps must be a positive integer"),
        (["optgym/PassOrdering-v0", "--seeds", "0-x"], "bad seed '0-x' in --seeds"),
        (["optgym/PassOrdering-v0", "--seeds", "0,1", "--seed", "2"], "--seed or --seeds"),
        (["optgym/PassOrdering-v0", "--seeds", "0", "--threads", "2"], "one torch thread"),
        (["optgym/PassOrdering-v0", "--seeds", "0", "--executor", "dask"], "unknown executor"),
        (["optgym/PassOrdering-v0", "--seeds", "0", "--address", "h:1"], "--executor ray"),
        (["optgym/PassOrdering-v0", "--seeds", "0", "--timeout", "nan"], "timeout must be"),
        (["ppo", "--task", "path-planning-closed-loop", "--budget", "steps=9", "--seeds", "0"],
         "--seeds, --workers and --executor train SB3 policies"),
    ],
)
def test_bad_train_commands_fail_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    assert main(["train", *argv, "--out", str(tmp_path / "m"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and re.search(message, err), err


def test_a_saved_model_benchmarks_as_an_agent_and_its_lines_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "nav"
    argv = ["train", "optgym/PathPlanning2DClosedLoop-v0", "--steps", "256", "--out", str(out)]
    assert main(argv + ["--no-progress", "--no-tensorboard"]) == 0
    assert "bench:   optgym bench path-planning-closed-loop --agent sb3:path=" in (
        capsys.readouterr().out
    )
    results = tmp_path / "r.jsonl"
    bench = ["bench", "path-planning-closed-loop", "--agent", f"sb3:path={out}"]
    bench += ["--benchmark", "benchmark://nav2d-v0/wall", "--budget", "calls=300"]
    bench += ["--results", str(results), "--plot", str(tmp_path / "p.png"), "--no-progress"]
    assert main(bench) == 0, capsys.readouterr().err
    line = json.loads(results.read_text().splitlines()[0])
    assert line["agent"] == f"sb3:path={out}" and line.get("error") is None
    assert 0 < line["budget_used"]["calls"] <= 300
    assert main(["validate", str(results), "--budget", "calls=300"]) == 0
    # the model refuses an env it was not trained on
    bench[1] = "path-planning"
    assert main(bench[:-4] + ["--results", str(tmp_path / "x.jsonl"), "--no-progress"]) != 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "train.json is missing"),
        ("{}", "not a training record"),
        ("not json", "not a JSON training record"),
        ('{"algo": "ppo", "env_id": "optgym/Nope-v0"}', "env id OptGym does not have"),
        (
            '{"algo": "ppo", "env_id": "optgym/PassOrdering-v0", "wrappers": [["Rm", {}]]}',
            "unknown wrapper 'Rm'",
        ),
        (
            '{"algo": "ppo", "env_id": "optgym/PassOrdering-v0", "wrappers": 5}',
            "list of \\[name, settings\\] pairs",
        ),
        ('{"algo": "ppo", "env_id": "optgym/PassOrdering-v0", "env_kwargs": 3}', "env_kwargs"),
    ],
)
def test_a_bad_model_folder_is_refused_by_name(
    tmp_path: Path, content: str | None, message: str
) -> None:
    (tmp_path / "model.zip").write_bytes(b"PK\x03\x04 not really a zip")
    if content is not None:
        (tmp_path / "train.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_policy(tmp_path)
    (tmp_path / "train.json").write_text(json.dumps({"algo": "ppo", "env_id": optgym.ENV_IDS[0]}))
    with pytest.raises(ValueError, match="cannot load .*model.zip as a ppo model"):
        load_policy(tmp_path)


def test_algos_are_the_six_the_cli_offers() -> None:
    assert set(ALGOS) == {"ppo", "a2c", "dqn", "maskable-ppo", "sac", "td3"}


def test_a2c_trains_too_and_its_model_benchmarks(tmp_path: Path) -> None:
    out = tmp_path / "a2c"
    argv = ["train", "optgym/PathPlanning2DClosedLoop-v0", "--algo", "a2c", "--steps", "64"]
    assert main(argv + ["--out", str(out), "--no-progress", "--no-tensorboard"]) == 0
    policy = load_policy(out)
    assert policy.config["algo"] == "a2c" and type(policy.model).__name__ == "A2C"
    assert not (out / "tensorboard").exists()
