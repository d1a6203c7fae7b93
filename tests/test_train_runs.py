"""``optgym train`` as the RL Zoo's users expect it: exactly the steps asked for, numbered run
folders instead of overwrites, evaluations on validation benchmarks that keep
``best_model.zip``, continuing a saved run, Optuna tuning into a hyperparameter file, and
SAC/TD3 on the continuous closed-loop env. Real SB3 runs of a few hundred steps each."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest
import torch

import optgym
from optgym.agents import resolve_agent
from optgym.cli import main
from optgym.envs import problem_of_env
from optgym.train import (
    ALGOS,
    hyperparams_path,
    load_policy,
    plan_steps,
    read_hyperparams,
    resolve,
    run_folder,
    train,
)

NAV = "optgym/PathPlanning2DClosedLoop-v0"
#: A quick PPO on the closed-loop env: one sub-env, rollouts of 128 steps, one epoch.
QUICK = ["--n-envs", "1", "--set", "n_steps=128", "--set", "n_epochs=1", "--no-tensorboard"]


def _train(capsys: pytest.CaptureFixture, *argv: str, status: int = 0) -> str:
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    assert code == status, err
    return out if status == 0 else err


def _record(folder: Path) -> dict:
    return json.loads((folder / "train.json").read_text())


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from stable_baselines3.common.save_util import load_from_zip_file

    _, params, _ = load_from_zip_file(path, device="cpu")
    return params["policy"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 0.0) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol, rtol=0) for k in a)


# --- --steps N trains N steps -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("algo", "argv", "asked", "trained"),
    [
        # 4 sub-envs x 256: one whole rollout of 1024, then one of 476 (119 per sub-env)
        ("ppo", ["--set", "n_epochs=1"], 1500, 1500),
        ("ppo", ["--set", "n_epochs=1"], 1502, 1500),  # the 4 sub-envs step together
        ("a2c", [], 250, 248),
        # off-policy: train_freq 8 would end its last rollout at 104
        (
            "sac",
            ["--n-envs", "1", "--set", "train_freq=8", "--set", "learning_starts=50"],
            100,
            100,
        ),
    ],
)
def test_steps_trains_exactly_the_steps_asked_and_the_bar_ends_on_them(
    tmp_path: Path, capsys: pytest.CaptureFixture, algo: str, argv: list, asked: int, trained: int
) -> None:
    out = tmp_path / "run"
    code = main(["train", NAV, "--algo", algo, "--steps", str(asked), "--out", str(out),
                 "--no-tensorboard", *argv])  # fmt: skip
    printed, bar = capsys.readouterr()
    assert code == 0, bar
    record = _record(out)
    assert record["steps"] == record["num_timesteps"] == trained
    assert record["steps_asked"] == asked
    assert load_policy(out).model.num_timesteps == trained
    assert f": {trained} steps in" in printed
    assert (f"trains {trained} of the {asked} steps asked" in printed) == (trained < asked)
    # the progress bar's total is the run's steps, and it ends on them
    positions = [int(n) for n in re.findall(rf"\b(\d+)/{trained}\b", bar)]
    assert positions and max(positions) == trained == positions[-1], bar[-300:]
    assert set(re.findall(r"\d+/(\d+) \[", bar)) == {str(trained)}, bar[-300:]


def test_a_run_that_is_not_whole_rollouts_keeps_the_files_rollout(tmp_path: Path) -> None:
    run = train(NAV, steps=300, out=tmp_path / "r", n_envs=1, progress=False, tensorboard=False,
                overrides={"n_epochs": 1})  # fmt: skip
    assert run.steps == run.total_steps == 300
    model = load_policy(tmp_path / "r").model
    # one rollout of 256 and one of 44; the saved model has the file's rollout
    assert model.n_steps == 256 and model.rollout_buffer.buffer_size == 256
    plan = plan_steps(resolve(NAV, "ppo", n_envs=1), 300)
    assert (plan.steps, plan.n_steps, plan.tail_n_steps, plan.note) == (300, 256, 44, "")
    # a run shorter than one rollout is one rollout of its own length, as before
    short = plan_steps(resolve(NAV, "ppo"), 256)
    assert (short.steps, short.n_steps, short.tail_n_steps) == (256, 64, 0)
    with pytest.raises(ValueError, match=r"steps must be at least n_envs \(4\)"):
        plan_steps(resolve(NAV, "ppo"), 3)


# --- numbered run folders ---------------------------------------------------------------------


def test_a_second_run_into_the_same_out_goes_to_a_numbered_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "nav"
    argv = [NAV, "--steps", "128", "--out", str(out), "--no-progress", *QUICK]
    _train(capsys, *argv)
    first = (out / "model.zip").read_bytes(), (out / "train.json").read_text()
    printed = _train(capsys, *argv, "--seed", "1")
    assert f"{out} holds an earlier run; this run writes to {out}_2" in printed
    assert f"sb3:path={out}_2" in printed
    assert ((out / "model.zip").read_bytes(), (out / "train.json").read_text()) == first
    assert _record(tmp_path / "nav_2")["seed"] == 1
    assert run_folder(out) == tmp_path / "nav_3"
    # a refused setting writes nothing, not even the numbered folder
    _train(capsys, *argv, "--set", "batch_size=1", status=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nav", "nav_2"]
    _train(capsys, NAV, "--out", str(tmp_path / "fresh"), "--set", "batch_size=1", status=2)
    assert not (tmp_path / "fresh").exists()


def test_seeds_keep_their_folders_and_skip_finished_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = [NAV, "--steps", "128", "--seeds", "0", "--executor", "inline", "--out",
            str(tmp_path / "s"), "--no-progress", *QUICK]  # fmt: skip
    _train(capsys, *argv)
    model = tmp_path / "s" / "seed-0" / "model.zip"
    before = model.stat().st_mtime_ns, model.read_bytes()
    _train(capsys, *argv)
    assert (model.stat().st_mtime_ns, model.read_bytes()) == before
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["seed-0"]


# --- evaluations and best_model.zip -----------------------------------------------------------


def test_evaluations_on_validation_benchmarks_keep_the_best_model(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "ev"
    argv = [NAV, "--steps", "512", "--eval-every", "128", "--eval-episodes", "3"]
    argv += ["--out", str(out), "--no-progress", *QUICK[:-1]]  # with TensorBoard
    printed = _train(capsys, *argv)
    evaluation = _record(out)["evaluation"]
    results = evaluation["results"]
    assert [r["steps"] for r in results] == [128, 256, 384, 512]
    registry = {d.uri: d for d in problem_of_env(NAV).datasets()}
    benchmarks = evaluation["benchmarks"]
    assert len(benchmarks) == 3
    assert all(registry["generator://nav2d-random-v0"].split_of(u) == "validation"
               for u in benchmarks)  # fmt: skip
    assert all(len(r["rewards"]) == 3 for r in results)
    best = max(results, key=lambda r: r["mean_reward"])
    assert evaluation["best"]["steps"] == best["steps"]
    assert f"best:    {out / 'best_model.zip'}" in printed
    # best_model.zip is the model of the best evaluation: the final one only if that was best
    best_model = load_policy(out, best=True).model
    assert best_model.num_timesteps == best["num_timesteps"]
    final = _weights(out / "model.zip")
    assert _same(_weights(out / "best_model.zip"), final) == (best["steps"] == 512)
    # the mean rewards in TensorBoard, at the evaluation steps
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((out / "tensorboard").iterdir())))
    events.Reload()
    scalars = events.Scalars("eval/mean_reward")
    assert [s.step for s in scalars] == [128, 256, 384, 512]
    assert [s.value for s in scalars] == pytest.approx([r["mean_reward"] for r in results])
    # evaluating changes nothing in the training: the same run without it, the same weights
    again = [NAV, "--steps", "512", "--eval-every", "0", "--out", str(tmp_path / "plain")]
    _train(capsys, *again, "--no-progress", *QUICK)
    assert _same(_weights(tmp_path / "plain" / "model.zip"), final)
    assert not (tmp_path / "plain" / "best_model.zip").exists()
    # the sb3 agent plays either model
    assert (
        resolve_agent(f"sb3:path={out},model=best").make().policy().model.num_timesteps
        == (best["num_timesteps"])
    )
    assert resolve_agent(f"sb3:path={out}").make().policy().model.num_timesteps == 512
    with pytest.raises(ValueError, match="best_model.zip is missing .*--eval-every"):
        resolve_agent(f"sb3:path={tmp_path / 'plain'},model=best").make().policy()


def test_a_short_run_does_not_evaluate_by_default(tmp_path: Path) -> None:
    """The default is a tenth of the run, at least 2048 steps (as checkpoints)."""
    run = train(NAV, steps=256, out=tmp_path / "r", n_envs=1, progress=False, tensorboard=False,
                overrides={"n_epochs": 1})  # fmt: skip
    assert run.best_model_path is None and _record(tmp_path / "r")["evaluation"] is None


# --- continuing a saved run ---------------------------------------------------------------------


def test_from_continues_the_saved_model_and_its_step_count(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _train(capsys, NAV, "--steps", "256", "--out", str(first), "--no-progress", *QUICK)
    # a learning rate of 1e-12 changes nothing: the weights are the saved ones
    printed = _train(capsys, NAV, "--from", str(first), "--steps", "128", "--out", str(second),
                     "--set", "learning_rate=1e-12", "--no-progress", *QUICK)  # fmt: skip
    assert "continued from" in printed and "384 in all" in printed
    record = _record(second)
    assert (record["steps"], record["num_timesteps"]) == (128, 384)
    assert record["continued_from"] == {"path": str(first), "num_timesteps": 256}
    model = load_policy(second).model
    assert model.num_timesteps == 384 and model.learning_rate == 1e-12
    assert _same(_weights(second / "model.zip"), _weights(first / "model.zip"), atol=1e-6)
    # with the file's learning rate the weights move on
    third = tmp_path / "third"
    _train(capsys, NAV, "--from", str(first), "--steps", "128", "--out", str(third),
           "--no-progress", *QUICK)  # fmt: skip
    assert not _same(_weights(third / "model.zip"), _weights(first / "model.zip"), atol=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([NAV, "--algo", "a2c"], f"cannot continue from .*: it trained ppo on {NAV}, not a2c"),
        (["optgym/PathPlanning2D-v0"], "it trained ppo on " + NAV + ", not ppo on optgym/Path"),
        ([NAV, "--seeds", "0,1"], "--from continues one run; drop --seeds"),
    ],
)
def test_from_refuses_another_env_or_algorithm(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    first = tmp_path / "first"
    _train(capsys, NAV, "--steps", "64", "--out", str(first), "--no-progress", *QUICK)
    err = _train(capsys, *argv, "--from", str(first), "--steps", "64", "--out",
                 str(tmp_path / "x"), "--no-progress", status=2)  # fmt: skip
    assert re.search(message, err) and "Traceback" not in err, err
    assert not (tmp_path / "x").exists()
    err = _train(capsys, NAV, "--from", str(tmp_path / "none"), "--out", str(tmp_path / "x"),
                 status=2)  # fmt: skip
    assert "cannot continue from" in err and "no such run folder or model file" in err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.zip").write_bytes((first / "model.zip").read_bytes())
    err = _train(capsys, NAV, "--from", str(tmp_path / "half"), "--out", str(tmp_path / "x"),
                 status=2)  # fmt: skip
    assert "cannot continue from" in err and "train.json is missing" in err


# --- Optuna -------------------------------------------------------------------------------------


def test_optimize_is_seeded_and_writes_a_file_that_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("optuna")
    argv = [NAV, "--algo", "ppo", "--optimize", "--trials", "3", "--steps-per-trial", "128"]
    argv += ["--eval-episodes", "2", "--n-envs", "1", "--set", "n_epochs=1", "--seed", "5"]
    printed = _train(capsys, *argv, "--out", str(tmp_path / "tune"), "--no-progress")
    _train(capsys, *argv, "--out", str(tmp_path / "tune"), "--no-progress")  # into tune_2

    def trials(folder: Path) -> list[dict]:
        with (folder / "trials.csv").open() as f:
            return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]

    first = trials(tmp_path / "tune")
    assert first == trials(tmp_path / "tune_2")  # the same trials, the same scores
    assert [row["state"] for row in first] == ["complete"] * 3
    assert {"learning_rate", "n_steps", "gamma", "ent_coef"} <= set(first[0])
    assert all(row["n_steps"] == "64" or row["n_steps"] == "128" for row in first)
    best = max(first, key=lambda row: float(row["value"]))
    assert f"best:    trial {best['trial']}" in printed
    path = tmp_path / "tune" / "best_hyperparams.yml"
    assert path.read_text() == (tmp_path / "tune_2" / "best_hyperparams.yml").read_text()
    section = read_hyperparams(path)["ppo"]
    assert section["learning_rate"] == pytest.approx(float(best["learning_rate"]))
    assert section["n_steps"] == int(best["n_steps"]) and section["n_epochs"] == 1
    config = resolve(NAV, "ppo", hyperparams=path)
    assert config.n_envs == 1 and config.hyperparams["gamma"] == float(best["gamma"])
    out = tmp_path / "tuned"
    _train(capsys, NAV, "--hyperparams", str(path), "--steps", "64", "--out", str(out),
           "--no-progress", "--no-tensorboard")  # fmt: skip
    assert _record(out)["hyperparams"]["ent_coef"] == pytest.approx(float(best["ent_coef"]))


def test_optimize_without_optuna_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # what an installation without it gives
    err = _train(capsys, NAV, "--optimize", "--out", str(tmp_path / "t"), status=2)
    assert "pip install 'optgym[tune]'" in err and "Traceback" not in err
    assert not (tmp_path / "t").exists()


# --- SAC and TD3 --------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_sac_and_td3_train_on_the_continuous_closed_loop_env(
    tmp_path: Path, capsys: pytest.CaptureFixture, algo: str
) -> None:
    out = tmp_path / algo
    argv = [NAV, "--algo", algo, "--steps", "200", "--n-envs", "1", "--eval-every", "100"]
    argv += ["--set", "learning_starts=100", "--set", "batch_size=32", "--eval-episodes", "1"]
    _train(capsys, *argv, "--out", str(out), "--no-progress", "--no-tensorboard")
    policy = load_policy(out)
    assert type(policy.model).__name__ == algo.upper() and policy.model.num_timesteps == 200
    # it learned: 100 gradient steps after the 100 random ones
    assert policy.model._n_updates == 100
    assert (out / "best_model.zip").is_file()
    env = policy.adapt(optgym.make(NAV))
    obs, _ = env.reset(seed=0, options={"benchmark": "benchmark://nav2d-v0/wall"})
    assert env.action_space.contains(policy.act(obs).astype(env.action_space.dtype))
    env.close()
    if algo == "td3":
        assert _record(out)["hyperparams"]["action_noise"] == {"type": "normal", "sigma": 0.1}
        assert type(policy.model.action_noise).__name__ == "NormalActionNoise"


def test_an_algorithm_a_file_does_not_configure_is_refused_with_the_allowed_ones() -> None:
    for env_id in optgym.ENV_IDS:
        have = [a for a in ALGOS if a in read_hyperparams(hyperparams_path(env_id))]
        for algo in set(ALGOS) - set(have):
            with pytest.raises(ValueError, match=f"unknown algorithm '{algo}'; allowed: "
                               + re.escape(", ".join(have))):  # fmt: skip
                resolve(env_id, algo)
    assert {"sac", "td3"} <= set(read_hyperparams(hyperparams_path(NAV)))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimize", "--steps", "64"], "--optimize trains trials .*drop --steps"),
        (["--trials", "3"], "--trials and --steps-per-trial go with --optimize"),
        (["--eval-every", "-1"], "eval_every must be an integer >= 0, got -1"),
        (["--eval-episodes", "0"], r"eval_episodes must be an integer in \[1, 1000\], got 0"),
        (["--algo", "td3", "--set", "action_noise=0.1"], "action_noise must be {type: normal"),
        (["--algo", "sac", "--set", "ent_coef=often"], "or auto or auto_X"),
        (["--optimize", "--trials", "0"], r"trials must be an integer in \[1, 10000\]"),
    ],
)
def test_bad_new_options_fail_with_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    if "--optimize" in argv:
        pytest.importorskip("optuna")
    err = _train(capsys, NAV, *argv, "--out", str(tmp_path / "x"), "--no-progress", status=2)
    assert re.search(message, err) and "Traceback" not in err, err
    assert not (tmp_path / "x").exists()


def test_a_learned_agents_training_refuses_the_sb3_options(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    err = _train(capsys, "ppo", "--task", "path-planning-closed-loop", "--budget", "steps=9",
                 "--eval-every", "5", "--out", str(tmp_path / "x"), status=2)  # fmt: skip
    assert "--eval-every train SB3 policies" in err
