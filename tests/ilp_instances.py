"""Small real integer programs written for the LNS tests (a module the tests import)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pyscipopt


def vertex_cover(path: Path, n: int = 250, edges: int = 2500, seed: int = 0) -> str:
    """Write a random weighted vertex-cover MPS file of ``n`` nodes and ``edges`` edges to
    ``path``; its ``file://`` URI."""
    rng = np.random.default_rng(seed)
    m = pyscipopt.Model()
    m.hideOutput()
    x = [m.addVar(f"x{i}", vtype="B", obj=int(rng.integers(1, 101))) for i in range(n)]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < edges:
        a, b = (int(v) for v in rng.integers(0, n, 2))
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    for a, b in sorted(pairs):
        m.addCons(x[a] + x[b] >= 1, name=f"e{a}_{b}")
    m.writeProblem(str(path), verbose=False)
    return f"file://{path}"


@contextmanager
def lns_env(benchmark: str, subproblem_time: float, time_budget: float) -> Iterator[Any]:
    """An ``optgym/ILPNeighborhood-v0`` env on ``benchmark`` (0.2 s initial solve), unwrapped;
    closed on exit."""
    env = gym.make(
        "optgym/ILPNeighborhood-v0", benchmark=benchmark, initial_time=0.2,
        subproblem_time=subproblem_time, time_budget=time_budget,
    )  # fmt: skip
    try:
        yield env.unwrapped
    finally:
        env.close()
