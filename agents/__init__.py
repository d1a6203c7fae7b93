"""Agents: one module per family, all following :class:`optgym.agents.protocol.Agent`."""

from __future__ import annotations

import importlib
from typing import Any

from optgym.agents.greedy import GreedySearchAgent
from optgym.agents.lns_heuristics import GraphInducedLns, RandomLns, ScipAlone
from optgym.agents.local_branching import LbRelax, LocalBranchingLns
from optgym.agents.protocol import Agent, Result
from optgym.agents.random_search import RandomSearchAgent
from optgym.agents.reference import ReferenceAgent
from optgym.agents.schedule_search import HalideAutoscheduler, ScheduleRandomSearch
from optgym.agents.sequence_list import SequenceListAgent


def _value_agent(**kwargs: Any) -> Agent:
    """The value-function agent, imported on use (it loads torch)."""
    from optgym.agents.schedule_value import ValueFunctionAgent

    return ValueFunctionAgent(**kwargs)


def _planning(cls: str, module: str = "planning_search") -> Any:
    """A factory for an agent class imported on use (sklearn, cma, torch)."""

    def make(**kwargs: Any) -> Agent:
        return getattr(importlib.import_module(f"optgym.agents.{module}"), cls)(**kwargs)

    return make


# name -> (factory, what it is); names are what `optgym bench --agent` takes.
AGENTS: dict[str, tuple[Any, str]] = {
    "oz": (lambda **kw: ReferenceAgent("Oz", **kw), "LLVM's -Oz pipeline (reference)"),
    "o3": (lambda **kw: ReferenceAgent("O3", **kw), "LLVM's -O3 pipeline (reference)"),
    "o0": (lambda **kw: ReferenceAgent("O0", **kw), "no optimization (reference)"),
    "random": (RandomSearchAgent, "random search over action sequences"),
    "greedy": (GreedySearchAgent, "greedy search: best single action each step"),
    "sequences": (SequenceListAgent, "try each of a list of action sequences"),
    "scip": (ScipAlone, "LNS: SCIP alone on the whole problem (reference)"),
    "random-lns": (RandomLns, "LNS: uniformly random neighborhoods"),
    "graph-lns": (GraphInducedLns, "LNS: breadth-first balls on the variable-constraint graph"),
    "lb-lns": (LocalBranchingLns, "LNS: neighborhoods from the local-branching MIP"),
    "lb-relax": (LbRelax, "LNS: LB-RELAX, from the LP relaxation of local branching"),
    "lb-relax-s": (lambda **kw: LbRelax(sample=True, **kw), "LNS: LB-RELAX's sampling variant"),
    "adams2019-b1": (
        lambda **kw: HalideAutoscheduler("Adams2019-beam1", **kw),
        "Halide schedule: Adams2019 autoscheduler, beam 1 (reference)",
    ),
    "adams2019-b32": (
        lambda **kw: HalideAutoscheduler("Adams2019-beam32", **kw),
        "Halide schedule: Adams2019 autoscheduler, beam 32 (reference)",
    ),
    "mullapudi2016": (
        lambda **kw: HalideAutoscheduler("Mullapudi2016", **kw),
        "Halide schedule: Mullapudi2016 autoscheduler (reference)",
    ),
    "li2018": (
        lambda **kw: HalideAutoscheduler("Li2018", **kw),
        "Halide schedule: Li2018 gradient autoscheduler (reference)",
    ),
    "schedule-random": (ScheduleRandomSearch, "Halide schedule: random legal schedules"),
    "value": (
        lambda **kw: _value_agent(**{"measure_top": None, **kw}),
        "Halide schedule: greedy search on a learned value function",
    ),
    "value-beam": (
        lambda **kw: _value_agent(**{"beam": 4, "measure_top": None, **kw}),
        "Halide schedule: beam search (4) on a learned value function",
    ),
    "shooting": (_planning("RandomShooting"), "path planning: random shooting"),
    "cem": (_planning("CrossEntropyMethod"), "path planning: cross-entropy method"),
    "cmaes": (_planning("CmaEs"), "path planning: CMA-ES (the cma package)"),
    "mppi": (_planning("Mppi"), "path planning: model-predictive path integral"),
    "voo": (_planning("Voo"), "path planning: Voronoi optimistic optimization"),
    "la-mcts": (_planning("LaMcts", "space_partition"), "path planning: LA-MCTS"),
    "lap3": (
        _planning("LaP3", "space_partition"),
        "path planning: LaP3 (partitions on reached states)",
    ),
    "ppo": (
        _planning("PpoPlanner", "planning_rl"),
        "path planning (closed loop): PPO from stable-baselines3 (RL reference)",
    ),
    "random-select": (
        _planning("RandomSelection", "data_selection"),
        "data selection: uniformly random examples",
    ),
    "tfidf": (
        _planning("TfidfSelection", "data_selection"),
        "data selection: least TF-IDF-similar to the validation set first",
    ),
    "grad-dot": (
        lambda **kw: _planning("InfluenceSelection", "data_selection")(method="grad-dot", **kw),
        "data selection: gradient dot product with the validation loss",
    ),
    "kfac": (
        lambda **kw: _planning("InfluenceSelection", "data_selection")(method="kfac", **kw),
        "data selection: K-FAC influence on the validation loss",
    ),
    "ekfac": (
        lambda **kw: _planning("InfluenceSelection", "data_selection")(method="ekfac", **kw),
        "data selection: EK-FAC influence on the validation loss",
    ),
    "tfidf-ekfac": (
        _planning("TfidfInfluenceSelection", "data_selection"),
        "data selection: EK-FAC influence on the examples TF-IDF finds least similar",
    ),
    "self-influence": (
        _planning("SelfInfluenceSelection", "data_selection"),
        "data selection: highest EK-FAC self-influence first",
    ),
    "oracle": (
        _planning("OracleSelection", "data_selection"),
        "data selection: the known corrupted examples first (upper bound)",
    ),
}


def make_agent(name: str, **kwargs: Any) -> Agent:
    """An agent by name; ``ValueError`` listing the names there are."""
    try:
        factory = AGENTS[name][0]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; allowed: {', '.join(AGENTS)}") from None
    return factory(**kwargs)


__all__ = ["AGENTS", "Agent", "Result", "make_agent"]
