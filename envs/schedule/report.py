"""The schedule-search task's own figures: per agent, geomean speedup over the naive
schedule and over Adams2019 (beam 32), and search time; and a plot of speedup against
search time (the value-learning paper's trade-off)."""

from __future__ import annotations

from pathlib import Path

from optgym.problem import aggregate
from optgym.report import save_figure


def _ok(rows: list[dict]) -> list[dict]:
    return [r for r in rows if not r.get("error") and (r.get("state") or {}).get("extras")]


def _geomean(rows: list[dict], key: str) -> float:
    """The geomean of the speedup ``key`` of the episodes' extras, over the episodes that
    report it (:func:`optgym.problem.aggregate`: a speedup <= 0 is an error naming its
    episode, never dropped)."""
    having = [r for r in rows if r["state"]["extras"].get(key) is not None]
    names = [
        f"{key} of {r['agent']} on {r.get('benchmark')} (seed {r.get('seed')})" for r in having
    ]
    return aggregate([r["state"]["extras"][key] for r in having], "geomean", names)


def schedule_summary(rows: list[dict]) -> list[dict]:
    """One dict per agent: episodes, geomean speedups, search seconds and measurements."""
    out = []
    ok = _ok(rows)
    for agent in dict.fromkeys(r["agent"] for r in ok):
        mine = [r for r in ok if r["agent"] == agent]
        out.append(
            {
                "agent": agent,
                "episodes": len(mine),
                "vs_naive": _geomean(mine, "speedup_vs_naive"),
                "vs_adams2019": _geomean(mine, "speedup_vs_adams2019"),
                "search_s": float(sum(r["walltime"] or 0.0 for r in mine)),
                "search_s_max": float(max(r["walltime"] or 0.0 for r in mine)),
                "measurements": int(sum(r["budget_used"].get("calls", 0) for r in mine)),
            }
        )
    return out


def schedule_table(rows: list[dict]) -> str:
    """The table the runner prints after a schedule-search run."""
    lines = [
        f"{'agent':<16} {'episodes':>8} {'x naive':>9} {'x Adams2019-b32':>16} "
        f"{'search s (total)':>17} {'max per pipeline':>17} {'measurements':>13}"
    ]
    for s in schedule_summary(rows):
        lines.append(
            f"{s['agent']:<16} {s['episodes']:>8} {s['vs_naive']:>9.3f} "
            f"{s['vs_adams2019']:>16.3f} {s['search_s']:>17.1f} {s['search_s_max']:>17.1f} "
            f"{s['measurements']:>13}"
        )
    return "\n".join(lines)


def plot_speedup_vs_search_time(rows: list[dict], path: Path) -> Path:
    """Geomean speedup over Adams2019 (beam 32) against mean search seconds per pipeline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in schedule_summary(rows):
        x = s["search_s"] / max(1, s["episodes"])
        ax.scatter([x], [s["vs_adams2019"]], s=40)
        ax.annotate(s["agent"], (x, s["vs_adams2019"]), fontsize=8, xytext=(4, 4),
                    textcoords="offset points")  # fmt: skip
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="Adams2019, beam 32")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("mean search seconds per pipeline (compiles, measurements, model)")
    ax.set_ylabel("geomean speedup over Adams2019 (beam 32)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("schedule quality against search time")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, dpi=110)
