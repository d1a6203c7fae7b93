"""Summaries of result lines: a table per agent and a matplotlib plot against the reference.

>>> from optgym.bench import read_results
>>> rows = read_results(Path("results/pass-ordering.jsonl"))
>>> print(format_table(summarize(rows), "IR instruction count reduction vs -Oz (geomean)"))

Tasks whose scores can be zero or negative (``Task.aggregate == "mean"``) pass
``aggregate="mean"`` to all three functions: the arithmetic mean replaces the geomean.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from optgym.problem import aggregate as aggregate_scores


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summarize(rows: list[dict], aggregate: str = "geomean") -> list[dict[str, Any]]:
    """One dict per agent, in order of first appearance.

    Keys: ``agent``, ``episodes`` (lines), ``errors`` (lines with an error), the
    ``aggregate`` itself (``geomean`` or ``mean``), ``min``, ``max`` (over the scored
    episodes; nan when none), ``mean_walltime`` (seconds the agent spent solving) and
    ``mean_calls`` (budget units used, where reported).
    """
    agents: dict[str, list[dict]] = {}
    for row in rows:
        agents.setdefault(row["agent"], []).append(row)
    summary = []
    for agent, mine in agents.items():
        scored = [r for r in mine if r.get("score") is not None]
        scores = [float(r["score"]) for r in scored]
        lines = [f"the line of {agent} on {r.get('benchmark')} (seed {r.get('seed')})"
                 for r in scored]  # fmt: skip
        walltimes = [float(r["walltime"]) for r in mine if r.get("walltime") is not None]
        calls = [
            float(r["budget_used"]["calls"])
            for r in mine
            if isinstance(r.get("budget_used"), dict) and r["budget_used"].get("calls") is not None
        ]
        summary.append(
            {
                "agent": agent,
                "episodes": len(mine),
                "errors": sum(1 for r in mine if r.get("error")),
                aggregate: aggregate_scores(scores, aggregate, lines),
                "min": min(scores) if scores else float("nan"),
                "max": max(scores) if scores else float("nan"),
                "mean_walltime": _mean(walltimes),
                "mean_calls": _mean(calls),
            }
        )
    return summary


def _cell(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def format_table(summary: list[dict[str, Any]], score_name: str, aggregate: str = "geomean") -> str:
    """A plain-text table of :func:`summarize`'s output (made with the same ``aggregate``),
    columns aligned, titled by the score."""
    header = ["agent", "episodes", "errors", aggregate, "min", "max", "walltime (s)", "calls"]
    body = [
        [
            s["agent"],
            _cell(s["episodes"]),
            _cell(s["errors"]),
            _cell(s[aggregate]),
            _cell(s["min"]),
            _cell(s["max"]),
            _cell(s["mean_walltime"], 2),
            _cell(s["mean_calls"], 0),
        ]
        for s in summary
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [f"score: {score_name}", line(header), rule, *(line(r) for r in body)]
    return "\n".join(lines)


def _short(uri: str) -> str:
    """``generator://csmith-v0/5`` -> ``csmith-v0/5``: axis labels without the scheme."""
    return uri.split("://", 1)[-1]


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Write the matplotlib figure ``fig`` to ``path`` as a PNG and close it. The image is
    rendered first, then written by a new file renamed into place: ``OSError`` when it
    cannot be (a full disk, a folder that cannot be written), never a file written through a
    link; ``ValueError`` when ``path`` names something that is not a regular file (a
    device such as ``/dev/full``, a FIFO, a folder)."""
    import io
    import stat

    import matplotlib.pyplot as plt

    from optgym.datasets.files import file_kind, write_file

    path = Path(path)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISLNK(mode):
        plt.close(fig)
        raise ValueError(f"plot {path} is not a regular file (a {file_kind(mode)}); name a "
                         "PNG file to write")  # fmt: skip
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    write_file(path, buffer.getvalue())
    return path


def plot(
    rows: list[dict],
    path: Path,
    score_name: str,
    reference: float | None = 1.0,
    reference_label: str = "-Oz (1.0)",
    aggregate: str = "geomean",
) -> Path:
    """Write a PNG: geomean score per agent (left), each benchmark's score per agent (right).

    A dashed line marks ``reference`` (the score of the task's reference, -Oz for pass
    ordering). Episodes with an error have no score and are left out. With
    ``aggregate="mean"`` the left panel shows the mean and the right one a linear axis with
    every score (a log axis would drop those <= 0). Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, ScalarFormatter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows, aggregate)
    positive_only = aggregate == "geomean"  # scores on a log axis
    agents = [s["agent"] for s in summary]
    benchmarks = list(dict.fromkeys(r["benchmark"] for r in rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(max(10.0, 6.0 + 0.25 * len(benchmarks)), 4.5),
        gridspec_kw={"width_ratios": [1, 2]},
    )  # fmt: skip
    heights = [0.0 if math.isnan(s[aggregate]) else s[aggregate] for s in summary]
    bar_colors = [colors[i % len(colors)] for i in range(len(agents))]
    left.bar(range(len(agents)), heights, color=bar_colors)
    left.set_xticks(range(len(agents)), agents, rotation=30, ha="right")
    left.set_ylabel(f"{aggregate} score")
    left.set_title(f"{aggregate} over episodes")
    for i, h in enumerate(heights):
        left.annotate(f"{h:.3f}", (i, h), ha="center", va="bottom", fontsize=8)

    width = 0.6 / max(len(agents), 1)
    for i, agent in enumerate(agents):
        xs, ys = [], []
        for r in rows:
            score = r.get("score")
            if r["agent"] == agent and score is not None and (score > 0 or not positive_only):
                xs.append(benchmarks.index(r["benchmark"]) + (i - (len(agents) - 1) / 2) * width)
                ys.append(score)
        right.scatter(xs, ys, s=18, label=agent, color=colors[i % len(colors)], alpha=0.8)
    if positive_only:
        right.set_yscale("log")
        # Scores sit near 1: plain numbers read better than powers of ten on a log axis.
        right.yaxis.set_major_formatter(ScalarFormatter())
        right.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    right.set_xlim(-0.5, len(benchmarks) - 0.5)
    every = max(1, len(benchmarks) // 40)  # at most about 40 labels
    ticks = range(0, len(benchmarks), every)
    right.set_xticks(ticks, [_short(benchmarks[i]) for i in ticks], rotation=60, ha="right",
                     fontsize=7 if len(benchmarks) > 20 else 8)  # fmt: skip
    right.set_ylabel("score (log)" if positive_only else "score")
    right.set_title("per benchmark")

    if reference is not None:
        for ax in (left, right):
            ax.axhline(reference, color="black", linestyle="--", linewidth=1, label=reference_label)
    right.legend(fontsize=8, loc="best")
    fig.suptitle(score_name, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
