"""The LNS measures of an incumbent against a reference objective, shared by the env's
reward, the bench report and the leaderboard: the primal gap and the primal integral.

One definition of the primal integral (Berthold 2013) serves all three: the area under the
primal gap over ``[0, horizon]`` of a clock (CPU seconds, or the work axis of LP iterations
plus branch-and-bound nodes), where a trace lists ``(time, objective)`` at the initial
incumbent and at each improvement; the initial incumbent's gap is charged from 0 (the initial
solve's time counts), each gap holds until the next point, the last one to the horizon
(an episode that stops early, or whose full solve proves optimality early, is still measured
over the whole budget), and nothing past the horizon counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def primal_gap(objective: float | None, best: float | None) -> float:
    """Berthold's primal gap in [0, 1]: 1 without a solution or with opposite signs."""
    if objective is None or best is None:
        return 1.0
    if objective == best:
        return 0.0
    if objective * best < 0:
        return 1.0
    return min(1.0, abs(objective - best) / max(abs(objective), abs(best)))


def primal_integral(
    points: Sequence[tuple[float, float]], horizon: float, gap: Callable[[float], float]
) -> float:
    """The area under ``gap(objective)`` over ``[0, horizon]`` for a trace of ``(time,
    objective)`` points in time order (see the module docstring); 0 for an empty trace."""
    area = 0.0
    for i, (t, objective) in enumerate(points):
        start = 0.0 if i == 0 else min(t, horizon)
        end = points[i + 1][0] if i + 1 < len(points) else horizon
        area += gap(objective) * max(0.0, min(end, horizon) - start)
    return area
