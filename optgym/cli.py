"""``optgym``: list envs and datasets, build datasets, run benchmarks, validate results.

    optgym envs
    optgym datasets list
    optgym datasets build debian-v0
    optgym bench pass-ordering --agent oz --agent random --episodes 10 --budget calls=2000
    optgym validate results/pass-ordering.jsonl

The commands only parse arguments and call the Python API (:mod:`optgym.bench`,
:mod:`optgym.validate`, :mod:`optgym.report`). Bad input prints one line naming the bad
value and the allowed ones, and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn


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


def _env_spaces(env_id: str) -> tuple[list[str], list[str]]:
    """Observation and reward space names of an env: the ``spaces`` module beside its entry
    point (``optgym.envs.passes.spaces`` for ``optgym.envs.passes.env:PassOrderingEnv``),
    else the defaults of the env's ``observation_space`` / ``reward_space`` arguments."""
    from gymnasium.envs.registration import registry

    entry = registry[env_id].entry_point
    if not isinstance(entry, str):
        return [], []
    package = entry.split(":")[0].rsplit(".", 1)[0]
    try:
        spaces = importlib.import_module(f"{package}.spaces")
    except ImportError:
        module, _, name = entry.partition(":")
        params = inspect.signature(getattr(importlib.import_module(module), name)).parameters

        def default(arg: str) -> list[str]:
            value = params[arg].default if arg in params else None
            return [value] if isinstance(value, str) else []

        return default("observation_space"), default("reward_space")
    observations = list(getattr(spaces, "OBSERVATION_SPACES", ()))
    return observations, list(getattr(spaces, "REWARD_SPACES", ()))


def cmd_envs(args: argparse.Namespace) -> int:
    from optgym import ENV_IDS

    for env_id in ENV_IDS:
        observations, rewards = _env_spaces(env_id)
        print(env_id)
        print(f"  observation spaces: {', '.join(observations) or '-'}")
        print(f"  reward spaces:      {', '.join(rewards) or '-'}")
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


def _parse_seeds(text: str) -> list[int]:
    """``"0,1,2"``, ``"0-9"`` (inclusive) or a mix such as ``"0-4,10"``."""
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, dash, hi = part.partition("-")
        if not (lo.isdigit() and (not dash or hi.isdigit())) or (dash and int(hi) < int(lo)):
            raise ValueError(
                f"bad seed {part!r} in --seeds {text!r}; expected non-negative integers or "
                "ranges, e.g. 0,1,2 or 0-9"
            )
        seeds.extend(range(int(lo), int(hi if dash else lo) + 1))
    if not seeds:
        raise ValueError(f"no seed in --seeds {text!r}; e.g. 0,1,2 or 0-9")
    return list(dict.fromkeys(seeds))


# The main plot's dashed line per env: the score its reference gets.
REFERENCE_LINES: dict[str, tuple[float | None, str]] = {
    "optgym/PassOrdering-v0": (1.0, "-Oz (1.0)"),
    "optgym/ILPNeighborhood-v0": (1.0, "best known (1.0)"),
    "optgym/ScheduleSearch-v0": (1.0, "Adams2019, beam 32 (1.0)"),
    "optgym/PathPlanning2D-v0": (0.0, "goal reached above 0"),
}


def cmd_bench(args: argparse.Namespace) -> int:
    from optgym.bench import EXECUTORS, benchmark_uris, run_bench
    from optgym.budget import Budget
    from optgym.leaderboard.tasks import get_task
    from optgym.report import format_table, plot, summarize

    try:
        task = get_task(args.task)
        from optgym.agents import AGENTS

        for name in args.agent:
            if name not in AGENTS:
                raise ValueError(f"unknown agent {name!r}; allowed: {', '.join(AGENTS)}")
        if args.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {args.executor!r}; allowed: {', '.join(EXECUTORS)}")
        budget = Budget.parse(args.budget) if args.budget is not None else task.budget
        seeds = _parse_seeds(args.seeds)
        uris: list[str] = []
        if args.dataset or not args.benchmark:
            uris += benchmark_uris(task.name, args.dataset, args.split, args.episodes)
        if args.benchmark:
            uris += benchmark_uris(task.name, args.benchmark, args.split, 1)
        uris = list(dict.fromkeys(uris))
        if not uris:
            names = ", ".join(args.dataset or [uri for uri, _ in task.datasets])
            raise ValueError(f"no benchmarks in the {args.split} split of {names}")
    except ValueError as e:
        return _fail("bench", str(e))
    results = Path(args.results or f"results/{task.name}.jsonl")
    plot_path = Path(args.plot or f"results/{task.name}.png")
    try:
        rows = run_bench(
            task.name, args.agent, uris, seeds, budget, results, workers=args.workers,
            executor=args.executor, address=args.address, progress=not args.no_progress,
        )  # fmt: skip
    except (ValueError, RuntimeError) as e:
        return _fail("bench", str(e))
    wanted = set(args.agent)
    mine = [r for r in rows if r["agent"] in wanted and r["benchmark"] in uris]
    planning = task.env_id == "optgym/PathPlanning2D-v0"
    print(format_table(summarize(rows, task.aggregate), task.score_name, task.aggregate))
    reference, label = REFERENCE_LINES.get(task.env_id, (None, ""))
    plot(rows, plot_path, task.score_name, reference, label, aggregate=task.aggregate)
    if task.env_id == "optgym/ILPNeighborhood-v0":
        from optgym.leaderboard.lns_report import lns_table, plot_gap_over_time

        print(lns_table(rows))
        gap_png = plot_gap_over_time(rows, plot_path.with_name(plot_path.stem + "-gap.png"))
        print(f"gap plot: {gap_png}")
    if task.env_id == "optgym/ScheduleSearch-v0":
        from optgym.leaderboard.schedule_report import plot_speedup_vs_search_time, schedule_table

        print(schedule_table(rows))
        png = plot_speedup_vs_search_time(rows, plot_path.with_name(plot_path.stem + "-time.png"))
        print(f"speedup/search-time plot: {png}")
    if planning:
        from optgym.leaderboard.planning_report import planning_table, plot_best_vs_evaluations

        print(f"\n{planning_table(rows)}")
        png = plot_best_vs_evaluations(rows, plot_path.with_name(plot_path.stem + "-evals.png"))
        print(f"best-reward/evaluations plot: {png}")
    errors = sum(1 for r in mine if r.get("error"))
    print(f"results: {results}")
    print(f"plot:    {plot_path}")
    if errors:
        print(f"{errors} of {len(mine)} episodes ended with an error (see 'error' in {results})")
    return 0


# --- optgym validate -------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from optgym.validate import validate_results

    try:
        checked = validate_results(Path(args.results))
    except FileNotFoundError as e:
        return _fail("validate", str(e), status=1)
    failed = [(n, message) for n, ok, message in checked if not ok]
    for n, message in failed:
        print(f"{args.results}:{n}: {message}")
    print(f"{len(checked) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


# --- the parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``optgym`` argument parser."""
    parser = _Parser(prog="optgym", description="OptGym: environments, datasets, benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = commands.add_parser("envs", help="list the registered envs and their spaces")
    p.set_defaults(run=cmd_envs)

    p = commands.add_parser("datasets", help="list or build datasets")
    sub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    q = sub.add_parser("list", help="every dataset: URI, license, provenance, splits")
    q.set_defaults(run=cmd_datasets_list)
    q = sub.add_parser("build", help="build stored datasets (debian-v0) into the cache")
    q.add_argument("names", nargs="*", metavar="NAME", help="datasets to build (default: all)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(run=cmd_datasets_build)

    p = commands.add_parser("bench", help="run agents x benchmarks x seeds, append JSON lines")
    p.add_argument("task", metavar="TASK", help="leaderboard task, e.g. pass-ordering")
    p.add_argument(
        "--agent",
        action="append",
        required=True,
        metavar="NAME",
        help="agent to run (repeatable), e.g. oz, random, greedy",
    )
    p.add_argument(
        "--dataset",
        action="append",
        metavar="URI",
        help="dataset URI or name (repeatable); default: the task's datasets",
    )
    p.add_argument(
        "--benchmark",
        action="append",
        metavar="URI",
        help="a single benchmark URI (repeatable), e.g. generator://csmith-v0/5",
    )
    p.add_argument(
        "--split",
        default=None,
        help="split of each dataset: train, validation or test (default: the task's)",
    )
    p.add_argument(
        "--episodes",
        type=int,
        default=10,
        help="benchmarks taken from each dataset's split (default 10)",
    )
    p.add_argument("--seeds", default="0", help="agent seeds: 0,1,2 or ranges 0-9 (default 0)")
    p.add_argument(
        "--budget",
        default=None,
        help="per-episode budget, e.g. calls=2000,seconds=60 (default: the task's)",
    )
    p.add_argument("--results", default=None, help="JSON-lines file (default results/TASK.jsonl)")
    p.add_argument("--workers", type=int, default=1, help="parallel episodes (default 1)")
    p.add_argument("--executor", default="process", help="process (default) or ray")
    p.add_argument("--address", default=None, help="Ray cluster address for --executor ray")
    p.add_argument("--plot", default=None, help="PNG to write (default results/TASK.png)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_bench)  # fmt: skip

    p = commands.add_parser("validate", help="replay every line of a results file")
    p.add_argument("results", metavar="RESULTS", help="a JSON-lines results file")
    p.set_defaults(run=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``optgym`` command line; the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2) and --help (0)
        return int(e.code or 0)
    saved = warnings.formatwarning
    warnings.formatwarning = _warning_line  # one line, no source excerpt
    try:
        return args.run(args)
    finally:
        warnings.formatwarning = saved


if __name__ == "__main__":
    sys.exit(main())
