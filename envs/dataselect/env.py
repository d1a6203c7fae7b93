"""Influence-guided data selection: remove (or add) training examples, retrain, score."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from optgym.datasets.dataselect import (
    N_CLASSES,
    DigitsTask,
    TextTask,
    load_task,
)
from optgym.datasets.dataset import Benchmark, DatasetRegistry
from optgym.env import NamedSpace, OptGymEnv, RewardTolerance, StepResult, as_numbers
from optgym.envs.dataselect import PROBLEM
from optgym.envs.dataselect.lm import (
    FINETUNE_BATCH,
    FINETUNE_LR,
    FINETUNE_STEPS,
    N_BUCKETS,
    base_model,
    evaluate_lm,
    finetune,
    lm_example_features,
    ngram_features,
    split_chunks,
)
from optgym.envs.dataselect.models import (
    HIDDEN,
    L2,
    LEARNING_RATE,
    TRAIN_STEPS,
    evaluate,
    example_features,
    make_mlp,
    train_mlp,
)

ENV_ID = "optgym/DataSelection-v0"
DEFAULT_BENCHMARK = "generator://digits-noisy-v0/0"
TEXT_BENCHMARK = "generator://pydoc-text-v0/0"
ALLOWED_BENCHMARKS = (
    "generator://digits-noisy-v0/<seed> or generator://pydoc-text-v0/<seed> "
    "(0 <= seed < 2**32), or file:///path/task.npz (the arrays of "
    "optgym.datasets.dataselect.digits or optgym.datasets.dataselect.text)"
)
STATIC_FEATURES = 74  # digits: 64 pixels + 10 label one-hot; text: 64 n-gram buckets + 10 zeros
MODES = ("remove", "add")
REWARD_SPACES = ("ValidationLoss",)
ADD_START_FRACTION = 0.1  # "add" mode starts from the first 10% of the (shuffled) pool
MODEL_SEED = 0
Observation = dict[str, np.ndarray]


class TaskRegistry(DatasetRegistry):
    """The data-selection datasets; a bad URI's ``ValueError`` also lists the URIs allowed."""

    def benchmark(self, uri: str) -> Benchmark:
        try:
            return super().benchmark(uri)
        except ValueError as e:
            raise ValueError(f"bad benchmark {uri!r}: {e}; allowed: {ALLOWED_BENCHMARKS}") from None


class DataSelectionEnv(OptGymEnv[Observation, np.ndarray]):
    """
    ## Description

    Data selection for a classifier trained on a pool with corrupted examples:
    on ``generator://digits-noisy-v0/<seed>``, an MLP (64 -> 64 tanh -> 10) on
    scikit-learn's 8 x 8 digits, with a pool of 1000 of which 100 labels are flipped, a
    clean validation split of 300 and a clean test split of 497. Each step the agent scores
    every pool example; the env removes the ``batch`` highest-scoring examples still kept
    (mode ``"remove"``) or adds the ``batch`` highest-scoring ones not kept (mode ``"add"``),
    retrains the model from the same seeded initialization on the kept examples, and rewards
    the drop in validation loss. Training is real and deterministic (full-batch Adam, 200
    steps, learning rate 0.02, mean cross-entropy + ``(0.001 / 2) ||theta||^2``, one CPU
    thread; about 0.2 s), so the result depends only on the keep mask.

    On ``generator://pydoc-text-v0/<seed>`` the task is language modeling: a causal
    character transformer (:mod:`optgym.envs.dataselect.lm`: 2 blocks, d_model 64, 4
    heads, 96 symbols) on 64-symbol sequences of CPython's ``pydoc_data.topics`` text, a
    pool of 500 sequences of which 100 are corrupted (50 with shuffled characters, 50
    off-domain symbol soup), clean validation and test splits of 100. The base model is
    trained once on the task's base text and cached (:func:`~optgym.envs.dataselect.lm.base_model`,
    about 15 s the first time); every retrain fine-tunes a copy of it on the kept pool
    (20 Adam steps of 50 kept sequences in a fixed seeded order, learning rate 0.001, one
    thread; about 1 s), again bit-identical for the same keep mask. Losses are per symbol.

    What agents read from ``env.unwrapped``: ``model`` (the current trained
    ``nn.Sequential`` of ``nn.Linear`` and ``nn.Tanh``), ``init_model`` (the seeded
    initialization every retrain starts from), ``pool_x`` (N, 64) float32 and ``pool_y``
    (N,) int64 tensors, ``val_x``, ``val_y``, ``keep`` ((N,) bool numpy array, replaced at
    each step), ``retrain(keep_mask) -> model`` (the env's own training, for datamodels and
    LDS; each call is one of the env's ``retrainings``), ``evaluate(model, x, y)``,
    ``test_metrics()``, and the training settings
    ``train_steps``, ``learning_rate``, ``l2``. ``corrupted`` ((N,) bool) and
    ``pool_clean_y`` are hidden information, for the oracle agent and for reports only.
    ``task_kind`` is ``"digits"`` or ``"text"``. On text, ``model`` is a
    :class:`~optgym.envs.dataselect.lm.CharTransformer` mapping ``(B, 64)`` int64 symbol
    codes to ``(B, 64, 96)`` logits, ``pool_x``/``pool_y`` (N, 64) int64 are inputs and
    next-symbol targets (``val_x``, ``val_y`` alike), ``init_model`` is the base model,
    ``train_batch`` the fine-tuning minibatch and ``l2`` is 0; ``pool_text`` and
    ``val_text`` hold the raw (N, 65) uint8 codes (decode with
    :func:`optgym.datasets.dataselect.text.decode`), and the hidden ``pool_clean_x``,
    ``pool_clean_y`` and ``corruption_kind`` (0 clean, 1 shuffled, 2 off-domain) the
    uncorrupted sequences.

    ## Action Space

    ``Box(-inf, inf, (N,), float32)``, ``N`` the pool size (1000): one score per pool
    example. Scores are compared as float32; ties go to the lower index. Every finite
    vector of numbers is legal; another shape, NaN, inf (or a value beyond float32's
    range), a boolean mask, strings or other objects raise ``ValueError`` naming the
    problem.

    ## Observation Space

    ``PoolFeatures``, the env's one named observation space
    (``env.unwrapped.observation["PoolFeatures"]`` computes it on request), a ``Dict``:
    ``"features"`` ``Box(0, high, (N, 76), float32)``, per pool example its 64
    inputs (in [0, 1]), its label one-hot (10), its cross-entropy under the current model
    (unbounded) and the norm of that loss's gradient with respect to the last layer's
    weight (at most ``sqrt(2 * 64)``, about 11.3: ``||softmax - onehot|| <= sqrt(2)`` times
    the norm of 64 tanh units; unbounded on text); ``"keep"`` ``MultiBinary(N)``, the
    examples trained on; ``"val_loss"`` ``Box(0, inf, (1,), float32)``, the current
    model's mean validation cross-entropy (a loss has no upper bound).
    On text the 76 columns keep their roles so that column 74 is always the loss and 75
    the gradient norm: columns 0..63 are hashed character bigram and trigram frequencies
    of the sequence (:func:`~optgym.envs.dataselect.lm.ngram_features`, in [0, 1]),
    columns 64..73 are zeros (a sequence has no label), column 74 its mean cross-entropy
    per symbol and 75 the norm of that loss's gradient with respect to the ``head``
    weight. ``N`` is 500.

    ## Rewards

    ``ValidationLoss``: the previous step's validation loss minus the new one (nats), so an
    episode's total is the validation loss at reset minus the final one. Deterministic.

    ## Task files

    ``file:///path/task.npz`` holds the arrays of a digits or text task (see
    :mod:`optgym.datasets.dataselect.digits` and :mod:`~optgym.datasets.dataselect.text`).
    The file is checked before it is used: at most 32 MiB, each array at most 32 MiB
    uncompressed as its zip entry declares (64 MiB in all, checked before inflating), plain
    numeric arrays only (no pickles), and every array by name: dtype, shape, matching
    lengths, finite features in [0, 1], labels 0..9 (codes 0..95 on text), non-empty
    splits (digits: pool 5000, validation and test 20000 rows; text: pool 2000,
    validation and test 1000, base 100000). A bad file raises ``ValueError`` naming the
    path and the array, and the env stays as it was.

    ## Starting State

    ``"remove"``: every pool example kept; ``"add"``: the first 10% of the pool (a seeded
    random sample, since the pool is shuffled). The model trained on them.
    ``reset(options={"benchmark": uri})`` picks the task
    (``generator://digits-noisy-v0/<seed>`` or ``generator://pydoc-text-v0/<seed>``);
    without options the last one is kept (or the one set with ``env.unwrapped.benchmark =
    uri``, checked at once), and the first reset takes the ``benchmark`` argument, else
    ``generator://digits-noisy-v0/0``. The datasets are ``env.unwrapped.datasets``,
    indexed by name or URI (``datasets["digits-noisy-v0"]``). ``info`` holds
    ``val_loss``, ``val_accuracy`` and ``kept``.

    ## Episode End

    Terminates when ``budget`` examples have been removed (or added): after
    ``ceil(budget / batch)`` steps, the last one moving the remainder. The last step's
    ``info`` adds ``test_loss`` and ``test_accuracy``; every step's has ``val_loss``,
    ``val_accuracy``, ``kept``, ``changed`` (the pool indices removed or added) and
    ``retrainings`` (the work unit: one per step, one per ``retrain`` call; the start model
    a reset trains, cached per task and mode, is not counted). A state's ``extras`` hold the
    current ``val_loss`` and ``val_accuracy``, and ``test_loss`` and ``test_accuracy`` once
    the episode is over; its ``config`` holds ``batch``, ``budget``, ``mode`` and
    ``reward_space``.

    ## Arguments

    ``benchmark`` (the first reset's URI), ``batch`` (examples per step, 10), ``budget``
    (examples per episode, 100), ``mode`` (``"remove"`` or ``"add"``), ``reward_space``
    (``"ValidationLoss"``). It renders nothing (``metadata["render_modes"]`` is empty):
    ``info`` and the state say what a step did.

    ## Version History

    * v0: digits with 10% flipped labels, 64-unit tanh MLP, validation-loss reward; pydoc
      text with 20% corrupted sequences, fine-tuned character transformer.

    ## Example

    >>> import gymnasium as gym, optgym
    >>> env = gym.make("optgym/DataSelection-v0")
    >>> obs, info = env.reset(options={"benchmark": "generator://digits-noisy-v0/0"})
    >>> scores = obs["features"][:, 74]  # remove the examples of highest loss
    >>> obs, reward, terminated, truncated, info = env.step(scores)
    >>> text = gym.make("optgym/DataSelection-v0", benchmark="generator://pydoc-text-v0/0")
    """

    metadata: dict[str, Any] = {"render_modes": []}
    record = PROBLEM
    env_id = ENV_ID
    default_benchmark = DEFAULT_BENCHMARK
    work_unit = "retrainings"
    # Training is bit-identical for a keep mask on one machine, but BLAS kernels differ
    # across CPUs and states are re-verified on other machines.
    reward_tolerance = RewardTolerance("relative", 1e-6)
    reward_spaces = REWARD_SPACES
    observation_spaces = ("PoolFeatures",)

    def __init__(
        self,
        benchmark: str | None = None,
        batch: int = 10,
        budget: int = 100,
        mode: str = "remove",
        reward_space: str = "ValidationLoss",
    ):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        for name, value in (("batch", batch), ("budget", budget)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        super().__init__(
            benchmark=benchmark,
            datasets=TaskRegistry(PROBLEM.datasets()),
            reward_space=reward_space,
        )
        self.batch = int(batch)
        self.budget = int(budget)
        self.mode = mode
        self.train_steps = TRAIN_STEPS
        self.learning_rate = LEARNING_RATE
        self.l2 = L2
        self._task_sha256 = ""  # the task loaded (spaces, pool, model), before any reset
        self._changed = 0
        self._test: dict[str, float] = {}  # the final step's test metrics
        self._start_cache: dict[tuple[str, str], tuple[nn.Module, float, float]] = {}
        self._feature_cache: tuple[nn.Module | None, np.ndarray] = (None, np.zeros((0, 2)))
        # The spaces depend on the pool size: load the first task now (gymnasium checks the
        # spaces at make time); a bad URI or a budget too large for the pool fails here.
        self._load(self.datasets.benchmark(self.benchmark))

    # ---- tasks --------------------------------------------------------------------------------
    def _load(self, benchmark: Benchmark) -> None:
        """Load the task of ``benchmark`` unless it is the loaded one; a bad file or a budget
        too large for its pool raises ``ValueError`` and leaves the env exactly as it was
        (the next reset with a good benchmark works)."""
        if benchmark.sha256 == self._task_sha256:
            return
        task = load_task(benchmark)  # every array checked by name before anything changes
        self._check_budget(task)
        saved = dict(self.__dict__)
        try:
            if isinstance(task, TextTask):
                self._set_text_task(task)
            else:
                self._set_digits_task(task)
        except BaseException:  # e.g. the base model's training interrupted: undo it all
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        self._task_sha256 = benchmark.sha256

    def _start_size(self, pool_size: int) -> int:
        return max(1, int(round(ADD_START_FRACTION * pool_size))) if self.mode == "add" else 0

    def _check_budget(self, task: DigitsTask | TextTask) -> None:
        n = task.pool_size
        most = n - self._start_size(n) if self.mode == "add" else n - 1
        if self.budget > most:
            raise ValueError(
                f"budget {self.budget} is too large for a pool of {n} in mode {self.mode!r}; "
                f"allowed: 1 to {most}"
            )

    def _set_digits_task(self, task: DigitsTask) -> None:
        self.task_kind = "digits"
        self.train_steps, self.learning_rate, self.l2 = TRAIN_STEPS, LEARNING_RATE, L2
        self.train_batch: int | None = None
        for name in ("pool_clean_x", "pool_text", "val_text"):  # text-only attributes
            self.__dict__.pop(name, None)
        self.corruption_kind = task.corrupted.astype(np.int8)
        n, d = task.pool_x.shape
        self.pool_size = n
        self.pool_x = torch.from_numpy(task.pool_x.astype(np.float32))
        self.pool_y = torch.from_numpy(task.pool_y.astype(np.int64))
        self.val_x = torch.from_numpy(task.val_x.astype(np.float32))
        self.val_y = torch.from_numpy(task.val_y.astype(np.int64))
        self._test_x = torch.from_numpy(task.test_x.astype(np.float32))
        self._test_y = torch.from_numpy(task.test_y.astype(np.int64))
        self.corrupted = task.corrupted.astype(bool)
        self.pool_clean_y = task.pool_clean_y.astype(np.int64)
        self.init_model = make_mlp(d, N_CLASSES, HIDDEN, seed=MODEL_SEED)
        onehot = np.eye(N_CLASSES, dtype=np.float32)[task.pool_y]
        # ||softmax(z) - onehot(y)|| <= sqrt(2) and ||h|| <= sqrt(width) (tanh units)
        grad_high = float(np.sqrt(2.0 * HIDDEN[-1]))
        self._set_spaces(
            np.concatenate([task.pool_x.astype(np.float32), onehot], axis=1), grad_high
        )

    def _set_text_task(self, task: TextTask) -> None:
        self.task_kind = "text"
        self.train_steps, self.learning_rate, self.l2 = FINETUNE_STEPS, FINETUNE_LR, 0.0
        self.train_batch = FINETUNE_BATCH
        n = task.pool_size
        self.pool_size = n
        self.pool_x, self.pool_y = split_chunks(task.pool)
        self.val_x, self.val_y = split_chunks(task.val)
        self._test_x, self._test_y = split_chunks(task.test)
        self.corrupted = task.corrupted.astype(bool)
        self.corruption_kind = task.corruption.astype(np.int8)
        self.pool_clean_x, self.pool_clean_y = split_chunks(task.pool_clean)
        self.pool_text = task.pool
        self.val_text = task.val
        self.init_model = base_model(task.base)
        static = np.zeros((n, STATIC_FEATURES), dtype=np.float32)
        static[:, :N_BUCKETS] = ngram_features(task.pool)
        self._set_spaces(static)

    def _set_spaces(self, static: np.ndarray, grad_high: float = np.inf) -> None:
        """Observation and action spaces for a pool whose fixed features are ``static``
        (N, 74) in [0, 1], the gradient norm (column 75) at most ``grad_high``; resets the
        keep mask and the model."""
        n = len(static)
        self._static = static
        high = np.full((n, STATIC_FEATURES + 2), np.inf, dtype=np.float32)
        high[:, :STATIC_FEATURES] = 1.0
        # a few float32 steps up: the norms are computed in float32 and may round past it
        high[:, STATIC_FEATURES + 1] = grad_high * (1 + 1e-6)
        self.observation_space = spaces.Dict(
            {
                "features": spaces.Box(np.zeros_like(high), high, dtype=np.float32),
                "keep": spaces.MultiBinary(n),
                "val_loss": spaces.Box(0.0, np.inf, (1,), dtype=np.float32),
            }
        )
        self.action_space = spaces.Box(-np.inf, np.inf, (n,), dtype=np.float32)
        self.keep = self._start_keep()
        self.model = self.init_model

    def _start_keep(self) -> np.ndarray:
        keep = np.zeros(self.pool_size, dtype=bool)
        if self.mode == "remove":
            keep[:] = True
        else:
            keep[: self._start_size(self.pool_size)] = True
        return keep

    # ---- training -----------------------------------------------------------------------------
    def _check_mask(self, keep_mask: Any) -> np.ndarray:
        mask = np.asarray(keep_mask)
        if mask.shape != (self.pool_size,) or mask.dtype.kind not in "bui":
            raise ValueError(
                f"keep_mask must be a ({self.pool_size},) boolean array, got shape {mask.shape} "
                f"dtype {mask.dtype}"
            )
        return mask.astype(bool)

    def _train(self, keep: np.ndarray) -> nn.Module:
        """The model trained from ``init_model`` on the kept pool examples (not charged)."""
        if self.task_kind == "text":
            return finetune(
                self.init_model,
                self.pool_x,
                self.pool_y,
                keep,
                steps=self.train_steps,
                batch=self.train_batch or FINETUNE_BATCH,
                lr=self.learning_rate,
            )
        return train_mlp(
            self.init_model,
            self.pool_x,
            self.pool_y,
            keep,
            steps=self.train_steps,
            lr=self.learning_rate,
            l2=self.l2,
        )

    def retrain(self, keep_mask: Any) -> nn.Module:
        """The model the env would train on the pool examples where ``keep_mask`` (N,) bool
        is true: from ``init_model``, bit-identical for the same mask. Changes nothing but
        counts one of the env's ``retrainings`` (``BudgetExceeded`` past the budget)."""
        mask = self._check_mask(keep_mask)
        self._spend(1)
        return self._train(mask)

    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """``(mean cross-entropy, accuracy)`` of ``model`` on ``x, y`` (for text: per
        symbol, over every position)."""
        if self.task_kind == "text":
            return evaluate_lm(model, x, y)
        return evaluate(model, x, y)

    def test_metrics(self, model: nn.Module | None = None) -> dict[str, float]:
        """``test_loss`` and ``test_accuracy`` of ``model`` (default: the current one) on the
        held-out test split; for reports, not for choosing examples."""
        loss, accuracy = self.evaluate(
            model if model is not None else self.model, self._test_x, self._test_y
        )
        return {"test_loss": loss, "test_accuracy": accuracy}

    # ---- episode ------------------------------------------------------------------------------
    def _named_observations(self) -> dict[str, NamedSpace]:
        return {"PoolFeatures": NamedSpace(self.observation_space, self._obs)}

    def _obs(self) -> Observation:
        cached_model, per_example = self._feature_cache
        if cached_model is not self.model:  # resets return to the same start model
            if self.task_kind == "text":
                per_example = lm_example_features(self.model, self.pool_x, self.pool_y)
            else:
                per_example = example_features(self.model, self.pool_x, self.pool_y)
            self._feature_cache = (self.model, per_example)
        features = np.concatenate([self._static, per_example.astype(np.float32)], axis=1)
        return {
            "features": features.astype(np.float32),
            "keep": self.keep.astype(np.int8),
            "val_loss": np.array([self.val_loss], dtype=np.float32),
        }

    def _metrics_info(self) -> dict[str, Any]:
        return {
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "kept": int(self.keep.sum()),
        }

    # ---- hooks of OptGymEnv -------------------------------------------------------------------
    def _reset(self, benchmark: Benchmark) -> tuple[Observation, dict[str, Any]]:
        self._load(benchmark)
        self.keep = self._start_keep()
        key = (self._task_sha256, self.mode)
        if key not in self._start_cache:  # the start model depends only on task and mode
            model = self._train(self.keep)  # setup, not one of the episode's retrainings
            self._start_cache[key] = (model, *self.evaluate(model, self.val_x, self.val_y))
        self.model, self.val_loss, self.val_accuracy = self._start_cache[key]
        self._changed = 0
        self._test = {}
        return self._obs(), self._metrics_info()

    def _check_action(self, action: Any) -> np.ndarray:
        n = self.pool_size
        allowed = f"allowed: {n} finite numbers (|x| < 3.4e38), one score per pool example"
        raw = as_numbers(
            action, "an action", allowed,
            booleans="a boolean mask (to train on a mask, call env.unwrapped.retrain(mask))",
        )  # fmt: skip
        if raw.shape != (n,):
            raise ValueError(
                f"an action must have shape ({n},), one score per pool example; got shape "
                f"{raw.shape}; {allowed}"
            )
        scores = raw
        with np.errstate(over="ignore"):
            scores32 = scores.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(scores32))
        if len(bad):
            raise ValueError(
                f"scores must be finite float32 numbers (|x| < 3.4e38); {len(bad)} are not, "
                f"first at index {bad[0]}: {float(scores[bad[0]])!r}"
            )
        return scores32

    def _step(self, scores: np.ndarray) -> StepResult:
        candidates = np.flatnonzero(self.keep if self.mode == "remove" else ~self.keep)
        k = min(self.batch, self.budget - self._changed)
        # highest score first, ties by lower index
        chosen = candidates[np.lexsort((candidates, -scores[candidates]))[:k]]
        keep = self.keep.copy()
        keep[chosen] = self.mode == "add"
        self._spend(1)  # the step's retraining; nothing has changed if it is refused
        model = self._train(keep)
        self.keep, self.model = keep, model
        before = self.val_loss
        self.val_loss, self.val_accuracy = self.evaluate(self.model, self.val_x, self.val_y)
        reward = before - self.val_loss
        self._changed += k
        done = self._changed >= self.budget
        info = self._metrics_info()
        info["changed"] = np.sort(chosen)
        if done:
            self._test = self.test_metrics()
            info.update(self._test)
        return self._obs(), reward, done, False, info

    def _extras(self) -> dict[str, Any]:
        """The current validation metrics, and the test metrics once the episode is over
        (for reports; a replay recomputes them)."""
        return {"val_loss": self.val_loss, "val_accuracy": self.val_accuracy, **self._test}

    def _fork_into(self, new: OptGymEnv) -> None:
        # The task, the models and the start cache are never changed in place: shared.
        assert isinstance(new, DataSelectionEnv)
        new.keep = self.keep.copy()
        new._test = dict(self._test)
