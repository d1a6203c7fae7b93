"""Agents: one module per family, all following :class:`optgym.agents.protocol.Agent`.

``make_agent("greedy")``, ``make_agent("cem:population=50")`` or
``make_agent("mymod:MyAgent")``; ``AGENTS`` maps every registered name to its entry (the
problems' own agents and the ``optgym.agents`` entry points).
"""

from __future__ import annotations

from typing import Any

from optgym.agents.protocol import (
    Agent,
    LearnedAgent,
    Result,
    check_fit,
    fit_problem,
    metered,
    solved,
)
from optgym.agents.registry import (
    AgentEntry,
    AgentSpec,
    agent_settings,
    make_agent,
    registry,
    resolve_agent,
)


def __getattr__(name: str) -> Any:
    if name == "AGENTS":  # built on first use: it reads every problem's record
        return registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AGENTS",
    "Agent",
    "AgentEntry",
    "AgentSpec",
    "LearnedAgent",
    "Result",
    "agent_settings",
    "check_fit",
    "fit_problem",
    "make_agent",
    "metered",
    "registry",
    "resolve_agent",
    "solved",
]
