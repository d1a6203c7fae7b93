"""The LNS measure of an incumbent against the best known objective, shared by the env's
reward and the report."""

from __future__ import annotations


def primal_gap(objective: float | None, best: float | None) -> float:
    """Berthold's primal gap in [0, 1]: 1 without a solution or with opposite signs."""
    if objective is None or best is None:
        return 1.0
    if objective == best:
        return 0.0
    if objective * best < 0:
        return 1.0
    return min(1.0, abs(objective - best) / max(abs(objective), abs(best)))
