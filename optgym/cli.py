"""``optgym``: list envs, agents, tasks and datasets, build datasets, train agents, run
benchmarks, validate results, submit to the leaderboard.

    optgym --version
    optgym envs
    optgym agents [--problem path-planning]
    optgym tasks
    optgym datasets list
    optgym datasets build debian-v0
    optgym train optgym/PassOrdering-v0 --algo ppo --steps 20000 --out runs/ppo-passes
    optgym train ppo --task path-planning-closed-loop --budget steps=20000 --out ppo.zip
    optgym bench pass-ordering --agent oz --agent random --episodes 10 --budget calls=2000
    optgym bench path-planning --agent cem:population=50 --agent mymod:MyAgent --workers 2
    optgym validate results/pass-ordering.jsonl
    optgym leaderboard run path-planning --agent cem --out my-entry --author "Ada L."
    optgym leaderboard verify my-entry
    optgym leaderboard add my-entry
    optgym leaderboard build --out site
    optgym calibrate

(the leaderboard commands are in :mod:`optgym.leaderboard.cli`)

The commands only parse arguments and call the Python API (:mod:`optgym.bench`,
:mod:`optgym.validate`, :mod:`optgym.report`). Bad input prints one line naming the bad
value and the allowed ones, and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from optgym.cli_options import (
    allow_local_plugins,
    executor_options,
    executor_settings,
    parse_seeds,
)
from optgym.spaces import space_text


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), not the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(command: str, message: str, status: int = 2) -> int:
    print(f"optgym {command}: error: {message}", file=sys.stderr)
    return status


def _warning_line(message: Any, category: Any, filename: str, lineno: int, *_: Any) -> str:
    return f"warning: {message}\n"


# --- optgym envs -----------------------------------------------------------------------------


def cmd_envs(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from optgym.envs import problems

    for problem in problems().values():
        for entry in problem.envs:
            cls = entry.env_class()
            print(f"{entry.id}  ({problem.name}; work unit: {cls.work_unit})")
            print(f"  reward spaces:      {', '.join(cls.reward_spaces) or '-'}")
            print(f"  observation spaces: {', '.join(cls.observation_spaces) or '-'}")
            print(f"  reward tolerance:   {cls.reward_tolerance}")
            if entry.max_episode_steps:
                print(f"  step limit:         {entry.max_episode_steps}")
            if not args.spaces:
                continue
            env = gym.make(entry.id)
            try:  # spaces can depend on the benchmark: show them for the default one
                env.reset(seed=0)
                print(f"  observation space:  {space_text(env.observation_space)}")
                print(f"  action space:       {space_text(env.action_space)}")
                print(f"  (spaces on {cls.default_benchmark}; example: {entry.example.benchmark})")
            finally:
                env.close()
    if not args.spaces:
        print("(--spaces: make each env and show its observation and action spaces)")
    return 0


# --- optgym agents and tasks -----------------------------------------------------------------


def _default_text(setting: Any) -> str:
    if setting.required:
        return "required"
    return f"default {setting.default!r}"


def cmd_agents(args: argparse.Namespace) -> int:
    from optgym.agents import AgentSpec, agent_settings, registry
    from optgym.envs import problems

    known = problems()
    if args.problem is not None and args.problem not in known:
        return _fail("agents", f"unknown problem {args.problem!r}; allowed: {', '.join(known)}")
    by_problem: dict[str, list[str]] = {}
    listed_by_env: dict[str, list[str]] = {}
    for name, entry in registry().items():
        works_on = AgentSpec(name, entry, {}).problems()  # without its (required) settings
        listed_by_env[name] = [w for w in entry.works_on if w not in known]  # env ids
        listed_by = entry.source.removeprefix("problem ")  # a problem's own agents
        home = listed_by if listed_by in known else "every problem" if "*" in works_on else None
        home = home or next((p for p in known if p in works_on), None)
        if home is None:  # declared by env id: file it under that env's problem
            home = next((p.name for p in known.values() if set(works_on) & set(p.env_ids)), "-")
        if args.problem is None or home in (args.problem, "every problem"):
            by_problem.setdefault(home, []).append(name)
    for problem, names in by_problem.items():
        print(f"{problem}:")
        for name in names:
            entry = registry()[name]
            print(f"  {name}: {entry.summary()}")
            if listed_by_env.get(name):  # its record fits it to some of the problem's envs
                print(f"      env: {', '.join(listed_by_env[name])} only")
            presets = ", ".join(f"{k}={v}" for k, v in entry.presets.items())
            if presets:
                print(f"      preset: {presets}")
            for setting in agent_settings(entry.agent_class()):
                if setting.name in entry.presets:
                    continue
                kind = f"{setting.type_name}, {_default_text(setting)}"
                help_text = f": {setting.help}" if setting.help else ""
                print(f"      {setting.name} ({kind}){help_text}")
        print()
    print("plug-ins: --agent package.module:Class[:key=value,...], or the optgym.agents "
          "entry-point group")  # fmt: skip
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from optgym.envs import problems

    for problem in problems().values():
        for task in problem.tasks:
            cls = next(e for e in problem.envs if e.id == task.env_id).env_class()
            print(task.name)
            print(f"  problem:  {problem.name}")
            print(f"  env:      {task.env_id} {task.env_kwargs or ''}".rstrip())
            datasets = ", ".join(f"{uri} ({split})" for uri, split in task.datasets)
            print(f"  datasets: {datasets}")
            print(f"  budget:   {task.budget}  (calls are {cls.work_unit})")
            print(f"  score:    {task.score_name}")
            if task.reference_agents:
                print(f"  references: {', '.join(task.reference_agents)}")
            print()
    return 0


# --- optgym datasets -------------------------------------------------------------------------


def _datasets() -> list[Any]:
    from optgym.datasets import all_datasets

    return list(all_datasets())


def _buildable() -> dict[str, Any]:
    return {d.name: d for d in _datasets() if hasattr(d, "build")}


def _splits_line(dataset: Any) -> str:
    from optgym.datasets.dataset import SPLITS

    if dataset.infinite:
        from optgym.datasets.seeded import SPLIT_SEEDS

        return "; ".join(f"{s}: seeds [{SPLIT_SEEDS[s][0]}, {SPLIT_SEEDS[s][1]})" for s in SPLITS)
    parts = []
    for split in SPLITS:
        names = list(dataset.benchmark_names(split))
        parts.append(f"{split}: {len(names)}" + (f" ({', '.join(names)})" if names else ""))
    return "; ".join(parts)


def _built_line(dataset: Any) -> str:
    names = list(dataset.benchmark_names())
    built = 0
    for name in names:
        try:
            dataset.benchmark(f"{dataset.uri}/{name}")
            built += 1
        except FileNotFoundError:
            pass
    if built == len(names):
        return f"yes ({built}/{len(names)})"
    return f"no ({built}/{len(names)}): run `optgym datasets build {dataset.name}`"


def cmd_datasets_list(args: argparse.Namespace) -> int:
    for d in _datasets():
        print(d.uri)
        print(f"  description: {d.description}")
        print(f"  license:     {d.license}")
        provenance = d.provenance.replace("\n", "\n               ")
        print(f"  provenance:  {provenance}")
        print(f"  splits:      {_splits_line(d)}")
        if hasattr(d, "build"):
            print(f"  built:       {_built_line(d)}")
        print()
    return 0


def cmd_datasets_build(args: argparse.Namespace) -> int:
    buildable = _buildable()
    names = [n.split("://", 1)[-1] for n in args.names] or list(buildable)
    for name in names:
        if name not in buildable:
            return _fail(
                "datasets build",
                f"unknown or unbuildable dataset {name!r}; allowed: {', '.join(buildable)}",
            )
    for name in names:
        paths = buildable[name].build(progress=not args.no_progress)
        print(f"{name}: {len(paths)} benchmarks")
        for p in paths:
            print(f"  {p}")
    return 0


# --- optgym bench ----------------------------------------------------------------------------


def _unit(task: Any) -> str:
    from optgym.tasks import env_entry

    return env_entry(task).env_class().work_unit


def cmd_bench(args: argparse.Namespace) -> int:
    from optgym.bench import benchmark_uris, latest_rows, run_bench
    from optgym.budget import Budget
    from optgym.envs import problems
    from optgym.executors import check_executor
    from optgym.report import format_table, plot, summarize
    from optgym.tasks import get_task

    allow_local_plugins()
    try:
        task = get_task(args.task)
        from optgym.agents import resolve_agent

        agents = []
        for name in args.agent:
            spec = resolve_agent(name)
            spec.check_task(task)
            agents.append(spec.canonical)
        check_executor(args.executor, args.address)
        budget = Budget.parse(args.budget, _unit(task)) if args.budget is not None else task.budget
        seeds = parse_seeds(args.seeds)
        uris: list[str] = []
        if args.dataset or not args.benchmark:
            uris += benchmark_uris(task.name, args.dataset, args.split, args.episodes)
        if args.benchmark:
            uris += benchmark_uris(task.name, args.benchmark, args.split, 1)
        uris = list(dict.fromkeys(uris))
        if not uris:
            names = ", ".join(args.dataset or [uri for uri, _ in task.datasets])
            raise ValueError(f"no benchmarks in the {args.split} split of {names}")
    except (ValueError, RuntimeError) as e:
        return _fail("bench", str(e))
    results = Path(args.results or f"results/{task.name}.jsonl")
    plot_path = Path(args.plot or f"results/{task.name}.png")
    try:
        rows = run_bench(
            task.name, agents, uris, seeds, budget, results, progress=not args.no_progress,
            retry_errors=not args.no_retry_errors, fresh=args.fresh, **executor_settings(args),
        )  # fmt: skip
    except (ValueError, RuntimeError, OSError) as e:
        return _fail("bench", str(e))
    wanted = set(agents)
    mine = [r for r in latest_rows(rows) if r["agent"] in wanted and r["benchmark"] in uris]
    print(format_table(summarize(rows, task.aggregate), task.score_name, task.aggregate))
    reference, label = task.reference or (None, "")
    plot(rows, plot_path, task.score_name, reference, label, aggregate=task.aggregate)
    report = problems()[task.problem].report
    if report is not None:
        for path in report(rows, plot_path):
            print(f"plot:    {path}")
    errors = sum(1 for r in mine if r.get("error"))
    print(f"results: {results}")
    print(f"plot:    {plot_path}")
    if errors:
        print(f"{errors} of {len(mine)} episodes ended with an error (see 'error' in {results}; "
              "a rerun retries them)", file=sys.stderr)  # fmt: skip
        return 1
    return 0


# --- optgym train ----------------------------------------------------------------------------


#: A number with an exponent: YAML 1.1 reads ``1e-3`` (no dot) as text.
_EXPONENT_NUMBER = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+")


def _key_values(items: list[str], option: str) -> dict[str, Any]:
    """``--env-kwargs``/``--set`` ``key=value`` items; values read as YAML scalars (and
    ``1e-3``, which YAML 1.1 reads as text, as a number)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"{option} takes KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ValueError(f"{option} {key}: cannot read the value") from None
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise ValueError(f"{option} {key}: a number, boolean or string, got {text!r}")
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)
        out[key.strip()] = value
    return out


def _integer(text: str) -> int | str:
    """``text`` as an integer when it is one in ASCII digits (``٣`` and ``1_0`` are not),
    else the text, cut short, for the error message."""
    if re.fullmatch(r"-?[0-9]{1,30}", text):
        return int(text)
    return text if len(text) <= 40 else text[:37] + "..."


def _threads_option(text: str) -> int:
    """``--threads``: an integer in [1, os.cpu_count()]."""
    from optgym.train import check_threads

    try:
        return check_threads(_integer(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _episodes_option(text: str) -> int:
    """``--episodes``: an integer in [1, MAX_EPISODES]."""
    from optgym.bench import MAX_EPISODES

    value = _integer(text)
    if isinstance(value, str) or not 1 <= value <= MAX_EPISODES:
        raise argparse.ArgumentTypeError(
            f"episodes must be an integer in [1, {MAX_EPISODES}], got {value!r}"
        )
    return value


def cmd_train_sb3(args: argparse.Namespace) -> int:
    """``optgym train ENV_OR_TASK --algo ...``: one SB3 run into ``--out`` (or the first
    free ``--out``_2, _3, ... when ``--out`` holds a run's files: runs are numbered, never
    overwritten), one run per seed (``--seeds``: ``OUT/seed-N``, finished seeds skipped),
    a run continued from a saved one (``--from``), or an Optuna study (``--optimize``)."""
    from optgym.tasks import all_tasks
    from optgym.train import plan_steps, resolve, run_folder, train

    algo = args.algo or "ppo"
    try:
        if args.budget is not None:
            raise ValueError("--budget is for a learned agent's training (--task); use --steps")
        env_kwargs = _key_values(args.env_kwargs, "--env-kwargs")
        overrides = _key_values(args.set, "--set")
        config = resolve(args.target, algo, args.hyperparams, env_kwargs, args.n_envs, overrides)
        if args.optimize:
            return _optimize(args, algo, env_kwargs, overrides)
        if args.trials is not None or args.steps_per_trial is not None:
            raise ValueError("--trials and --steps-per-trial go with --optimize")
        if args.seeds is not None:
            if args.continue_from is not None:
                raise ValueError("--from continues one run; drop --seeds")
            return _train_seeds(args, algo, env_kwargs, overrides)
        plan = plan_steps(config, args.steps)
        out = run_folder(args.out)
        if plan.note:
            print(f"note:    {plan.note}")
        if out != Path(args.out):
            print(f"note:    {args.out} holds an earlier run; this run writes to {out}")
        run = train(
            args.target,
            algo=algo,
            steps=args.steps,
            out=out,
            seed=args.seed,
            n_envs=args.n_envs,
            hyperparams=args.hyperparams,
            env_kwargs=env_kwargs,
            overrides=overrides,
            checkpoint_every=args.checkpoint_every,
            tensorboard=not args.no_tensorboard,
            progress=not args.no_progress,
            threads=args.threads,
            eval_every=args.eval_every,
            eval_episodes=args.eval_episodes if args.eval_episodes is not None else 5,
            continue_from=args.continue_from,
            numbered=False,
        )
    except ValueError as e:
        return _fail("train", str(e))
    continued = f" (continued from {args.continue_from}: {run.total_steps} in all)"
    print(
        f"trained {algo} on {config.env_id}: {run.steps} steps"
        f"{continued if args.continue_from is not None else ''} in {run.seconds:.1f} s, "
        f"{len(config.benchmarks)} train benchmarks, seed {args.seed}"
    )
    if run.mean_episode_reward is not None:
        print(f"  mean episode reward (last {run.episodes}): {run.mean_episode_reward:.4f}")
    print(f"saved:   {run.model_path} (settings: {run.config_path})")
    if run.best_model_path is not None:
        print(
            f"best:    {run.best_model_path} (mean validation reward "
            f"{run.best_mean_reward:.4f}; every evaluation in {run.config_path.name})"
        )
    tasks = [t.name for t in all_tasks().values() if t.env_id == config.env_id]
    if tasks:
        print(f"bench:   optgym bench {tasks[0]} --agent sb3:path={run.model_path.parent}")
    return 0


def _given(*options: tuple[str, Any]) -> list[str]:
    """The flags of the ``(flag, value)`` pairs whose value is set (not None)."""
    return [flag for flag, value in options if value is not None]


def _optimize(
    args: argparse.Namespace, algo: str, env_kwargs: dict[str, Any], overrides: dict[str, Any]
) -> int:
    """``optgym train ENV --algo ALGO --optimize``: an Optuna study; the trials' table and
    the best settings, as a file ``--hyperparams`` takes."""
    from optgym.train import optimize, run_folder

    given = _given(
        ("--steps", args.steps), ("--seeds", args.seeds), ("--from", args.continue_from),
        ("--eval-every", args.eval_every), ("--checkpoint-every", args.checkpoint_every),
    )  # fmt: skip
    if given:
        raise ValueError(
            f"--optimize trains trials of --steps-per-trial steps, scored once on validation "
            f"benchmarks (--eval-episodes); drop {', '.join(given)}"
        )
    out = run_folder(args.out)
    if out != Path(args.out):
        print(f"note:    {args.out} holds an earlier run; this study writes to {out}")
    try:
        result = optimize(
            args.target, algo, trials=args.trials if args.trials is not None else 10,
            steps_per_trial=args.steps_per_trial, out=out, seed=args.seed,
            n_envs=args.n_envs, hyperparams=args.hyperparams, env_kwargs=env_kwargs,
            overrides=overrides,
            eval_episodes=args.eval_episodes if args.eval_episodes is not None else 5,
            threads=args.threads, progress=not args.no_progress, numbered=False,
        )  # fmt: skip
    except RuntimeError as e:  # optuna missing
        return _fail("train", str(e))
    names = list(dict.fromkeys(k for row in result.trials for k in row))
    cells = [[_cell(row.get(name)) for name in names] for row in result.trials]
    widths = [max(len(name), *(len(c[i]) for c in cells)) for i, name in enumerate(names)]
    print("  ".join(name.rjust(w) for name, w in zip(names, widths, strict=True)))
    for row in cells:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    print(f"best:    trial {result.best_trial}, mean validation reward {result.best_value:.4f}")
    print(f"saved:   {result.hyperparams_path} (trials: {result.trials_path})")
    print(
        f"train:   optgym train {args.target} --algo {algo} --hyperparams "
        f"{result.hyperparams_path} --out DIR"
    )
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _train_seeds(
    args: argparse.Namespace, algo: str, env_kwargs: dict[str, Any], overrides: dict[str, Any]
) -> int:
    from optgym.train import train_seeds

    if args.seed != 0:
        raise ValueError("give --seed or --seeds, not both")
    if args.threads != 1:
        raise ValueError("--seeds trains each seed on one torch thread; drop --threads")
    try:
        runs = train_seeds(
            args.target, parse_seeds(args.seeds), args.out, algo=algo, steps=args.steps,
            n_envs=args.n_envs, hyperparams=args.hyperparams, env_kwargs=env_kwargs,
            overrides=overrides, checkpoint_every=args.checkpoint_every,
            tensorboard=not args.no_tensorboard, progress=not args.no_progress,
            eval_every=args.eval_every,
            eval_episodes=args.eval_episodes if args.eval_episodes is not None else 5,
            **executor_settings(args),
        )  # fmt: skip
    except RuntimeError as e:  # Ray missing
        return _fail("train", str(e))
    failed = 0
    print("seed  steps  seconds  mean episode reward  model")
    for seed, run in runs.items():
        if isinstance(run, str):
            failed += 1
            print(f"{seed:>4}  failed: {run}")
            continue
        mean = "-" if run.mean_episode_reward is None else f"{run.mean_episode_reward:.4f}"
        print(f"{seed:>4}  {run.steps:>5}  {run.seconds:>7.1f}  {mean:>19}  {run.model_path}")
    if failed:
        print(f"{failed} of {len(runs)} seeds failed; a rerun trains them again")
    return 1 if failed else 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.task is None:
        return cmd_train_sb3(args)
    import optgym  # noqa: F401  registers the env ids
    from optgym.agents import resolve_agent
    from optgym.bench import benchmark_uris
    from optgym.budget import Budget
    from optgym.tasks import get_task
    from optgym.wrappers import BudgetWrapper

    allow_local_plugins()
    try:
        if args.algo is not None:
            raise ValueError("--algo trains an SB3 policy on an env or task; drop --task")
        sb3_only = _given(
            ("--from", args.continue_from), ("--optimize", args.optimize or None),
            ("--trials", args.trials), ("--steps-per-trial", args.steps_per_trial),
            ("--eval-every", args.eval_every), ("--eval-episodes", args.eval_episodes),
        )  # fmt: skip
        if sb3_only:
            raise ValueError(
                f"{', '.join(sb3_only)} train SB3 policies (optgym train ENV --algo ...); a "
                "learned agent's --task training takes --budget"
            )
        if args.seeds is not None or args.executor != "local" or args.workers != 1:
            raise ValueError(
                "--seeds, --workers and --executor train SB3 policies (optgym train ENV "
                "--seeds ...); a learned agent's --task training runs here, once"
            )
        task = get_task(args.task)
        spec = resolve_agent(args.target)
        spec.check_task(task)
        agent = spec.make()
        if not all(callable(getattr(agent, m, None)) for m in ("train", "save", "load")):
            raise ValueError(
                f"agent {spec.canonical!r} does not learn: it has no train/save/load "
                "(optgym.agents.LearnedAgent)"
            )
        if args.split == "test":
            raise ValueError("agents train on the train or validation split, never on test")
        if args.budget is None:
            raise ValueError("optgym train needs --budget, e.g. --budget steps=20000")
        budget = Budget.parse(args.budget, _unit(task))
        budget.require_limit("training")
        uris = benchmark_uris(task.name, args.dataset, args.split, args.episodes)
    except ValueError as e:
        return _fail("train", str(e))
    out = Path(args.out)
    # A learned agent may ask for env settings of its own while it trains (never the task's
    # own: states made in training are not results).
    env_kwargs = {**task.env_kwargs, **getattr(agent, "train_env_kwargs", {})}
    env = BudgetWrapper(optgym.make(task.env_id, step_limit=False, **env_kwargs), budget)
    try:
        figures = agent.train(env, uris, budget, seed=args.seed, progress=not args.no_progress)
        used = env.meter.used()
    finally:
        env.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    agent.save(out)
    print(f"trained {spec.canonical} on {len(uris)} {args.split} benchmarks of {task.name}")
    for key, value in {**figures, "budget_used": used}.items():
        print(f"  {key}: {value}")
    print(f"saved:   {out}")
    print(f"bench:   optgym bench {task.name} --agent {spec.canonical.split(':')[0]}:path={out}")
    return 0


# --- optgym validate -------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from optgym.budget import Budget
    from optgym.validate import FAILED, SUPERSEDED, Replayer, validate_results

    try:
        budget = Budget.parse(args.budget) if args.budget is not None else None
    except ValueError as e:
        return _fail("validate", str(e))
    status = 0
    totals = [0, 0, 0]  # passed, failed, superseded
    with Replayer() as replayer:  # envs made once for every file
        for name in args.results:
            try:
                checked = validate_results(
                    Path(name), budget=budget, split=args.split,
                    accept_untagged=args.accept_untagged, replayer=replayer,
                    allowed_files=args.allow_file or (),
                )  # fmt: skip
            except FileNotFoundError as e:
                status = max(status, _fail("validate", str(e), status=1))
                continue
            except ValueError as e:
                status = max(status, _fail("validate", str(e)))
                continue
            failed = [(n, message) for n, verdict, message in checked if verdict == FAILED]
            superseded = sum(1 for _, verdict, _ in checked if verdict == SUPERSEDED)
            for n, message in failed:
                print(f"{name}:{n}: {message}")
            if not checked:
                print(f"{name}: no result lines")
                status = max(status, 1)
                continue
            passed = len(checked) - len(failed) - superseded
            tail = f", {superseded} superseded" if superseded else ""
            where = f"{name}: " if len(args.results) > 1 else ""
            print(f"{where}{passed} passed, {len(failed)} failed{tail}")
            totals = [totals[0] + passed, totals[1] + len(failed), totals[2] + superseded]
            status = max(status, 1 if failed else 0)
    if len(args.results) > 1:
        tail = f", {totals[2]} superseded" if totals[2] else ""
        print(f"{len(args.results)} files: {totals[0]} passed, {totals[1]} failed{tail}")
    return status


# --- the parser ------------------------------------------------------------------------------


def _benchmark_options(p: argparse.ArgumentParser, split_help: str) -> None:
    from optgym.bench import MAX_EPISODES

    p.add_argument(
        "--dataset",
        action="append",
        metavar="URI",
        help="dataset URI or name (repeatable); default: the task's datasets",
    )
    p.add_argument("--split", default=None, help=split_help)
    p.add_argument(
        "--episodes",
        type=_episodes_option,
        default=10,
        help=f"benchmarks taken from each dataset (default 10, at most {MAX_EPISODES})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``optgym`` argument parser."""
    from optgym import __version__

    parser = _Parser(prog="optgym", description="OptGym: environments, datasets, benchmarks.")
    parser.add_argument("--version", action="version", version=f"optgym {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = commands.add_parser("envs", help="every env id: spaces, shapes, work unit")
    p.add_argument("--spaces", action="store_true",
                   help="make each env and show its spaces on its default benchmark (slower: "
                   "starts every backend)")  # fmt: skip
    p.set_defaults(run=cmd_envs)

    p = commands.add_parser("agents", help="every agent, per problem, with its settings")
    p.add_argument("--problem", default=None, help="only this problem's agents")
    p.set_defaults(run=cmd_agents)

    p = commands.add_parser("tasks", help="every leaderboard task: env, split, budget, score")
    p.set_defaults(run=cmd_tasks)

    p = commands.add_parser("datasets", help="list or build datasets")
    sub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    q = sub.add_parser("list", help="every dataset: URI, license, provenance, splits")
    q.set_defaults(run=cmd_datasets_list)
    q = sub.add_parser("build", help="build stored datasets (debian-v0) into the cache")
    q.add_argument("names", nargs="*", metavar="NAME", help="datasets to build (default: all)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(run=cmd_datasets_build)

    p = commands.add_parser(
        "train",
        help="train an SB3 policy on an env or task (--algo), or a learned agent (--task)",
        description=(
            "optgym train ENV_OR_TASK --algo ALGO --out DIR: stable-baselines3 / sb3-contrib "
            "with the env's shipped hyperparameter file, on its train split, for exactly "
            "--steps steps; writes DIR/model.zip, DIR/train.json, DIR/best_model.zip (the "
            "best evaluation on validation benchmarks), checkpoints and TensorBoard logs. "
            "A DIR that holds an earlier run is kept: the run writes to DIR_2, DIR_3, ... "
            "(printed). --from DIR0 continues a saved run; --optimize tunes hyperparameters "
            "with Optuna into DIR/best_hyperparams.yml. "
            "optgym train AGENT --task TASK --budget ... --out FILE: a learned agent's own "
            "training."
        ),
    )
    p.add_argument(
        "target",
        metavar="ENV_OR_TASK",
        help="env id (optgym/PassOrdering-v0) or task; with --task: the learned agent's spec",
    )
    p.add_argument(
        "--algo",
        default=None,
        help="ppo (default), maskable-ppo, dqn, a2c, sac or td3 (what the env's file configures)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env steps, exactly (with N sub-envs: the multiple of N at or below; default: "
        "the file's n_timesteps)",
    )
    p.add_argument("--hyperparams", default=None, metavar="FILE", help="YAML file to use instead")
    p.add_argument("--n-envs", type=int, default=None, help="sub-envs (default: the file's)")
    p.add_argument(
        "--env-kwargs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="env setting over the file's (repeatable), e.g. subproblem_time=0.1",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="algorithm hyperparameter over the file's (repeatable), e.g. n_epochs=1",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="STEPS",
        help="save a checkpoint every STEPS steps (default: a tenth of the run, at least 2048; "
        "0: never)",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=None,
        metavar="STEPS",
        help="evaluate the deterministic policy on validation benchmarks every STEPS steps, "
        "keeping the best as best_model.zip (default: a tenth of the run, at least 2048; "
        "0: never)",
    )
    p.add_argument(
        "--eval-episodes",
        type=int,
        default=None,
        metavar="N",
        help="validation benchmarks per evaluation (and per --optimize trial), one episode "
        "each (default 5)",
    )
    p.add_argument(
        "--from",
        dest="continue_from",
        default=None,
        metavar="DIR",
        help="continue the run saved in DIR (same env and --algo) for --steps more steps",
    )
    p.add_argument(
        "--optimize",
        action="store_true",
        help="tune hyperparameters with Optuna (pip install 'optgym[tune]'): writes "
        "OUT/best_hyperparams.yml (for --hyperparams) and OUT/trials.csv",
    )
    p.add_argument("--trials", type=int, default=None, help="with --optimize: trials (default 10)")
    p.add_argument(
        "--steps-per-trial",
        type=int,
        default=None,
        metavar="STEPS",
        help="with --optimize: env steps per trial (default: a tenth of the file's n_timesteps)",
    )
    p.add_argument(
        "--threads",
        type=_threads_option,
        default=1,
        help="torch threads, at most this machine's CPUs (default 1)",
    )
    p.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard logs")
    p.add_argument("--task", default=None, help="train the learned agent ENV_OR_TASK on this task")
    _benchmark_options(p, "train (default) or validation")
    p.add_argument("--budget", default=None, help="with --task: training budget, e.g. steps=20000")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument(
        "--seeds",
        default=None,
        help="train once per seed (0,1,2 or 0-9), each in its own process, into OUT/seed-N; "
        "--workers, --executor and --address say where",
    )
    executor_options(p, "training runs (with --seeds)", timeout=0, memory="default: none")
    p.add_argument(
        "--out",
        required=True,
        help="the run's folder (holding an earlier run: the first free OUT_2, OUT_3, ...)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_train, split="train")

    p = commands.add_parser("bench", help="run agents x benchmarks x seeds, append JSON lines")
    p.add_argument("task", metavar="TASK", help="leaderboard task, e.g. pass-ordering")
    p.add_argument(
        "--agent",
        action="append",
        required=True,
        metavar="SPEC",
        help="agent (repeatable): NAME, NAME:key=value,..., or package.module:Class[:key=value]",
    )
    _benchmark_options(p, "train, validation or test (default: the task's)")
    p.add_argument(
        "--benchmark",
        action="append",
        metavar="URI",
        help="a single benchmark URI (repeatable), e.g. generator://csmith-v0/5",
    )
    p.add_argument("--seeds", default="0", help="agent seeds: 0,1,2 or ranges 0-9 (default 0)")
    p.add_argument(
        "--budget",
        default=None,
        help="per-episode budget, e.g. calls=2000,seconds=60 (default: the task's)",
    )
    p.add_argument("--results", default=None, help="JSON-lines file (default results/TASK.jsonl)")
    executor_options(p, "episodes")
    p.add_argument("--plot", default=None, help="PNG to write (default results/TASK.png)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-retry-errors",
        action="store_true",
        help="do not run again the episodes whose line holds an error",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="move the results file aside (RESULTS.previous) and start afresh: a file whose "
        "episodes ran with another budget, agent code, model or OptGym version is refused "
        "otherwise",
    )
    p.set_defaults(run=cmd_bench)

    p = commands.add_parser("validate", help="check and replay every line of a results file")
    p.add_argument("results", metavar="RESULTS", nargs="+",
                   help="JSON-lines results files (one or more)")  # fmt: skip
    p.add_argument(
        "--budget", default=None, help="the budget lines must have (default: the task's)"
    )
    p.add_argument(
        "--split",
        default=None,
        choices=("train", "validation", "test", "any"),
        help="the split benchmarks must be in (default: the task's; any: no check)",
    )
    p.add_argument(
        "--accept-untagged",
        action="store_true",
        help="replay lines another installation wrote (their integrity tag is not this "
        "one's) instead of failing them; their agent, seed, times and budget_used are then "
        "only checked for consistency",
    )
    p.add_argument(
        "--allow-file",
        action="append",
        metavar="PATH",
        help="a local file a line may name as its benchmark (file://PATH; repeatable): "
        "validate reads no other",
    )
    p.set_defaults(run=cmd_validate)

    from optgym.leaderboard.cli import add_commands

    add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``optgym`` command line; the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2) and --help (0)
        return int(e.code or 0)
    if args.command is None:  # `optgym` alone: what it can do
        parser.print_help()
        return 0
    saved = warnings.formatwarning
    warnings.formatwarning = _warning_line  # one line, no source excerpt
    try:
        return args.run(args)
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return _fail(args.command, "interrupted (lines written so far are kept)", status=130)
    except OSError as e:  # a file the command was given or made cannot be used
        where = f"{e.filename}: " if e.filename else ""
        return _fail(args.command, f"{where}{e.strerror or e}", status=1)
    except (RuntimeError, ValueError) as e:
        return _fail(args.command, str(e), status=1)
    finally:
        warnings.formatwarning = saved


if __name__ == "__main__":
    sys.exit(main())
