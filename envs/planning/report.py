"""The path-planning task's own figures: per map and agent, the success rate and the mean
best reward over seeds, and a plot of the best reward found against plan evaluations (the
LaP3 paper's comparison of planners at equal evaluation counts).

An episode's score is the reward of the plan the agent committed, replayed by the runner:
``payoff * (1 - 0.2 t / T)`` > 0 when the plan reaches a goal at step ``t`` of ``T``, else
minus the distance left to the nearest goal (<= 0). So an episode succeeds when its score is
above :data:`SUCCESS_REWARD`. Open-loop planners record in ``state.extras`` a ``trace`` of
``[evaluations, best reward so far]`` (one point each time a batch improved the best) and
the total ``evaluations``; the plot needs the trace, the tables use it where present.

>>> from optgym.bench import read_results
>>> rows = read_results(Path("results/path-planning.jsonl"))
>>> print(planning_table(rows))
>>> plot_best_vs_evaluations(rows, Path("results/path-planning-evaluations.png"))
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from optgym.report import save_figure

#: An episode succeeded (its plan reached a goal) when its reward is above this.
SUCCESS_REWARD = 0.0

_MAPS_PREFIX = "benchmark://nav2d-v0/"

_LONG_HEADER = ["map", "agent", "episodes", "errors", "successes", "rate", "mean reward", "std",
               "evaluations", "walltime (s)"]  # fmt: skip


def map_name(uri: str) -> str:
    """A short label for a map: ``benchmark://nav2d-v0/maze`` -> ``maze``; other URIs
    lose only their scheme (``generator://nav2d-random-v0/3`` -> ``nav2d-random-v0/3``)."""
    if uri.startswith(_MAPS_PREFIX):
        return uri[len(_MAPS_PREFIX) :]
    return uri.split("://", 1)[-1]


def _scored(rows: list[dict]) -> list[dict]:
    """Episodes that ran to a replayed score."""
    return [r for r in rows if not r.get("error") and r.get("score") is not None]


def _trace(row: dict) -> list[list[float]]:
    """The episode's ``[evaluations, best reward]`` points; empty without a trace."""
    extras = (row.get("state") or {}).get("extras") or {}
    return list(extras.get("trace") or [])


def _evaluations(row: dict) -> float | None:
    """The plan evaluations the episode's search made, where its state records them."""
    extras = (row.get("state") or {}).get("extras") or {}
    value = extras.get("evaluations")
    return float(value) if value is not None else None


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else float("nan")


def _std(values: list[float]) -> float:
    """Sample standard deviation (n - 1); nan for fewer than two values."""
    if len(values) < 2:
        return float("nan")
    m = _mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))


def planning_summary(rows: list[dict]) -> list[dict[str, Any]]:
    """One dict per (map, agent), maps then agents in order of first appearance.

    Keys: ``map`` (:func:`map_name`), ``benchmark`` (URI), ``agent``, ``episodes`` (scored
    episodes), ``errors`` (episodes that ended with an error, left out of the rest),
    ``successes`` (scores > :data:`SUCCESS_REWARD`), ``success_rate`` (successes /
    episodes), ``mean_reward`` and ``std_reward`` (of the scores; the std is the sample one,
    nan for one episode), ``mean_evaluations`` (plan evaluations, where recorded) and
    ``mean_walltime`` (seconds in the agent's ``solve``). Numbers without data are nan.
    """
    benchmarks = list(dict.fromkeys(r["benchmark"] for r in rows))
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    out: list[dict[str, Any]] = []
    for uri in benchmarks:
        for agent in agents:
            mine = [r for r in rows if r["benchmark"] == uri and r["agent"] == agent]
            if not mine:
                continue
            ok = _scored(mine)
            scores = [float(r["score"]) for r in ok]
            successes = sum(1 for s in scores if s > SUCCESS_REWARD)
            evaluations = [e for e in map(_evaluations, ok) if e is not None]
            walltimes = [float(r["walltime"]) for r in ok if r.get("walltime") is not None]
            out.append(
                {
                    "map": map_name(uri),
                    "benchmark": uri,
                    "agent": agent,
                    "episodes": len(ok),
                    "errors": len(mine) - len(ok),
                    "successes": successes,
                    "success_rate": successes / len(ok) if ok else float("nan"),
                    "mean_reward": _mean(scores),
                    "std_reward": _std(scores),
                    "mean_evaluations": _mean(evaluations),
                    "mean_walltime": _mean(walltimes),
                }
            )
    return out


def _number(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _aligned(header: list[str], body: list[list[str]]) -> list[str]:
    """Columns padded to width: the first left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([cells[0].ljust(widths[0]), *rest]).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in body)]


def _cell(successes: int, episodes: int, mean_reward: float) -> str:
    return f"{successes}/{episodes} {_number(mean_reward, 2)}" if episodes else "-"


def planning_table(rows: list[dict]) -> str:
    """The tables the runner prints after a path-planning run.

    First a matrix, one row per agent and one column per map (and ``all`` maps): the
    successes over the scored episodes and the mean best reward, e.g. ``10/10 0.93``. Then
    the long form of :func:`planning_summary`: one line per map and agent with the error
    count, success rate, mean and std of the reward, mean evaluations and mean seconds.
    """
    summary = planning_summary(rows)
    maps = list(dict.fromkeys(s["map"] for s in summary))
    agents = list(dict.fromkeys(s["agent"] for s in summary))
    by_key = {(s["map"], s["agent"]): s for s in summary}
    matrix = []
    for agent in agents:
        cells = [agent]
        for name in maps:
            s = by_key.get((name, agent))
            cells.append(_cell(s["successes"], s["episodes"], s["mean_reward"]) if s else "-")
        ok = _scored([r for r in rows if r["agent"] == agent])
        scores = [float(r["score"]) for r in ok]
        cells.append(_cell(sum(v > SUCCESS_REWARD for v in scores), len(scores), _mean(scores)))
        matrix.append(cells)
    long_form = [
        [
            s["map"],
            s["agent"],
            str(s["episodes"]),
            str(s["errors"]),
            str(s["successes"]),
            _number(s["success_rate"], 2),
            _number(s["mean_reward"], 4),
            _number(s["std_reward"], 4),
            _number(s["mean_evaluations"], 0),
            _number(s["mean_walltime"], 2),
        ]
        for s in summary
    ]
    lines = [
        "success/episodes and mean best reward (success: reward > 0, a goal reached)",
        *_aligned(["agent", *maps, "all"], matrix),
        "",
        *_aligned(_LONG_HEADER, long_form),
    ]
    return "\n".join(lines)


def best_curve(row: dict, grid: np.ndarray) -> np.ndarray:
    """The episode's best reward so far at each evaluation count of ``grid``: a step
    function of its trace, nan before its first evaluated batch, flat after its last point."""
    trace = np.asarray(_trace(row), dtype=np.float64).reshape(-1, 2)
    index = np.searchsorted(trace[:, 0], grid, side="right") - 1
    values = trace[np.maximum(index, 0), 1] if len(trace) else np.full(len(grid), np.nan)
    return np.where(index >= 0, values, np.nan)


def plot_best_vs_evaluations(rows: list[dict], path: Path) -> Path:
    """Write a PNG: one panel per map, one line per agent, the mean over seeds of the best
    reward so far against plan evaluations, with a band from the seeds' minimum to their
    maximum and a dashed line at the success threshold (reward 0).

    The curves are the episodes' traces as step functions on the evaluation counts
    ``0..max``; a line starts where every seed of the agent has evaluated a first batch.
    Episodes with an error or without a trace (closed-loop agents) are left out. Returns
    ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed
    import matplotlib.pyplot as plt

    traced = [r for r in _scored(rows) if _trace(r)]
    maps = list(dict.fromkeys(r["benchmark"] for r in traced))
    agents = list(dict.fromkeys(r["agent"] for r in traced))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    top = max((max(_evaluations(r) or 0.0, _trace(r)[-1][0]) for r in traced), default=1.0)
    grid = np.arange(0, int(top) + 1, dtype=np.float64)

    cols = max(1, min(3, len(maps)))
    nrows = max(1, math.ceil(len(maps) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(maps) :]:
        ax.set_axis_off()
    if not maps:
        axes[0, 0].text(0.5, 0.5, "no episode with a trace", ha="center", va="center")
    handles: dict[str, Any] = {}
    for ax, uri in zip(axes.flat, maps, strict=False):
        for i, agent in enumerate(agents):
            mine = [r for r in traced if r["benchmark"] == uri and r["agent"] == agent]
            if not mine:
                continue
            curves = np.array([best_curve(r, grid) for r in mine])
            everyone = ~np.isnan(curves).any(axis=0)  # every seed has a best by then
            xs, ys = grid[everyone], curves[:, everyone]
            color = colors[i % len(colors)]
            (handles[agent],) = ax.plot(xs, ys.mean(axis=0), color=color, linewidth=1.4)
            ax.fill_between(xs, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.15,
                            linewidth=0)  # fmt: skip
        ax.axhline(SUCCESS_REWARD, color="black", linestyle="--", linewidth=1)
        ax.set_xlim(0, grid[-1])
        ax.set_title(map_name(uri))
        ax.set_xlabel("plan evaluations")
        ax.set_ylabel("best reward so far")
        ax.grid(alpha=0.3)
    if handles:
        labels = [f"{agent} (mean, min-max over seeds)" for agent in handles]
        fig.legend(list(handles.values()), labels, loc="lower center", fontsize=8,
                   ncol=min(len(handles), 4))  # fmt: skip
    rows_of_legend = math.ceil(len(handles) / 4) if handles else 0
    fig.suptitle("best reward against plan evaluations (dashed: 0, goal reached above)")
    fig.tight_layout(rect=(0.0, 0.04 * rows_of_legend / nrows + 0.02 * bool(handles), 1.0, 1.0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, dpi=110)
