"""Our EK-FAC influence against kronfluence's on the digits MLP: time, agreement and LDS.

On ``generator://digits-noisy-v0/0`` (the MLP 64 -> 64 tanh -> 10 trained on the 1000-example
pool), both libraries fit EK-FAC factors on the pool and score 1000 pool examples x 100
validation queries. Settings are matched: the same model and data, cross-entropy summed
per example, the true Fisher from labels sampled from the model (kronfluence is handed the
very labels ours samples with seed 0, so both fit the same pseudo-gradients), all
``nn.Linear`` layers with their biases, damping ``0.1 x`` the mean eigenvalue per layer
(ours: ``damping=0.1``; kronfluence: ``damping_factor=None``, its heuristic), batches of 256,
and one torch thread. Kronfluence keeps its defaults otherwise (float32 covariances and
scores, float64 eigendecomposition) and writes factors and scores to a temporary directory,
as its API requires; that I/O is part of its time.

Both sign conventions say positive = the training example helps (lowers the query loss);
the script checks the signs agree. Agreement is the Spearman correlation of the two
``(100, 1000)`` score matrices: per query (then averaged) and over the flattened matrix.
LDS comes from ``optgym.agents.dataselect.lds``, with the same retrainings for both.

Needs kronfluence, a benchmark-only dependency, installed without its requirements (they
would replace the CPU build of torch):
``pip install --no-deps kronfluence==1.0.1 accelerate einops einconv opt-einsum safetensors
huggingface_hub pyyaml psutil``.

Usage: python benchmarks/influence.py [--subsets 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from optgym.agents.dataselect.influence import fit_factors, influence_scores
from optgym.agents.dataselect.lds import LDSSetup, lds_of_scores, prepare_lds

INSTALL = (
    "pip install --no-deps kronfluence==1.0.1 accelerate einops einconv opt-einsum "
    "safetensors huggingface_hub pyyaml psutil"
)
BENCHMARK = "generator://digits-noisy-v0/0"
QUERIES = 100
DAMPING = 0.1  # ours: lambda = 0.1 * mean(Lambda); kronfluence's heuristic is the same
BATCH = 256  # ours' default batch size, used for kronfluence too
SEED = 0


def sampled_labels(model: nn.Module, x: Tensor, seed: int = SEED, batch: int = BATCH) -> Tensor:
    """The labels ``fit_factors(..., labels="sampled", seed=seed)`` draws: one per example
    from the model's softmax (float64), batch by batch from one seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            probs = torch.softmax(model(x[start : start + batch]).double(), dim=-1)
            out.append(torch.multinomial(probs, 1, generator=generator).squeeze(1))
    return torch.cat(out)


def ours(setup: LDSSetup) -> np.ndarray:
    """Our EK-FAC scores ``(n_query, n_train)``."""
    u = setup.env.unwrapped
    factors = fit_factors(setup.model, u.pool_x, method="ekfac", damping=DAMPING, seed=SEED)
    return influence_scores(setup.model, factors, u.pool_x, u.pool_y, setup.query_x, setup.query_y)


def kronfluence_scores(setup: LDSSetup) -> np.ndarray:
    """kronfluence's EK-FAC scores ``(n_query, n_train)`` with the settings of the module
    docstring; factors and scores go to a temporary directory, removed afterwards."""
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments
    from kronfluence.task import Task

    u = setup.env.unwrapped
    labels = sampled_labels(setup.model, u.pool_x)

    class DigitsLossTask(Task):
        """Summed cross-entropy; ``sample=True`` uses our sampled labels by example index."""

        def compute_train_loss(
            self, batch: tuple[Tensor, ...], model: nn.Module, sample: bool = False
        ) -> Tensor:
            x, y, index = batch
            target = labels[index] if sample else y
            return nn.functional.cross_entropy(model(x), target, reduction="sum")

        def compute_measurement(self, batch: tuple[Tensor, ...], model: nn.Module) -> Tensor:
            x, y, _ = batch
            return nn.functional.cross_entropy(model(x), y, reduction="sum")

    task = DigitsLossTask()
    train = TensorDataset(u.pool_x, u.pool_y, torch.arange(len(u.pool_y)))
    query = TensorDataset(setup.query_x, setup.query_y, torch.arange(len(setup.query_y)))
    model = prepare_model(copy.deepcopy(setup.model), task)  # it wraps modules in place
    with tempfile.TemporaryDirectory(prefix="kronfluence-") as out:
        analyzer = Analyzer(
            "digits",
            model,
            task,
            cpu=True,
            disable_tqdm=True,
            output_dir=out,
            log_level=logging.WARNING,
        )
        analyzer.fit_all_factors(
            "ekfac",
            train,
            per_device_batch_size=BATCH,
            factor_args=FactorArguments(strategy="ekfac"),
            overwrite_output_dir=True,
        )
        analyzer.compute_pairwise_scores(
            "pairwise",
            "ekfac",
            query,
            train,
            per_device_query_batch_size=len(query),
            per_device_train_batch_size=BATCH,
            score_args=ScoreArguments(damping_factor=None),
            overwrite_output_dir=True,
        )
        scores = analyzer.load_pairwise_scores("pairwise")["all_modules"]
    return scores.double().numpy()


def timed(
    fn: Callable[[LDSSetup], np.ndarray], setup: LDSSetup, repeats: int
) -> tuple[np.ndarray, float]:
    """``fn(setup)`` and its best wall-clock seconds over ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(setup)
        best = min(best, time.perf_counter() - start)
    return result, best


def main() -> None:
    """Time both libraries, compare their scores and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subsets", type=int, default=50, help="retrainings for the LDS")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    args = parser.parse_args()
    try:
        import kronfluence  # noqa: F401
    except ImportError as e:
        print(
            f"kronfluence is not importable ({e}); install it with:\n  {INSTALL}", file=sys.stderr
        )
        sys.exit(2)
    warnings.filterwarnings("ignore", module="kronfluence")
    torch.set_num_threads(1)

    setup = prepare_lds(BENCHMARK, args.subsets, queries=QUERIES, seed=SEED, progress=True)
    ours_scores, ours_seconds = timed(ours, setup, args.repeats)
    kron_scores, kron_seconds = timed(kronfluence_scores, setup, args.repeats)
    if kron_scores.shape != ours_scores.shape:
        raise SystemExit(
            f"shape mismatch: ours {ours_scores.shape}, kronfluence {kron_scores.shape}"
        )

    per_query = [spearmanr(a, b).statistic for a, b in zip(ours_scores, kron_scores, strict=True)]
    spearman_mean = float(np.mean(per_query))
    spearman_flat = float(spearmanr(ours_scores.ravel(), kron_scores.ravel()).statistic)
    sign_agree = float(np.mean(np.sign(ours_scores) == np.sign(kron_scores)))
    scale = float(np.median(np.abs(kron_scores)) / np.median(np.abs(ours_scores)))
    lds_ours = lds_of_scores(ours_scores, setup.subsets, setup.query_losses)
    lds_kron = lds_of_scores(kron_scores, setup.subsets, setup.query_losses)

    n_query, n_train = ours_scores.shape
    print(
        f"{BENCHMARK}: {n_train} pool examples x {n_query} validation queries, EK-FAC, "
        f"damping 0.1 x mean eigenvalue, one torch thread, best of {args.repeats}; "
        f"LDS over {len(setup.subsets)} retrainings ({setup.retrain_seconds:.1f} s)"
    )
    print(f"per-query Spearman: min {min(per_query):.4f}, median {np.median(per_query):.4f}")
    print(f"flattened Spearman: {spearman_flat:.4f}")
    print(f"sign agreement: {sign_agree:.4f}; median |kronfluence| / median |ours|: {scale:.3f}")
    print(f"ekfac_seconds: {ours_seconds:.3f} (target: <= kronfluence_seconds)")
    print(f"kronfluence_seconds: {kron_seconds:.3f} (target: reference)")
    print(f"spearman_vs_kronfluence: {spearman_mean:.4f} (target: >= 0.95)")
    print(f"lds_ours: {lds_ours:.4f} (target: >= 0.5)")
    print(f"lds_kronfluence: {lds_kron:.4f} (target: report)")
    print(f"time_ratio_ours_over_kronfluence: {ours_seconds / kron_seconds:.3f} (target: <= 1)")


if __name__ == "__main__":
    main()
