"""Data-selection agents for ``optgym/DataSelection-v0``: a harm score per pool example.

Each step an agent scores every pool example by how much it hurts the validation loss
(``harm``, higher = worse); in ``remove`` mode the env drops the ``batch`` most harmful
examples still kept, in ``add`` mode the agent sends ``-harm`` and the env adds the most
helpful ones. Scores are recomputed after every retrain, from the env's current model.

* ``random-select``: uniform scores.
* ``tfidf``: TF-IDF similarity of each example to the validation set (character n-grams
  of a text sequence; the quantized pixels and the label, as words, of a digit); the
  least similar is the most harmful.
* ``grad-dot``: minus the gradient dot product with the summed validation loss.
* ``kfac`` / ``ekfac``: minus the influence on the summed validation loss with K-FAC or
  EK-FAC curvature (Grosse et al. 2023), factors fitted on the kept examples.
* ``tfidf-ekfac``: EK-FAC influence computed only on the examples TF-IDF finds least
  similar to the validation set (TF-IDF filtering before influence).
* ``self-influence``: ``g^T H^-1 g`` under EK-FAC (unusual or mislabeled examples score high).
* ``oracle``: the env's hidden corruption mask (an upper bound, not a method).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget

PIXEL_LEVELS = 4  # TF-IDF words: pixel index x intensity level (of 4)
InfluenceMethod = Literal["ekfac", "kfac", "grad-dot"]


def _check_damping(damping: float) -> None:
    if not damping > 0:
        raise ValueError(f"damping must be positive, got {damping}")


class _HarmAgent:
    """Shared ``solve``: reset, then score and step until the env's episode or the budget
    is spent."""

    requires: ClassVar[tuple[str, ...]] = ("retrain",)
    budget_units: ClassVar[tuple[str, ...]] = ("calls", "steps", "seconds")  # searches until spent

    def _harm(self, base: Any, rng: np.random.Generator, seed: int) -> np.ndarray:
        """Harm per pool example (pool_size,) under the env's current model."""
        raise RuntimeError("subclasses define the harm score")

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        """Run one episode on ``benchmark``; each env step is one step and one retraining
        (the env counts them). The state's extras hold the final validation metrics and,
        when the episode ended, the test metrics."""
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            done = False
            while not done and meter.room() > 0:
                harm = np.asarray(self._harm(base, rng, 0 if seed is None else int(seed)), float)
                action = harm if base.mode == "remove" else -harm
                done = base.step(np.clip(action, -1e30, 1e30).astype(np.float32))[2]
            return solved(env, meter)


@dataclass
class RandomSelection(_HarmAgent):
    """Uniformly random scores."""

    def _harm(self, base: Any, rng: np.random.Generator, seed: int) -> np.ndarray:
        return rng.random(base.pool_size)


def _documents(x: np.ndarray, y: np.ndarray) -> list[str]:
    """An example as words: ``p<i>l<level>`` for each non-blank pixel, and ``label<k>``."""
    levels = np.minimum((x * PIXEL_LEVELS).astype(int), PIXEL_LEVELS - 1)
    return [
        " ".join([f"p{i}l{v}" for i, v in enumerate(row) if v > 0] + [f"label{k}"])
        for row, k in zip(levels, y, strict=True)
    ]


def _tfidf_order(base: Any) -> np.ndarray:
    """Pool indices, most TF-IDF-similar to the validation set first: character 2- to
    4-grams of the sequences on text tasks, pixel and label words on digits."""
    from optgym.agents.dataselect.influence import tfidf_filter

    if getattr(base, "task_kind", "digits") == "text":
        from optgym.datasets.dataselect.text import decode

        pool = [decode(row) for row in base.pool_text]
        val = [decode(row) for row in base.val_text]
        return tfidf_filter(val, pool, keep=len(pool), analyzer="char", ngram_range=(2, 4))
    pool = _documents(base.pool_x.numpy(), base.pool_y.numpy())
    val = _documents(base.val_x.numpy(), base.val_y.numpy())
    return tfidf_filter(val, pool, keep=len(pool), token_pattern=r"\S+")


@dataclass
class TfidfSelection(_HarmAgent):
    """Least TF-IDF-similar to the validation set first."""

    def _harm(self, base: Any, rng: np.random.Generator, seed: int) -> np.ndarray:
        order = _tfidf_order(base)
        harm = np.empty(base.pool_size)
        harm[order] = np.arange(base.pool_size)  # rank 0 = most similar = least harmful
        return harm


@dataclass
class InfluenceSelection(_HarmAgent):
    """Minus the influence of each pool example on the summed validation loss (K-FAC or
    EK-FAC curvature fitted on the kept examples, or the plain gradient dot product)."""

    METHODS: ClassVar[tuple[str, ...]] = typing.get_args(InfluenceMethod)

    method: InfluenceMethod = "ekfac"
    """curvature: ekfac, kfac (factors fitted on the kept examples) or grad-dot (none)"""
    damping: float = 0.1
    """damping added to the curvature, times its mean eigenvalue"""

    def __post_init__(self) -> None:
        if self.method not in self.METHODS:
            raise ValueError(f"unknown method {self.method!r}; allowed: {', '.join(self.METHODS)}")
        _check_damping(self.damping)

    def _harm(self, base: Any, rng: np.random.Generator, seed: int) -> np.ndarray:
        from optgym.agents.dataselect.influence import fit_factors, summed_influence

        factors = None
        if self.method != "grad-dot":
            kept = base.pool_x[np.flatnonzero(base.keep)]
            factors = fit_factors(
                base.model, kept, method=self.method, damping=self.damping, seed=seed
            )
        helps = summed_influence(
            base.model, factors, base.pool_x, base.pool_y, base.val_x, base.val_y
        )
        return -helps


@dataclass
class TfidfInfluenceSelection(_HarmAgent):
    """TF-IDF filtering before influence (Grosse et al. 2023): EK-FAC influence on the
    validation loss only for the ``candidates`` fraction of kept examples least similar to
    the validation set (where harmful examples are expected); the others score 0, below
    any harmful candidate."""

    candidates: float = 0.3
    """fraction of the kept examples (least TF-IDF-similar first) scored by influence, in (0, 1]"""
    damping: float = 0.1
    """damping added to the EK-FAC curvature, times its mean eigenvalue"""

    def __post_init__(self) -> None:
        if not 0 < self.candidates <= 1:
            raise ValueError(f"candidates must be a fraction in (0, 1], got {self.candidates}")
        _check_damping(self.damping)

    def _harm(self, base: Any, rng: np.random.Generator, seed: int) -> np.ndarray:
        from optgym.agents.dataselect.influence import fit_factors, summed_influence

        kept = np.flatnonzero(base.keep)
        order = _tfidf_order(base)
        dissimilar = order[np.isin(order, kept)][::-1]
        chosen = np.sort(dissimilar[: max(1, int(round(self.candidates * len(kept))))])
        factors = fit_factors(base.model, base.pool_x[kept], damping=self.damping, seed=seed)
        helps = summed_influence(
            base.model, factors, base.pool_x[chosen], base.pool_y[chosen], base.val_x, base.val_y
        )
        harm = np.zeros(base.pool_size)
        harm[chosen] = -helps
        return harm


@dataclass
class SelfInfluenceSelection(_HarmAgent):
    """Highest EK-FAC self-influence ``g^T H^-1 g`` first."""

    damping: float = 0.1
    """damping added to the EK-FAC curvature, times its mean eigenvalue"""

    def __post_init__(self) -> None:
        _check_damping(self.damping)

    def _harm(self, base: Any, rng: np.random.Generator, seed: int) -> np.ndarray:
        from optgym.agents.dataselect.influence import fit_factors, self_influence

        kept = base.pool_x[np.flatnonzero(base.keep)]
        factors = fit_factors(base.model, kept, method="ekfac", damping=self.damping, seed=seed)
        return self_influence(base.model, factors, base.pool_x, base.pool_y)


@dataclass
class OracleSelection(_HarmAgent):
    """The env's hidden corruption mask: corrupted examples first (an upper bound)."""

    stochastic: ClassVar[bool] = False  # the seed changes nothing

    def _harm(self, base: Any, rng: np.random.Generator, seed: int) -> np.ndarray:
        return np.asarray(base.corrupted, dtype=float)
