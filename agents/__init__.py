"""Agents: one module per family, all following :class:`optgym.agents.protocol.Agent`."""

from __future__ import annotations

from typing import Any

from optgym.agents.greedy import GreedySearchAgent
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
}


def make_agent(name: str, **kwargs: Any) -> Agent:
    """An agent by name; ``ValueError`` listing the names there are."""
    try:
        factory = AGENTS[name][0]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; allowed: {', '.join(AGENTS)}") from None
    return factory(**kwargs)


__all__ = ["AGENTS", "Agent", "Result", "make_agent"]
