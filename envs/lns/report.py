"""The LNS tasks' own figures: primal gap, primal integral and survival rate per agent, and
a plot of the primal gap over time (the LB-RELAX and CL-LNS papers' metrics).

As in those papers, the gaps here are measured against the best objective known for each
instance over every source: the long SCIP run in ``best_known.json`` and every episode in
the results. (The env's own reward uses ``best_known.json`` alone, since it must be known
while the episode runs; an incumbent better than that counts as gap 0 there.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optgym.envs.lns.gap import primal_gap
from optgym.report import save_figure

SURVIVAL_GAP = 0.01  # an instance "survives" when its final primal gap is at most 1%


def _ok(rows: list[dict]) -> list[dict]:
    return [r for r in rows if not r.get("error") and (r.get("state") or {}).get("extras")]


def _maximize(uri: str, objectives: list[float]) -> bool:
    """The objective sense, from the best-known entry (its dual bound lies on the far side)
    or, without one, from which way the episodes' objectives moved."""
    from optgym.datasets.lns import best_known_entries

    entry = best_known_entries().get(uri)
    if entry and entry.get("dual_bound") is not None:
        return entry["dual_bound"] > entry["objective"]
    return bool(objectives) and objectives[-1] > objectives[0]


def references(rows: list[dict]) -> dict[str, float]:
    """Per instance, the best objective over ``best_known.json`` and every episode."""
    from optgym.datasets.lns import best_known

    found: dict[str, list[float]] = {}
    for r in _ok(rows):
        found.setdefault(r["benchmark"], []).append(r["state"]["extras"]["objective"])
    out = {}
    for uri, objectives in found.items():
        known = best_known(uri)
        pool = objectives + ([known] if known is not None else [])
        trace_dir = [o for r in _ok(rows) if r["benchmark"] == uri
                     for _, o, *_ in r["state"]["extras"]["trace"]]  # fmt: skip
        out[uri] = max(pool) if _maximize(uri, trace_dir) else min(pool)
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
    times = [0.0] + [t for t, *_ in trace[1:]] + [horizon]
    gaps = [primal_gap(o, reference) for _, o, *_ in trace]
    integral = sum(g * max(0.0, b - a) for g, a, b in zip(gaps, times[:-1], times[1:], strict=True))
    return gaps[-1], integral


def lns_table(rows: list[dict], horizon: float = 60.0) -> str:
    """Mean final primal gap, mean primal integral and survival rate per agent."""
    refs = references(rows)
    agents: dict[str, list[tuple[float, float]]] = {}
    for r in _ok(rows):
        agents.setdefault(r["agent"], []).append(episode_metrics(r, refs[r["benchmark"]], horizon))
    lines = [
        f"{'agent':<12} {'episodes':>8} {'primal gap':>11} {'primal integral':>16} "
        f"{'survival (gap<=1%)':>19}"
    ]
    for agent, metrics in agents.items():
        gaps = [g for g, _ in metrics]
        integrals = [i for _, i in metrics]
        survival = sum(g <= SURVIVAL_GAP for g in gaps) / len(gaps)
        lines.append(
            f"{agent:<12} {len(metrics):>8} {np.mean(gaps):>11.4f} {np.mean(integrals):>16.3f} "
            f"{survival:>19.2f}"
        )
    return "\n".join(lines)


def plot_gap_over_time(rows: list[dict], path: Path, horizon: float = 60.0) -> Path:
    """Mean primal gap over CPU time per agent, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    refs = references(rows)
    ok = _ok(rows)
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
