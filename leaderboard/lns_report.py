"""The LNS tasks' own figures: primal gap, primal integral and survival rate per agent, and
a plot of the primal gap over time (the LB-RELAX and CL-LNS papers' metrics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SURVIVAL_GAP = 0.01  # an instance "survives" when its final primal gap is at most 1%


def gap_curve(row: dict, times: np.ndarray) -> np.ndarray:
    """The episode's primal gap at each of ``times`` (CPU seconds), from its state's trace
    of ``[seconds, objective, primal gap]`` at each new incumbent."""
    trace = ((row.get("state") or {}).get("extras") or {}).get("trace") or []
    out = np.ones(len(times))
    for t, _, gap in trace:
        out[times >= t] = gap
    return out


def lns_table(rows: list[dict]) -> str:
    """Mean final primal gap, mean primal integral and survival rate per agent."""
    agents: dict[str, list[dict]] = {}
    for row in rows:
        if not row.get("error") and row.get("state"):
            agents.setdefault(row["agent"], []).append(row)
    lines = [
        f"{'agent':<12} {'episodes':>8} {'primal gap':>11} {'primal integral':>16} "
        f"{'survival (gap<=1%)':>19}"
    ]
    for agent, mine in agents.items():
        gaps = [r["state"]["extras"]["primal_gap"] for r in mine]
        integrals = [r["state"]["extras"]["primal_integral"] for r in mine]
        survival = sum(g <= SURVIVAL_GAP for g in gaps) / len(gaps)
        lines.append(
            f"{agent:<12} {len(mine):>8} {np.mean(gaps):>11.4f} {np.mean(integrals):>16.3f} "
            f"{survival:>19.2f}"
        )
    return "\n".join(lines)


def plot_gap_over_time(rows: list[dict], path: Path, horizon: float | None = None) -> Path:
    """Mean primal gap over CPU time per agent, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if not r.get("error") and r.get("state")]
    if horizon is None:
        horizon = max((r["state"]["walltime"] for r in ok), default=60.0)
    times = np.linspace(0.0, max(horizon, 1e-3), 400)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for agent in dict.fromkeys(r["agent"] for r in ok):
        curves = [gap_curve(r, times) for r in ok if r["agent"] == agent]
        ax.plot(times, np.mean(curves, axis=0), label=f"{agent} ({len(curves)})")
    ax.set_xlabel("CPU seconds")
    ax.set_ylabel("mean primal gap")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("primal gap over time")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
