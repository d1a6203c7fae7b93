"""Agents: one module per family, all following :class:`optgym.agents.protocol.Agent`."""

from __future__ import annotations

from typing import Any

from optgym.agents.greedy import GreedySearchAgent
from optgym.agents.lns_heuristics import GraphInducedLns, RandomLns, ScipAlone
from optgym.agents.local_branching import LbRelax, LocalBranchingLns
from optgym.agents.protocol import Agent, Result
from optgym.agents.random_search import RandomSearchAgent
from optgym.agents.reference import ReferenceAgent
from optgym.agents.sequence_list import SequenceListAgent

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
}


def make_agent(name: str, **kwargs: Any) -> Agent:
    """An agent by name; ``ValueError`` listing the names there are."""
    try:
        factory = AGENTS[name][0]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; allowed: {', '.join(AGENTS)}") from None
    return factory(**kwargs)


__all__ = ["AGENTS", "Agent", "Result", "make_agent"]
