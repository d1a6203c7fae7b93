"""The linear datamodeling score (LDS) of influence methods on the data-selection task.

LDS (Park et al. 2023, "TRAK"; Grosse et al. 2023) asks how well an influence method
predicts what retraining does. Train the model on the whole pool (the env's start model),
score every pool example's influence on each query (a validation example), then retrain on
``subsets`` random halves of the pool with the env's own deterministic training
(``env.unwrapped.retrain``). For one query, a subset's predicted effect is the sum of the
scores of the examples it keeps, and its measured outcome the query's cross-entropy after
retraining on it; the query's LDS is the Spearman correlation between the predicted effects
and minus the measured losses (a positive score means the example lowers the loss). The
figure reported is the **mean of the per-query LDS over the queries** (per-query, as in
TRAK and Grosse et al., not the LDS of the summed validation loss).

The retrainings are shared by all methods (and by ``benchmarks/influence.py``): build them
once with :func:`prepare_lds`, then score any ``(n_query, n_train)`` matrix with
:func:`lds_of_scores`.

>>> lds_per_method("generator://digits-noisy-v0/0", subsets=50)
{'ekfac': 0.63, 'kfac': 0.63, 'grad-dot': 0.27}

CLI: ``python -m optgym.agents.dataselect.lds [--benchmark URI] [--subsets 50]
[--methods ekfac,kfac,grad-dot]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

import optgym  # noqa: F401  registers the env
from optgym.agents.dataselect.influence import fit_factors, influence_scores, random_subsets
from optgym.envs.dataselect.env import DEFAULT_BENCHMARK, ENV_ID
from optgym.envs.dataselect.models import single_thread

#: The influence methods scored: EK-FAC and K-FAC preconditioning, and a plain gradient dot
#: product (no curvature) as the baseline.
METHODS = ("ekfac", "kfac", "grad-dot")
#: Validation examples used as queries by default (the first ones of the split).
DEFAULT_QUERIES = 100
#: Relative damping of the K-FAC / EK-FAC curvature: ``lambda = DAMPING * mean(Lambda)``.
DAMPING = 0.1
#: The LDS EK-FAC should reach on the digits task.
EKFAC_TARGET = 0.5
MIN_SUBSETS = 3


@dataclass
class LDSSetup:
    """A trained model, its queries, and the retrainings on random subsets, shared by every
    method whose LDS is measured."""

    env: gym.Env
    """The data-selection env (reset on the benchmark); ``env.unwrapped`` has the pool."""
    model: nn.Module
    """The model trained on the whole pool."""
    query_x: torch.Tensor
    """The query inputs ``(n_query, 64)``: the first validation examples."""
    query_y: torch.Tensor
    """The query labels ``(n_query,)``."""
    subsets: np.ndarray
    """``(m, n_train)`` bool, True = the example is kept in that retraining."""
    query_losses: np.ndarray
    """``(m, n_query)``: each query's cross-entropy (nats) after retraining on each subset."""
    retrain_seconds: float
    """Wall-clock seconds the retrainings took."""


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, else a ValueError naming the allowed range."""
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer {allowed}, got {value}")
    return int(value)


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """``methods`` as a tuple, after checking each is one of :data:`METHODS`."""
    if isinstance(methods, str):
        methods = (methods,)
    methods = tuple(methods)
    if not methods:
        raise ValueError(f"no methods given; allowed: {', '.join(METHODS)}")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown influence methods {bad}; allowed: {', '.join(METHODS)}")
    return methods


def prepare_lds(
    benchmark: str = DEFAULT_BENCHMARK,
    subsets: int = 50,
    fraction: float = 0.5,
    queries: int | None = DEFAULT_QUERIES,
    seed: int = 0,
    progress: bool = False,
) -> LDSSetup:
    """Reset the env on ``benchmark`` and retrain on ``subsets`` random subsets of the pool.

    Args:
        benchmark: a data-selection task URI, e.g. ``generator://digits-noisy-v0/0``.
        subsets: number of random subsets (retrainings), at least 3.
        fraction: the share of the pool each subset keeps, in (0, 1).
        queries: how many validation examples (the first ones) are queries; None = all.
        seed: seeds the subsets.
        progress: show a tqdm bar over the retrainings.
    """
    from tqdm import tqdm

    subsets = _check_int("subsets", subsets, MIN_SUBSETS)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    env = gym.make(ENV_ID)
    env.reset(options={"benchmark": benchmark})
    u = env.unwrapped
    n_val = len(u.val_y)
    n_query = n_val if queries is None else _check_int("queries", queries, 1, n_val)
    query_x, query_y = u.val_x[:n_query], u.val_y[:n_query]
    masks = random_subsets(len(u.pool_y), subsets, fraction=fraction, seed=seed)
    losses = np.empty((subsets, n_query))
    start = time.perf_counter()
    for i, mask in enumerate(tqdm(masks, desc="retrain", unit="subset", disable=not progress)):
        model = u.retrain(mask)
        with single_thread(), torch.no_grad():
            loss = nn.functional.cross_entropy(model(query_x), query_y, reduction="none")
        losses[i] = loss.double().numpy()
    return LDSSetup(
        env=env,
        model=u.model,
        query_x=query_x,
        query_y=query_y,
        subsets=masks,
        query_losses=losses,
        retrain_seconds=time.perf_counter() - start,
    )


def lds_of_scores(scores: np.ndarray, subsets: np.ndarray, query_losses: np.ndarray) -> float:
    """Mean over queries of the per-query LDS of ``scores`` ``(n_query, n_train)``.

    ``subsets`` ``(m, n_train)`` bool and ``query_losses`` ``(m, n_query)`` as in
    :class:`LDSSetup`. A query whose predictions or losses are constant over the subsets has
    no Spearman correlation and is left out of the mean.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    subsets = np.asarray(subsets, dtype=bool)
    query_losses = np.asarray(query_losses, dtype=float)
    m, n_train = subsets.shape
    if scores.shape[1] != n_train or query_losses.shape != (m, scores.shape[0]):
        raise ValueError(
            f"shapes disagree: scores {scores.shape} (n_query, n_train), subsets "
            f"{subsets.shape} (m, n_train), query_losses {query_losses.shape} (m, n_query)"
        )
    predicted = subsets.astype(float) @ scores.T  # (m, n_query)
    per_query = []
    for q in range(scores.shape[0]):
        if np.ptp(predicted[:, q]) == 0 or np.ptp(query_losses[:, q]) == 0:
            continue
        per_query.append(spearmanr(predicted[:, q], -query_losses[:, q]).statistic)
    if not per_query:
        raise ValueError("every query has constant predictions or losses; LDS is undefined")
    return float(np.mean(per_query))


def method_scores(
    setup: LDSSetup, method: str, damping: float = DAMPING, seed: int = 0
) -> np.ndarray:
    """Influence of every pool example on every query of ``setup`` by ``method``,
    ``(n_query, n_train)``, positive = helps (lowers the query loss)."""
    (method,) = check_methods((method,))
    u = setup.env.unwrapped
    factors = None
    if method != "grad-dot":
        factors = fit_factors(setup.model, u.pool_x, method=method, damping=damping, seed=seed)
    return influence_scores(setup.model, factors, u.pool_x, u.pool_y, setup.query_x, setup.query_y)


def lds_per_method(
    benchmark: str = DEFAULT_BENCHMARK,
    methods: Sequence[str] = METHODS,
    subsets: int = 50,
    fraction: float = 0.5,
    queries: int | None = DEFAULT_QUERIES,
    seed: int = 0,
    damping: float = DAMPING,
    progress: bool = False,
) -> dict[str, float]:
    """The LDS (mean per-query Spearman, see the module docstring) of each method.

    Args:
        benchmark: a data-selection task URI.
        methods: names from :data:`METHODS`.
        subsets: number of random-subset retrainings (shared by all methods), at least 3.
        fraction: the share of the pool each subset keeps, in (0, 1).
        queries: how many validation examples (the first ones) are queries; None = all 300.
        seed: seeds the subsets and the sampled labels of the curvature.
        damping: relative damping of K-FAC / EK-FAC.
        progress: show a tqdm bar over the retrainings.

    Returns:
        method name -> LDS in [-1, 1], in the order of ``methods``.
    """
    methods = check_methods(methods)
    setup = prepare_lds(benchmark, subsets, fraction, queries, seed, progress)
    return {
        m: lds_of_scores(method_scores(setup, m, damping, seed), setup.subsets, setup.query_losses)
        for m in methods
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print the LDS of each method as a table and one ``lds_<method>:`` line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default=DEFAULT_BENCHMARK, help="task URI")
    parser.add_argument("--subsets", type=int, default=50, help="random-subset retrainings")
    parser.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated, from {','.join(METHODS)}"
    )
    parser.add_argument("--fraction", type=float, default=0.5, help="share of the pool kept")
    parser.add_argument(
        "--queries", type=int, default=DEFAULT_QUERIES, help="validation examples as queries"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds subsets and sampled labels")
    args = parser.parse_args(argv)
    try:
        methods = check_methods([m.strip() for m in args.methods.split(",") if m.strip()])
        setup = prepare_lds(
            args.benchmark, args.subsets, args.fraction, args.queries, args.seed, progress=True
        )
    except ValueError as e:
        parser.error(str(e))
    rows = []
    for m in methods:
        start = time.perf_counter()
        scores = method_scores(setup, m, seed=args.seed)
        seconds = time.perf_counter() - start
        rows.append((m, lds_of_scores(scores, setup.subsets, setup.query_losses), seconds))
    n_query = setup.query_losses.shape[1]
    print(
        f"{args.benchmark}: {len(setup.subsets)} subsets of {args.fraction:g} of the pool, "
        f"{n_query} queries, retraining {setup.retrain_seconds:.1f} s; "
        "LDS = mean per-query Spearman"
    )
    print(f"{'method':<10} {'LDS':>7} {'scoring (s)':>12}")
    for m, lds, seconds in rows:
        print(f"{m:<10} {lds:>7.3f} {seconds:>12.2f}")
    for m, lds, _ in rows:
        print(f"lds_{m}: {lds:.4f} (target: >= {EKFAC_TARGET} for ekfac)")


if __name__ == "__main__":
    main()
