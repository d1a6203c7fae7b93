"""Leaderboard statistics: an entry's score, its bootstrap 95% interval, and ranks from
paired differences between the entries that ran the same test set.

An entry's score is the task's aggregate (geomean of ratios, or mean) over benchmarks of
each benchmark's mean over seeds. Its interval resamples at two levels, as the test set was
drawn: benchmarks with replacement, then the seeds within each benchmark drawn.

Two entries of one pool ran the same benchmarks, so they are compared benchmark by
benchmark: the interval of their difference resamples the per-benchmark differences (on the
aggregate's scale: the log-ratio for a geomean), which removes how hard each benchmark is
from the comparison. Where both ran the same seeds on a benchmark the difference is paired
per seed too (the seeds resampled together); where they did not (a deterministic agent runs
1 seed, a stochastic one 3) the benchmark's means are compared, each entry's seeds resampled
on their own. An entry ranks below another only when the 95% interval of their difference
excludes no difference, so overlapping marginal intervals no longer hide a consistent win.

>>> a = [("maze", 0, 0.9), ("maze", 1, 0.8), ("open", 0, 0.4), ("open", 1, 0.5)]
>>> b = [("maze", 0, 0.7), ("maze", 1, 0.6), ("open", 0, 0.2), ("open", 1, 0.3)]
>>> score(a, "mean"), interval(a, "mean"), interval(b, "mean")  # the intervals overlap
(0.65, (0.4, 0.9), (0.2, 0.7))
>>> [round(x, 6) for x in paired_interval(a, b, "mean")]  # a - b: 0.2 on every pair
[0.2, 0.2]
>>> ranks([a, b], "mean"), shape_label(a), pairing(a, b)
([1, 2], '2x2', 'seed')
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from optgym.problem import aggregate, check_scores

RESAMPLES = 2000
LEVEL = 0.95

#: One entry's result lines: (benchmark, seed, score).
Scores = Sequence[tuple[str, int, float]]


def benchmark_means(scores: Iterable[tuple[str, int, float]]) -> dict[str, float]:
    """Benchmark -> its mean score over seeds, in the order benchmarks first appear."""
    by: dict[str, list[float]] = defaultdict(list)
    for benchmark, _, value in scores:
        by[benchmark].append(value)
    return {b: float(np.mean(v)) for b, v in by.items()}


def _resampled(values: np.ndarray, how: str) -> np.ndarray:
    """The task aggregate (:func:`optgym.problem.aggregate`) of the last axis of resampled
    values, whose originals it checked."""
    return np.exp(np.log(values).mean(axis=-1)) if how == "geomean" else values.mean(axis=-1)


def _checked(scores: Scores, how: str) -> None:
    """``ValueError`` where ``how`` cannot aggregate ``scores`` (a geomean over a score
    <= 0, named by its benchmark and seed)."""
    check_scores(
        [v for _, _, v in scores], how, [f"benchmark {b} (seed {s})" for b, s, _ in scores]
    )


def score(scores: Scores, how: str) -> float:
    """An entry's score: the aggregate ``how`` over benchmarks of each one's mean over seeds.
    Every table and plot shows this one number. ``ValueError`` for a geomean over a score
    <= 0, naming its benchmark and seed."""
    _checked(scores, how)
    means = benchmark_means(scores)
    return aggregate(list(means.values()), how, [f"benchmark {b}" for b in means])


def _by_seed(scores: Scores) -> dict[str, dict[int, float]]:
    """Benchmark -> seed -> score, benchmarks in the order they first appear."""
    out: dict[str, dict[int, float]] = {}
    for benchmark, seed, value in scores:
        out.setdefault(benchmark, {})[int(seed)] = float(value)
    return out


def shape(scores: Scores) -> tuple[int, int, int]:
    """The size of the test set an entry ran: (benchmarks, fewest seeds on a benchmark,
    most seeds on a benchmark)."""
    counts = [len(seeds) for seeds in _by_seed(scores).values()]
    return len(counts), min(counts, default=0), max(counts, default=0)


def shape_label(scores: Scores) -> str:
    """The test set an entry ran, as benchmarks x seeds: ``3x3``, ``4x1``, ``3x1-3`` where
    its benchmarks had different numbers of seeds."""
    benchmarks, fewest, most = shape(scores)
    seeds = str(most) if fewest == most else f"{fewest}-{most}"
    return f"{benchmarks}x{seeds}"


def _percentiles(stats: np.ndarray) -> tuple[float, float]:
    """The percentile interval at :data:`LEVEL`; nan when a replicate is nan."""
    if stats.size == 0 or np.isnan(stats).any():
        return float("nan"), float("nan")
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def _seed_means(
    rng: np.random.Generator, values: np.ndarray, resamples: int, picks: np.ndarray | None = None
) -> np.ndarray:
    """``resamples`` means of ``values`` (one benchmark's scores over its seeds), each of a
    resample of the seeds with replacement (``picks``, when given, is that resample)."""
    if picks is None:
        picks = rng.integers(0, values.size, size=(resamples, values.size))
    return values[picks].mean(axis=1)


def bootstrap_interval(
    values: Sequence[float], how: str, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """The percentile bootstrap 95% interval of ``aggregate(values, how)``, resampling the
    values with replacement (seeded: the same interval on every machine). ``ValueError``
    for a geomean over a value <= 0."""
    data = np.asarray(check_scores(values, how), dtype=float)
    if data.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(resamples, data.size))
    return _percentiles(_resampled(data[picks], how))


def interval(
    scores: Scores, how: str, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """The bootstrap 95% interval of :func:`score`: benchmarks resampled with replacement,
    then the seeds within each (seeded: the same interval on every machine). ``ValueError``
    for a geomean over a score <= 0."""
    _checked(scores, how)
    by = _by_seed(scores)
    if not by:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.stack(
        [_seed_means(rng, np.array(list(s.values())), resamples) for s in by.values()], axis=1
    )
    picks = rng.integers(0, len(by), size=(resamples, len(by)))
    return _percentiles(_resampled(np.take_along_axis(means, picks, axis=1), how))


def pairing(a: Scores, b: Scores) -> str:
    """How two entries are paired: ``"seed"`` when both ran the same seeds on every common
    benchmark (differences per benchmark and seed), else ``"benchmark"`` (differences of
    per-benchmark means: a deterministic agent runs 1 seed, a stochastic one 3)."""
    ours, theirs = _by_seed(a), _by_seed(b)
    common = [x for x in ours if x in theirs]
    same = all(set(ours[x]) == set(theirs[x]) for x in common)
    return "seed" if common and same else "benchmark"


def _paired_replicates(
    a: Scores, b: Scores, how: str, resamples: int, seed: int
) -> tuple[float, np.ndarray]:
    """A's score minus B's on the aggregate's additive scale (log for a geomean) over their
    common benchmarks, and its bootstrap replicates (empty when none). ``ValueError`` for
    a geomean over a score <= 0."""
    _checked(a, how)
    _checked(b, how)
    ours, theirs = _by_seed(a), _by_seed(b)
    common = [x for x in ours if x in theirs]
    if not common:
        return float("nan"), np.empty(0)
    rng = np.random.default_rng(seed)
    scale = np.log if how == "geomean" else (lambda v: v)
    observed, replicates = [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        for benchmark in common:
            mine, other = ours[benchmark], theirs[benchmark]
            x = np.array([mine[s] for s in sorted(mine)])
            y = np.array([other[s] for s in sorted(other)])
            observed.append(scale(x.mean()) - scale(y.mean()))
            if set(mine) == set(other):  # the same seeds: resample them together
                picks = rng.integers(0, x.size, size=(resamples, x.size))
                mx, my = (
                    _seed_means(rng, x, resamples, picks),
                    _seed_means(rng, y, resamples, picks),
                )
            else:
                mx, my = _seed_means(rng, x, resamples), _seed_means(rng, y, resamples)
            replicates.append(scale(mx) - scale(my))
    differences = np.stack(replicates, axis=1)
    differences[~np.isfinite(differences)] = np.nan
    picks = rng.integers(0, len(common), size=(resamples, len(common)))
    stats = np.take_along_axis(differences, picks, axis=1).mean(axis=1)
    return float(np.mean(observed)), stats


def paired_interval(
    a: Scores, b: Scores, how: str, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """The bootstrap 95% interval of A's score against B's over their common benchmarks:
    the difference for a mean, the ratio (A over B) for a geomean. Benchmarks are resampled
    with replacement, then the seeds within each (together where both ran the same seeds,
    see :func:`pairing`). nan when they share no benchmark; ``ValueError`` for a geomean
    over a score <= 0."""
    _, stats = _paired_replicates(a, b, how, resamples, seed)
    low, high = _percentiles(stats)
    if how == "geomean":
        return float(np.exp(low)), float(np.exp(high))
    return low, high


def better(a: Scores, b: Scores, how: str, resamples: int = RESAMPLES, seed: int = 0) -> int:
    """1 when A is better than B (the 95% interval of A against B lies wholly above no
    difference), -1 when B is better than A, 0 when the interval holds no difference."""
    _, stats = _paired_replicates(a, b, how, resamples, seed)
    low, high = _percentiles(stats)
    return 1 if low > 0 else -1 if high < 0 else 0


def ranks(entries: Sequence[Scores], how: str, resamples: int = RESAMPLES) -> list[int]:
    """Ranks of entries that ran the same test set, higher scores better: one plus the
    number of entries that are better than it on paired differences (:func:`better`), so
    entries that no comparison tells apart share a rank. Each pair is compared once, in the
    order given (the same result however the caller's list is ordered where seeds pair)."""
    out = [1] * len(entries)
    for i in range(len(entries)):
        for j in range(i + 1, len(entries)):
            found = better(entries[i], entries[j], how, resamples)
            if found > 0:
                out[j] += 1
            elif found < 0:
                out[i] += 1
    return out


__all__ = [
    "LEVEL",
    "RESAMPLES",
    "Scores",
    "benchmark_means",
    "better",
    "bootstrap_interval",
    "interval",
    "paired_interval",
    "pairing",
    "ranks",
    "score",
    "shape",
    "shape_label",
]
