"""The LNS tasks' own figures: primal gap, primal integral (over CPU seconds and over the
work axis) and survival rate per agent, and a plot of the primal gap over time (the LB-RELAX
and CL-LNS papers' metrics).

As in those papers, the gaps here are measured after the fact against the best objective
known for each instance over every source: the reference the env used (its
``reference_objective``, or ``best_known.json``) and every episode in the results, so that
on an instance nobody has a reference for (a fresh generator seed, a user's MPS file) the
integrals still differ between agents. The integral is :func:`optgym.envs.lns.gap.primal_integral`,
the env's definition, over each episode's ``time_budget``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optgym.envs.lns.gap import primal_gap, primal_integral
from optgym.report import save_figure

SURVIVAL_GAP = 0.01  # an instance "survives" when its final primal gap is at most 1%
DEFAULT_HORIZON = 60.0  # the env's default time_budget


def _ok(rows: list[dict]) -> list[dict]:
    return [r for r in rows if not r.get("error") and (r.get("state") or {}).get("extras")]


def maximizes(uri: str, objectives: list[float]) -> bool:
    """The objective sense, from the best-known entry (its dual bound lies on the far side)
    or, without one, from which way the episodes' objectives moved."""
    from optgym.datasets.lns import best_known_entries

    entry = best_known_entries().get(uri)
    if entry and entry.get("dual_bound") is not None:
        return entry["dual_bound"] > entry["objective"]
    return bool(objectives) and objectives[-1] > objectives[0]


def episode_horizon(row: dict) -> float:
    """The CPU seconds an episode's integral covers: its env's ``time_budget``."""
    config = (row.get("state") or {}).get("config") or {}
    value = config.get("time_budget", DEFAULT_HORIZON)
    return float(value) if isinstance(value, (int, float)) else DEFAULT_HORIZON


def references(rows: list[dict]) -> dict[str, float]:
    """Per instance, the best objective over its references (``best_known.json``, an env's
    ``reference_objective``) and every episode."""
    from optgym.datasets.lns import best_known_objective

    found: dict[str, list[float]] = {}
    moves: dict[str, list[float]] = {}
    for r in _ok(rows):
        uri = r["benchmark"]
        found.setdefault(uri, []).append(r["state"]["extras"]["objective"])
        moves.setdefault(uri, []).extend(o for _, o, *_ in r["state"]["extras"]["trace"])
        given = (r["state"].get("config") or {}).get("reference_objective")
        if isinstance(given, (int, float)) and not isinstance(given, bool):
            found[uri].append(float(given))
    out = {}
    for uri, objectives in found.items():
        known = best_known_objective(uri)
        pool = objectives + ([known] if known is not None else [])
        out[uri] = max(pool) if maximizes(uri, moves[uri]) else min(pool)
    return out


def gap_curve(row: dict, times: np.ndarray, reference: float) -> np.ndarray:
    """The episode's primal gap at each of ``times`` (CPU seconds), from its trace of
    ``[seconds, objective, ...]`` at each new incumbent (the first one charged from 0)."""
    trace = row["state"]["extras"]["trace"]
    out = np.full(len(times), primal_gap(trace[0][1], reference))
    for t, objective, *_ in trace[1:]:
        out[times >= t] = primal_gap(objective, reference)
    return out


def episode_metrics(row: dict, reference: float, horizon: float) -> tuple[float, float]:
    """(final primal gap, primal integral over [0, horizon] CPU seconds)."""
    trace = row["state"]["extras"]["trace"]
    points = [(float(t), float(o)) for t, o, *_ in trace]
    integral = primal_integral(points, horizon, lambda o: primal_gap(o, reference))
    return primal_gap(points[-1][1], reference), integral


def work_gap(row: dict, reference: float, work: float) -> float | None:
    """The episode's mean primal gap over its first ``work`` units of the work axis (LP
    iterations plus branch-and-bound nodes): its work-axis primal integral over
    ``[0, work]`` divided by ``work``; None for an episode made before the work axis."""
    extras = row["state"]["extras"]
    if "trace_work" not in extras or not work > 0:
        return None
    pairs = zip(extras["trace_work"], extras["trace"], strict=True)
    points = [(float(w), float(o)) for w, (_, o, *_) in pairs]
    return primal_integral(points, work, lambda o: primal_gap(o, reference)) / work


def work_horizons(rows: list[dict]) -> dict[str, float]:
    """Per instance, the most work any compared episode reached (``work_end``): the span
    the work-axis integrals cover, the same for every agent (an episode that did less keeps
    its final gap to the span's end, as on the clock)."""
    out: dict[str, float] = {}
    for r in _ok(rows):
        work = r["state"]["extras"].get("work_end")
        if isinstance(work, int) and not isinstance(work, bool):
            out[r["benchmark"]] = max(out.get(r["benchmark"], work), work)
    return out


def lns_summary(rows: list[dict]) -> list[tuple[str, int, float, float, float | None, float]]:
    """Per agent (in the order of its first line): episodes, mean final primal gap, mean
    primal integral (CPU seconds), mean gap over the work axis (None when an episode has no
    work axis) and survival rate, all against the references of :func:`references`."""
    refs = references(rows)
    spans = work_horizons(rows)
    agents: dict[str, list[tuple[float, float, float | None]]] = {}
    for r in _ok(rows):
        ref = refs[r["benchmark"]]
        gap, integral = episode_metrics(r, ref, episode_horizon(r))
        on_work = work_gap(r, ref, spans.get(r["benchmark"], 0))
        agents.setdefault(r["agent"], []).append((gap, integral, on_work))
    out = []
    for agent, metrics in agents.items():
        gaps = [g for g, _, _ in metrics]
        on_work = [w for _, _, w in metrics if w is not None]
        work = float(np.mean(on_work)) if len(on_work) == len(metrics) else None
        survival = sum(g <= SURVIVAL_GAP for g in gaps) / len(gaps)
        integral = float(np.mean([i for _, i, _ in metrics]))
        out.append((agent, len(metrics), float(np.mean(gaps)), integral, work, survival))
    return out


#: The columns of :func:`lns_summary` (after the agent), as the tables name them.
SUMMARY_COLUMNS = (
    "episodes", "primal gap", "primal integral", "gap over work", "survival (gap<=1%)",
)  # fmt: skip


def lns_table(rows: list[dict]) -> str:
    """:func:`lns_summary` as a text table."""
    widths = (8, 11, 16, 14, 19)
    head = " ".join(f"{name:>{w}}" for name, w in zip(SUMMARY_COLUMNS, widths, strict=True))
    lines = [f"{'agent':<12} {head}"]
    for agent, episodes, gap, integral, work, survival in lns_summary(rows):
        work_text = "n/a" if work is None else f"{work:.4f}"
        lines.append(
            f"{agent:<12} {episodes:>8} {gap:>11.4f} {integral:>16.3f} "
            f"{work_text:>14} {survival:>19.2f}"
        )
    return "\n".join(lines)


def board_table(rows: list[dict]) -> tuple[tuple[str, ...], list[tuple]]:
    """The leaderboard's after-the-fact table of an LNS task: :func:`lns_summary` over every
    entry's lines (each line's ``agent`` is its entry's name), so that the gaps are against
    the best objective any entry (or a reference) found on each instance."""
    return ("entry", *SUMMARY_COLUMNS), [tuple(r) for r in lns_summary(rows)]


def plot_gap_over_time(rows: list[dict], path: Path, horizon: float | None = None) -> Path:
    """Mean primal gap over CPU time per agent, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    refs = references(rows)
    ok = _ok(rows)
    if horizon is None:
        horizon = max((episode_horizon(r) for r in ok), default=DEFAULT_HORIZON)
    times = np.linspace(0.0, horizon, 400)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for agent in dict.fromkeys(r["agent"] for r in ok):
        curves = [gap_curve(r, times, refs[r["benchmark"]]) for r in ok if r["agent"] == agent]
        ax.plot(times, np.mean(curves, axis=0), label=f"{agent} ({len(curves)})")
    ax.set_xlabel("CPU seconds")
    ax.set_ylabel("mean primal gap (to the best known over all runs)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("primal gap over time")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, dpi=110)
