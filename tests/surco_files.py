"""Helpers the SurCo tests share (a module the tests import): instance files written by hand
and every agent's episode on one of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optgym.bench import run_bench


def write_instance(tmp_path: Path, name: str, content: object) -> str:
    """Write ``content`` (bytes, text, or JSON data) to ``tmp_path / name``; its URI."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return f"file://{path}"


def every_agent_rows(task: Any, agents: list[str], uri: str, results: Path) -> dict[str, dict]:
    """Run each of ``agents`` once on ``uri`` under the task's budget; the lines by agent,
    after checking that each ran without error, within 1-30 solver calls, and committed one
    cost vector."""
    rows = run_bench(task.name, agents, [uri], [0], task.budget, results,
                     executor="inline", progress=False)  # fmt: skip
    by_agent = {r["agent"]: r for r in rows}
    assert set(by_agent) == set(agents)
    for row in rows:
        assert row["error"] is None, (row["agent"], row["error"])
        assert 1 <= row["budget_used"]["calls"] <= 30
        assert len(row["state"]["actions"]) == 1  # the best cost vector, committed
    return by_agent
