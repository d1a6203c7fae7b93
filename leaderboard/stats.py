"""Leaderboard statistics: an entry's score, its bootstrap 95% interval, and ranks that
entries share when their intervals overlap.

An entry's score is the task's aggregate (geomean of ratios, or mean) over benchmarks of
each benchmark's mean over seeds. The interval resamples benchmarks with replacement: it
says how much the score owes to which benchmarks the test set happens to hold.

>>> low, high = bootstrap_interval([1.02, 0.97, 1.10], "geomean")
>>> ranks([(1.1, 1.0, 1.2), (1.05, 0.98, 1.1), (0.7, 0.6, 0.8)])
[1, 1, 3]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


def benchmark_means(scores: Iterable[tuple[str, int, float]]) -> dict[str, float]:
    """Benchmark -> its mean score over seeds, in the order benchmarks first appear."""
    by: dict[str, list[float]] = defaultdict(list)
    for benchmark, _, score in scores:
        by[benchmark].append(score)
    return {b: float(np.mean(v)) for b, v in by.items()}


def _aggregate(values: np.ndarray, how: str) -> np.ndarray:
    """Aggregate the last axis: geomean (positive values) or mean."""
    if how == "geomean":
        if (values <= 0).any():
            return np.full(values.shape[:-1], np.nan)
        return np.exp(np.log(values).mean(axis=-1))
    if how == "mean":
        return values.mean(axis=-1)
    raise ValueError(f"unknown aggregate {how!r}; allowed: geomean, mean")


def aggregate(values: Sequence[float], how: str) -> float:
    """The task's aggregate of ``values`` (nan for none, or a geomean of a value <= 0)."""
    if not len(values):
        return float("nan")
    return float(_aggregate(np.asarray(values, dtype=float), how))


def bootstrap_interval(
    values: Sequence[float], how: str, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """The percentile bootstrap 95% interval of ``aggregate(values, how)``, resampling the
    values with replacement (seeded: the same interval on every machine)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(resamples, data.size))
    stats = _aggregate(data[picks], how)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.nanpercentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def ranks(entries: Sequence[tuple[float, float, float]]) -> list[int]:
    """Ranks of ``(score, low, high)`` entries, higher scores better: an entry's rank is one
    plus the number of entries whose interval lies wholly above its own, so entries whose
    intervals overlap can share a rank."""
    out = []
    for _, _, high in entries:
        out.append(1 + sum(other_low > high for _, other_low, _ in entries))
    return out


__all__ = ["aggregate", "benchmark_means", "bootstrap_interval", "ranks"]
