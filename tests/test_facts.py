"""Every fact said once (issue 24): the task aggregate, the problem records as the source
of agent names, fits and dataset registries, the reference agents of the tasks."""

from __future__ import annotations

import math

import pytest

from optgym.problem import aggregate, check_scores


def test_one_aggregate_refuses_a_geomean_over_a_score_that_is_not_positive() -> None:
    assert aggregate([0.5, 2.0]) == 1.0
    assert aggregate([-1.0, 3.0], "mean") == 1.0
    assert math.isnan(aggregate([], "geomean"))
    with pytest.raises(ValueError, match=r"geomean needs scores > 0.*line 2 scored 0\.0"):
        aggregate([1.5, 0.0], "geomean", ["line 1", "line 2"])
    with pytest.raises(ValueError, match=r"score 1 scored -0\.5"):
        check_scores([-0.5], "geomean")
    with pytest.raises(ValueError, match=r"unknown aggregate 'median'; allowed: geomean, mean"):
        aggregate([1.0], "median")


def test_the_reports_and_the_board_name_a_score_they_cannot_aggregate() -> None:
    from optgym.envs.schedule.report import schedule_summary
    from optgym.leaderboard.stats import interval, score
    from optgym.report import summarize

    rows = [
        {"agent": "a", "benchmark": "b1", "seed": 0, "score": 1.2},
        {"agent": "a", "benchmark": "b2", "seed": 1, "score": 0.0},
    ]
    with pytest.raises(ValueError, match=r"the line of a on b2 \(seed 1\) scored 0\.0"):
        summarize(rows, "geomean")
    assert summarize(rows, "mean")[0]["mean"] == pytest.approx(0.6)
    scores = [("b1", 0, 1.2), ("b2", 1, -0.1)]
    for call in (score, interval):
        with pytest.raises(ValueError, match=r"benchmark b2 \(seed 1\) scored -0\.1"):
            call(scores, "geomean")
    episodes = [
        {"agent": "x", "benchmark": f"b{i}", "seed": 0, "walltime": 1.0,
         "budget_used": {"calls": 1}, "state": {"extras": extras}}
        for i, extras in enumerate([{"speedup_vs_naive": 2.0}, {"speedup_vs_naive": 0.0}])
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"speedup_vs_naive of x on b1 \(seed 0\) scored 0\.0"):
        schedule_summary(episodes)
    summary = schedule_summary(episodes[:1])  # a speedup not reported is not a score
    assert summary[0]["vs_naive"] == 2.0 and math.isnan(summary[0]["vs_adams2019"])


def test_the_records_alone_name_the_built_in_agents_and_what_they_fit() -> None:
    from optgym.agents.registry import registry, resolve_agent
    from optgym.envs import problems

    known = problems()
    for problem in known.values():
        for name, record in problem.agents.items():
            entry = registry()[name]
            cls = entry.agent_class()
            if cls.__module__ != "optgym.agents.sb3":  # sb3 is also a plug-in: "*", its model's
                assert "problems" not in vars(cls), name
            assert "name" not in vars(cls), name
            assert entry.source == f"problem {problem.name}"
            assert resolve_agent(name).problems() == (record.envs or (problem.name,)), name
    planning = known["path-planning"]
    assert registry()["cem"].works_on == (planning.envs[0].id,)
    assert registry()["ppo"].works_on == (planning.envs[1].id,)


def test_a_record_restricts_an_agent_to_its_problems_env_ids_only() -> None:
    from optgym.envs import problems
    from optgym.problem import AgentRecord

    planning = problems()["path-planning"]
    assert planning.agents["cem"] == AgentRecord(
        "optgym.agents.planning.search:CrossEntropyMethod", "", ("optgym/PathPlanning2D-v0",)
    )
    with pytest.raises(ValueError, match=r"agent 'x' of problem 'p' is restricted to nope/X-v0"):
        type(planning)(
            name="p",
            title="",
            envs=planning.envs,
            datasets=list,
            agents={"x": ("m:C", "", ("nope/X-v0",))},
        )


def test_the_fit_check_reads_the_record_and_a_plug_in_its_class() -> None:
    import optgym  # noqa: F401  registers the env ids
    from optgym.agents import check_fit, fit_problem, make_agent
    from optgym.agents.planning.rl import PpoPlanner
    from optgym.agents.planning.search import CrossEntropyMethod
    from optgym.envs.planning.env import PathPlanning2DClosedLoopEnv, PathPlanning2DEnv

    assert fit_problem(make_agent("cem"), env=PathPlanning2DEnv) is None
    with pytest.raises(ValueError, match=r"^cem works on optgym/PathPlanning2D-v0, not on "
                       r"optgym/PathPlanning2DClosedLoop-v0"):  # fmt: skip
        check_fit(CrossEntropyMethod, env=PathPlanning2DClosedLoopEnv)
    assert "ppo works on optgym/PathPlanning2DClosedLoop-v0, not on optgym/PathPlanning2D-v0" == (
        fit_problem(PpoPlanner, env=PathPlanning2DEnv)
    )

    class OnlyClosedLoop(CrossEntropyMethod):  # a plug-in: its class says what it fits
        problems = ("optgym/PathPlanning2DClosedLoop-v0",)

    class Inherits(CrossEntropyMethod):  # a plug-in of a built-in class: the base's record
        pass

    assert "OnlyClosedLoop works on" in fit_problem(OnlyClosedLoop, env=PathPlanning2DEnv)
    assert fit_problem(Inherits, env=PathPlanning2DEnv) is None
    assert "Inherits works on" in fit_problem(Inherits, env=PathPlanning2DClosedLoopEnv)


def test_the_initial_board_runs_each_tasks_reference_agents() -> None:
    import importlib.util
    from pathlib import Path

    from optgym.agents.registry import registry, resolve_agent
    from optgym.tasks import all_tasks

    path = Path(__file__).resolve().parents[1] / "scripts" / "initial_board.py"
    spec = importlib.util.spec_from_file_location("initial_board", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert not hasattr(module, "ENTRIES")
    entries = module.entries()
    assert set(entries) == set(all_tasks())
    for name, task in all_tasks().items():
        assert [agent for agent, _ in entries[name]] == list(task.reference_agents), name
        for agent, display in entries[name]:
            base, _, settings = agent.partition(":")
            if settings:  # a built-in with the settings the task chose
                assert display.startswith(f"{base} (") and len(display) <= 80
            else:
                assert display == (registry()[agent].description or agent)
            resolve_agent(agent).check_task(task)  # every reference agent fits its task
    assert entries["pass-ordering"][:2] == [
        ("oz", "LLVM's -Oz pipeline"),
        ("o3", "LLVM's -O3 pipeline"),
    ]


def test_optgym_train_is_the_one_way_to_train_a_learned_agent() -> None:
    import shlex

    import optgym.agents.planning.rl as rl
    import optgym.agents.schedule.value as value
    import optgym.agents.schedule.value_data as value_data
    import optgym.agents.schedule.value_training as value_training
    from optgym.agents import resolve_agent
    from optgym.bench import benchmark_uris
    from optgym.cli import build_parser
    from optgym.envs.schedule.model import MAKE_COMMAND

    for module in (rl, value, value_data, value_training):  # no training entry of their own
        assert not hasattr(module, "main"), module.__name__
        assert "__main__" not in open(module.__file__, encoding="utf-8").read()
    words = shlex.split(MAKE_COMMAND)
    assert words[0] == "optgym"
    args = build_parser().parse_args([*words[1:], "--out", "weights.pt"])
    assert (args.target, args.task, args.budget) == ("value", "schedule-search", "measurements=540")
    # the shipped weights' settings: 45 train pipelines of at most 16 stages, 10 schedules each
    agent = resolve_agent(args.target).make()
    assert (agent.pipelines, agent.max_stages, agent.schedules) == (45, 16, 10)
    uris = benchmark_uris(args.task, args.dataset, args.split, args.episodes)
    assert len(uris) == 100 and uris[0] == "generator://halide-random-v0/2000"
    # the v1 weights: value iteration on search data, through the v1 task
    from optgym.envs.schedule import ENV_ID_V1
    from optgym.envs.schedule.model import MAKE_COMMANDS

    words = shlex.split(MAKE_COMMANDS[ENV_ID_V1])
    args = build_parser().parse_args([*words[1:], "--out", "weights.pt"])
    assert (args.target, args.task) == ("value-v1", "schedule-search-v1")
    agent = resolve_agent(args.target).make()
    assert (agent.pipelines, agent.schedules, agent.search_rounds, agent.beam) == (36, 8, 2, 4)
    assert benchmark_uris(args.task, args.dataset, args.split, args.episodes)[0] == uris[0]
