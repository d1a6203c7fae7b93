"""The language model of the text data-selection task: a tiny causal character transformer.

:class:`CharTransformer` is built so that influence code sees every weight matrix as an
``nn.Linear`` used once per forward pass: token and position embeddings (``nn.Embedding``),
then per block LayerNorm, causal multi-head self-attention with its own ``q``, ``k``, ``v``
and ``o`` ``nn.Linear`` layers, LayerNorm and a GELU MLP (``fc1``, ``fc2``), then a final
LayerNorm and the ``head`` ``nn.Linear`` giving logits ``(B, T, vocab)``. The embeddings and
LayerNorms are trained but are not ``nn.Linear``, so K-FAC/EK-FAC influence covers the
linear layers only.

Two trainings, both on one CPU thread and deterministic (the same inputs give bit-identical
weights):

* :func:`train_base`: the base model, trained on the task's base text (``BASE_STEPS``
  minibatch Adam steps) and cached under ``<cache_dir>/models/`` keyed by the base text's
  hash and every hyperparameter, with an integrity tag, so later runs load it instead of
  training again (weights changed in the cache are trained again, never trusted);
* :func:`finetune`: a copy of the base model trained on the kept pool examples
  (``FINETUNE_STEPS`` Adam steps on minibatches of ``FINETUNE_BATCH`` kept examples in a
  fixed seeded order), what the env calls at every step.

The loss is the mean next-symbol cross-entropy over all positions (nats per symbol).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from optgym.datasets.cache import cache_dir
from optgym.envs.dataselect.models import as_mask, finished
from optgym.integrity import read_tagged, write_tagged
from optgym.threads import single_thread

MODEL_SEED = 0
BASE_STEPS = 400
BASE_BATCH = 32
BASE_LR = 3e-3
FINETUNE_STEPS = 20
FINETUNE_BATCH = 50
FINETUNE_LR = 1e-3
N_BUCKETS = 64
MODEL_PURPOSE = "char-lm weights"  # the integrity tag's purpose for cached base models
NGRAMS = (2, 3)


@dataclass(frozen=True)
class LMConfig:
    """The shape of a :class:`CharTransformer`."""

    vocab_size: int = 96
    seq_len: int = 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    mlp_ratio: int = 4


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with separate ``q``, ``k``, ``v``, ``o`` linears."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} must be a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.n_heads

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, h, d // h).transpose(1, 2)  # (B, H, T, d/H)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(d // h)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        weights = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
        return self.o((weights @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: attention then a GELU MLP, each residual."""

    def __init__(self, config: LMConfig):
        super().__init__()
        d = config.d_model
        self.ln1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, config.n_heads)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, config.mlp_ratio * d)
        self.fc2 = nn.Linear(config.mlp_ratio * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))


class CharTransformer(nn.Module):
    """A causal character LM: ``(B, T)`` int64 symbol codes -> ``(B, T, vocab)`` logits."""

    def __init__(self, config: LMConfig | None = None):
        super().__init__()
        self.config = config or LMConfig()
        c = self.config
        self.tok = nn.Embedding(c.vocab_size, c.d_model)
        self.pos = nn.Embedding(c.seq_len, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The final normalized hidden states ``(B, T, d_model)``, the ``head``'s input."""
        if x.dim() != 2 or x.shape[1] > self.config.seq_len:
            raise ValueError(
                f"input must be (B, T) symbol codes with T <= {self.config.seq_len}, got "
                f"shape {tuple(x.shape)}"
            )
        z = self.tok(x) + self.pos(torch.arange(x.shape[1], device=x.device))
        for block in self.blocks:
            z = block(z)
        return self.ln_f(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(x))


def make_lm(config: LMConfig | None = None, seed: int = MODEL_SEED) -> CharTransformer:
    """A :class:`CharTransformer` with PyTorch's default initialization drawn from
    ``torch.manual_seed(seed)`` (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CharTransformer(config)


def split_chunks(chunks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``x`` (N, T) and next-symbol targets ``y`` (N, T), int64, from chunks
    (N, T + 1) of symbol codes."""
    c = torch.from_numpy(np.asarray(chunks).astype(np.int64))
    return c[:, :-1].contiguous(), c[:, 1:].contiguous()


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-symbol cross-entropy over all positions (nats per symbol)."""
    logits = model(x)
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _train_base(
    base: np.ndarray, config: LMConfig, steps: int, batch: int, lr: float, seed: int
) -> CharTransformer:
    x, y = split_chunks(base)
    model = make_lm(config, seed)
    model.train()
    order = np.random.default_rng(seed).integers(0, len(x), size=(steps, batch))
    with single_thread():
        opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
        for i, rows in enumerate(order):
            for group in opt.param_groups:  # linear warm-up, then cosine decay to 10%
                warm = min(1.0, (i + 1) / max(1, steps // 20))
                group["lr"] = lr * warm * (0.55 + 0.45 * math.cos(math.pi * i / steps))
            idx = torch.from_numpy(rows)
            opt.zero_grad(set_to_none=True)
            lm_loss(model, x[idx], y[idx]).backward()
            opt.step()
    return finished(model)


def base_cache_key(
    base: np.ndarray, config: LMConfig, steps: int, batch: int, lr: float, seed: int
) -> str:
    """The cache key of a base model: sha256 of the base text and every setting."""
    h = hashlib.sha256(np.ascontiguousarray(base, dtype=np.uint8).tobytes())
    settings = {"config": asdict(config), "steps": steps, "batch": batch, "lr": lr, "seed": seed}
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(torch.__version__.split("+")[0].encode())  # kernels may round differently
    return h.hexdigest()[:32]


def base_model(
    base: np.ndarray,
    config: LMConfig | None = None,
    *,
    steps: int = BASE_STEPS,
    batch: int = BASE_BATCH,
    lr: float = BASE_LR,
    seed: int = MODEL_SEED,
) -> CharTransformer:
    """The base LM for the base text ``base`` (n, T + 1) uint8 codes: loaded from
    ``<cache_dir>/models/char-lm-<key>.pt`` if there, else trained (``steps`` Adam steps on
    ``batch`` chunks drawn with ``numpy.random.default_rng(seed)``, learning rate ``lr``
    with warm-up and cosine decay, one thread) and saved there."""
    config = config or LMConfig(seq_len=np.asarray(base).shape[1] - 1)
    key = base_cache_key(base, config, steps, batch, lr, seed)
    path = cache_dir() / "models" / f"char-lm-{key}.pt"
    # Only weights this installation wrote (checked by their integrity tag) are loaded; a
    # changed, planted or unreadable file is trained again and replaced.
    data = read_tagged(path, MODEL_PURPOSE)
    if data is not None:
        model = make_lm(config, seed)
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            return finished(model)
        except Exception:  # written by another torch, or damaged: train it again
            pass
    model = _train_base(base, config, steps, batch, lr, seed)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    write_tagged(path, buf.getvalue(), MODEL_PURPOSE)
    return model


def train_base(seed: int = 0, **settings: int | float) -> CharTransformer:
    """The (cached) base LM of ``generator://pydoc-text-v0/<seed>``; ``settings`` go to
    :func:`base_model` (``steps``, ``batch``, ``lr``)."""
    from optgym.datasets.dataselect.text import make_text_task

    return base_model(make_text_task(seed).base, **settings)  # type: ignore[arg-type]


def finetune(
    base: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    keep: np.ndarray | torch.Tensor | None = None,
    *,
    steps: int = FINETUNE_STEPS,
    batch: int = FINETUNE_BATCH,
    lr: float = FINETUNE_LR,
    seed: int = MODEL_SEED,
) -> nn.Module:
    """A copy of ``base`` fine-tuned on the rows of ``x``, ``y`` (N, T) int64 where ``keep``
    (N,) bool is true (all when None): ``steps`` Adam steps of learning rate ``lr`` on the
    mean cross-entropy, one thread. Step ``i`` trains on the next ``batch`` kept rows in a
    fixed order (``numpy.random.default_rng(seed).permutation(N)`` restricted to the kept
    rows, cycled), so removing a few rows changes the minibatches only a little and the
    number of updates never changes. ``base`` is not changed; bit-identical for the same
    inputs; returned in eval mode."""
    mask = as_mask(keep, len(x))
    order = np.random.default_rng(seed).permutation(len(x))
    if mask is not None:
        order = order[mask.numpy()[order]]
    visits = np.resize(order, steps * batch).reshape(steps, batch)
    model = copy.deepcopy(base)
    model.train()
    with single_thread():
        opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
        for rows in visits:
            idx = torch.from_numpy(rows)
            opt.zero_grad(set_to_none=True)
            lm_loss(model, x[idx], y[idx]).backward()
            opt.step()
    return finished(model)


def evaluate_lm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(mean cross-entropy in nats per symbol, next-symbol accuracy)`` of ``model``."""
    with single_thread(), torch.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        accuracy = (logits.argmax(-1) == y).double().mean().item()
    return float(loss.item()), float(accuracy)


def lm_example_features(model: CharTransformer, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Per-sequence ``(loss, gradient norm)`` (N, 2) float64: the mean cross-entropy over its
    positions and the Frobenius norm of that loss's gradient with respect to the ``head``
    weight, ``||sum_t (softmax(z_t) - onehot(y_t)) h_t^T|| / T``."""
    with single_thread(), torch.no_grad():
        h = model.hidden(x)
        logits = model.head(h)
        n, t, v = logits.shape
        losses = nn.functional.cross_entropy(
            logits.reshape(-1, v), y.reshape(-1), reduction="none"
        ).view(n, t)
        residual = torch.softmax(logits, dim=-1)
        residual.scatter_add_(-1, y[..., None], -torch.ones_like(residual[..., :1]))
        grad = torch.einsum("btv,btd->bvd", residual, h) / t
        norms = grad.flatten(1).norm(dim=1)
    return torch.stack([losses.mean(1), norms], dim=1).double().numpy()


def ngram_features(chunks: np.ndarray, n_buckets: int = N_BUCKETS) -> np.ndarray:
    """Hashed character n-gram frequencies (N, ``n_buckets``) float32 in [0, 1]: the
    bigrams and trigrams (:data:`NGRAMS`) of each chunk of symbol codes, hashed with a
    fixed polynomial hash into ``n_buckets`` buckets, counts divided by the number of
    n-grams."""
    c = np.asarray(chunks).astype(np.int64)
    counts = np.zeros((len(c), n_buckets), dtype=np.float64)
    total = 0
    rows = np.arange(len(c))[:, None]
    for n in NGRAMS:
        code = np.zeros((len(c), c.shape[1] - n + 1), dtype=np.int64)
        for j in range(n):  # base-97 code of the n-gram, then a multiplicative hash
            code = code * 97 + c[:, j : c.shape[1] - n + 1 + j] + 1
        bucket = ((code * 2654435761) % (2**32)) % n_buckets
        np.add.at(counts, (np.broadcast_to(rows, bucket.shape), bucket), 1.0)
        total += code.shape[1]
    return (counts / max(total, 1)).astype(np.float32)
