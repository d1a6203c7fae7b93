"""Influence functions for models built of ``nn.Linear`` layers, with K-FAC and EK-FAC.

Reimplemented from Grosse et al. 2023, "Studying Large Language Model Generalization with
Influence Functions" (EK-FAC influence, query batching, TF-IDF filtering) and George et
al. 2018, "Fast Approximate Natural Gradient Descent in a Kronecker-factored Eigenbasis"
(the eigenvalue correction).

The model is any ``nn.Module`` mapping inputs ``x`` to logits ``(B, C)`` (a classifier) or
``(B, T, C)`` (a language model, targets ``(B, T)``, ``-100`` ignored); the loss is
cross-entropy, summed over the positions of one example. Influence is computed for the
``nn.Linear`` layers picked by name (default: all of them). A layer with a bias is treated as
a weight ``(d_out, d_in + 1)`` acting on the input with a 1 appended.

Per-example gradients come from hooks: a forward hook keeps each layer's input ``a``
``(B, T, d_in)`` and a hook on its output keeps the pre-activation gradient ``g``
``(B, T, d_out)``; the gradient of example ``b`` is ``sum_t g[b, t]^T a[b, t]``.

The curvature ``H`` is the Gauss-Newton (Fisher) matrix of the mean per-example training
loss, block-diagonal over layers, with per layer
``H ~ (Q_S x Q_A) diag(Lambda) (Q_S x Q_A)^T + lambda I`` where ``Q_A``, ``Q_S`` are the
eigenvectors of ``A = E[a a^T]`` and ``S = E[g g^T]`` (``g`` from labels sampled from the
model), ``Lambda`` is the product of their eigenvalues (K-FAC) or the eigenvalue
correction ``E[(Q_S^T G Q_A)^2]`` over per-example gradients ``G`` (EK-FAC), and
``lambda = damping * mean(Lambda)``.

Sign convention: ``score(query, train) = grad L_query^T H^-1 grad L_train`` with true
labels. Upweighting a training example by ``eps`` in the mean training loss changes the
query loss by about ``-eps * score``, so a POSITIVE score means the training example HELPS
(removing it would raise the query loss) and a negative score means it hurts.

Everything runs on CPU with one torch thread (restored afterwards) and is deterministic given
``seed``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import Tensor, nn

from optgym.threads import single_thread

METHODS = ("ekfac", "kfac")
LABELS = ("sampled", "expected")
IGNORE_INDEX = -100


@dataclass
class LayerFactors:
    """Curvature factors of one ``nn.Linear`` layer (all float64).

    ``d_in`` counts the appended 1 when the layer has a bias.
    """

    a_cov: Tensor
    """``A = E[a a^T]`` over positions, ``(d_in, d_in)``."""
    s_cov: Tensor
    """``S = E_example[sum_t g_t g_t^T]``, ``(d_out, d_out)``."""
    qa: Tensor
    """Eigenvectors of ``A`` (columns), ``(d_in, d_in)``."""
    qs: Tensor
    """Eigenvectors of ``S`` (columns), ``(d_out, d_out)``."""
    eigenvalues: Tensor
    """``Lambda`` in the Kronecker-factored eigenbasis, ``(d_out, d_in)``."""
    damping: float
    """The absolute damping ``lambda`` added to every eigenvalue."""
    has_bias: bool
    """Whether a 1 is appended to the layer's input."""


@dataclass
class Factors:
    """Fitted curvature of a model: one :class:`LayerFactors` per chosen layer."""

    method: str
    """``"ekfac"`` or ``"kfac"``."""
    layers: dict[str, LayerFactors]
    """Layer name (as in ``model.named_modules()``) -> its factors, in model order."""

    @property
    def layer_names(self) -> list[str]:
        """The chosen layers' names."""
        return list(self.layers)


# ---------------------------------------------------------------------------------------
# Hooks and per-example gradients


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode (no dropout) and restore its training flag afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def linear_layers(model: nn.Module, names: Sequence[str] | None = None) -> dict[str, nn.Linear]:
    """The ``nn.Linear`` layers of ``model`` by name: all of them, or those in ``names``."""
    found = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    if names is None:
        if not found:
            raise ValueError("model has no nn.Linear layers")
        return found
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"layers {missing} are not nn.Linear layers; have {list(found)}")
    return {n: found[n] for n in names}


def _as_3d(t: Tensor) -> Tensor:
    """Reshape ``(B, ..., d)`` to ``(B, T, d)``."""
    return t.reshape(t.shape[0], -1, t.shape[-1])


def _capture(
    model: nn.Module,
    layers: dict[str, nn.Linear],
    x: Tensor,
    targets: Tensor | None,
    generator: torch.Generator | None = None,
    label_value: int | None = None,
) -> tuple[dict[str, tuple[Tensor, Tensor]], Tensor, Tensor]:
    """One forward/backward pass; returns per layer ``(a, g)`` as ``(B, T, d)`` float64.

    The labels are ``targets`` (true labels), else sampled from the model with
    ``generator``, else the constant ``label_value``. Also returns the labels used and the
    detached logits.
    """
    inputs: dict[str, Tensor] = {}
    outputs: dict[str, Tensor] = {}

    def make_hook(name: str):
        def hook(module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
            if name in inputs:
                raise ValueError(f"layer {name!r} is called twice in one forward; unsupported")
            inputs[name] = args[0].detach()
            outputs[name] = out

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in layers.items()]
    try:
        with torch.enable_grad():
            logits = model(x)
    finally:
        for h in handles:
            h.remove()
    n_cls = logits.shape[-1]
    flat = logits.reshape(-1, n_cls)
    if targets is not None:
        labels = targets.reshape(-1).long()
    elif generator is not None:
        probs = torch.softmax(flat.detach().double(), dim=-1)
        labels = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    else:
        labels = torch.full((flat.shape[0],), int(label_value), dtype=torch.long)
    loss = nn.functional.cross_entropy(flat, labels, reduction="sum", ignore_index=IGNORE_INDEX)
    missing = [n for n in layers if n not in outputs or not outputs[n].requires_grad]
    if missing:
        raise ValueError(f"layers {missing} were not used with gradients in the forward pass")
    grads = torch.autograd.grad(loss, [outputs[n] for n in layers])
    captured = {}
    for (name, module), g in zip(layers.items(), grads, strict=True):
        a = _as_3d(inputs[name]).double()
        if module.bias is not None:
            a = torch.cat([a, a.new_ones(a.shape[:-1] + (1,))], dim=-1)
        captured[name] = (a, _as_3d(g).double())
    return captured, labels.reshape(logits.shape[:-1]), logits.detach()


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _captured_batches(
    model: nn.Module, modules: dict[str, nn.Linear], x: Tensor, y: Tensor, batch_size: int
) -> Iterator[tuple[slice, dict[str, tuple[Tensor, Tensor]]]]:
    """``(slice, per-layer (a, g))`` for each batch of ``(x, y)`` with true labels, on one
    thread with the model in eval mode."""
    with single_thread(), _eval_mode(model):
        for sl in _batches(len(x), batch_size):
            yield sl, _capture(model, modules, x[sl], y[sl])[0]


def _example_grads(captured: dict[str, tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
    """Per-example gradients ``(B, d_out, d_in)`` from captured ``(a, g)``."""
    return {n: torch.einsum("bto,bti->boi", g, a) for n, (a, g) in captured.items()}


def per_example_grads(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    layers: Sequence[str] | None = None,
    batch_size: int = 256,
) -> dict[str, Tensor]:
    """Per-example loss gradients w.r.t. each chosen layer's weight, ``(n, d_out, d_in)``.

    For a layer with a bias the last column is the bias gradient. float64.
    """
    modules = linear_layers(model, layers)
    out: dict[str, list[Tensor]] = {n: [] for n in modules}
    for _, captured in _captured_batches(model, modules, x, y, batch_size):
        for n, gr in _example_grads(captured).items():
            out[n].append(gr)
    return {n: torch.cat(v) for n, v in out.items()}


# ---------------------------------------------------------------------------------------
# Factors


def fit_factors(
    model: nn.Module,
    x: Tensor,
    method: str = "ekfac",
    damping: float = 0.1,
    labels: str = "sampled",
    seed: int = 0,
    batch_size: int = 256,
    layers: Sequence[str] | None = None,
) -> Factors:
    """Fit K-FAC or EK-FAC factors of the chosen layers on inputs ``x``.

    Args:
        model: maps ``x`` to logits ``(B, C)`` or ``(B, T, C)``.
        x: training inputs (the true labels are not used).
        method: ``"ekfac"`` (eigenvalue-corrected) or ``"kfac"``.
        damping: ``lambda = damping * mean(Lambda)`` per layer.
        labels: ``"sampled"`` draws one label per position from the model's predictive
            distribution (Grosse et al.); ``"expected"`` takes the exact expectation over
            all classes (the true Gauss-Newton matrix; classifiers with ``(B, C)`` logits
            only, costs C backward passes per batch).
        seed: seeds the label sampling.
        batch_size: examples per forward/backward pass.
        layers: names of ``nn.Linear`` layers; default all.

    ``A`` averages over all positions, including those whose target would be ignored.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} not in {METHODS}")
    if labels not in LABELS:
        raise ValueError(f"labels {labels!r} not in {LABELS}")
    if damping < 0:
        raise ValueError(f"damping {damping} must be >= 0")
    modules = linear_layers(model, layers)
    generator = torch.Generator().manual_seed(seed)
    n = len(x)
    with single_thread(), _eval_mode(model):
        # Pass 1: A and S (labels kept so pass 2 sees the same pseudo-gradients).
        a_sum: dict[str, Tensor] = {}
        s_sum: dict[str, Tensor] = {}
        n_pos = 0
        sampled: list[Tensor] = []
        for sl in _batches(n, batch_size):
            passes = _label_passes(model, modules, x[sl], labels, generator, sampled)
            for captured, weight in passes:
                for name, (_, g) in captured.items():
                    gw = g * weight.sqrt()[..., None]
                    s = torch.einsum("bto,btp->op", gw, gw)
                    s_sum[name] = s_sum.get(name, 0) + s
            # A does not depend on the labels: take it from the last pass of this batch.
            for name, (a, _) in captured.items():
                a_sum[name] = a_sum.get(name, 0) + torch.einsum("bti,btj->ij", a, a)
            n_pos += a.shape[0] * a.shape[1]
        factors: dict[str, LayerFactors] = {}
        for name, module in modules.items():
            a_cov = a_sum[name] / n_pos
            s_cov = s_sum[name] / n
            ea, qa = torch.linalg.eigh(a_cov)
            es, qs = torch.linalg.eigh(s_cov)
            factors[name] = LayerFactors(
                a_cov=a_cov,
                s_cov=s_cov,
                qa=qa,
                qs=qs,
                eigenvalues=torch.outer(es.clamp_min(0), ea.clamp_min(0)),
                damping=0.0,
                has_bias=module.bias is not None,
            )
        if method == "ekfac":
            # Pass 2: eigenvalue correction E[(Q_S^T G Q_A)^2] with the same labels.
            lam = {name: torch.zeros_like(f.eigenvalues) for name, f in factors.items()}
            replay = iter(sampled)
            for sl in _batches(n, batch_size):
                for captured, weight in _label_passes(model, modules, x[sl], labels, None, replay):
                    for name, (a, g) in captured.items():
                        f = factors[name]
                        rot = torch.einsum("bto,bti->boi", g @ f.qs, a @ f.qa)
                        lam[name] += (rot.square() * weight[:, :1, None]).sum(0)
            for name, f in factors.items():
                f.eigenvalues = lam[name] / n
        for f in factors.values():
            f.damping = float(damping * f.eigenvalues.mean())
    return Factors(method=method, layers=factors)


def _label_passes(
    model: nn.Module,
    modules: dict[str, nn.Linear],
    x: Tensor,
    labels: str,
    generator: torch.Generator | None,
    store: list[Tensor] | Iterator[Tensor],
) -> Iterator[tuple[dict[str, tuple[Tensor, Tensor]], Tensor]]:
    """Yield ``(captured, weight)`` with ``weight`` ``(B, T)`` per pseudo-label pass.

    ``"sampled"``: one pass; labels are drawn with ``generator`` and appended to ``store``
    (a list), or, when ``generator`` is None, read from ``store`` (an iterator).
    ``"expected"``: one pass per class ``c`` weighted by ``p_c``.
    """
    if labels == "sampled":
        if generator is not None:
            captured, used, _ = _capture(model, modules, x, None, generator=generator)
            store.append(used)  # type: ignore[union-attr]
        else:
            captured, used, _ = _capture(model, modules, x, next(store))  # type: ignore[arg-type]
        b, t = next(iter(captured.values()))[1].shape[:2]
        yield captured, torch.ones(b, t, dtype=torch.float64)
        return
    with torch.no_grad():
        logits = model(x)
    if logits.dim() != 2:
        raise ValueError(f"labels='expected' needs (B, C) logits, got shape {tuple(logits.shape)}")
    probs = torch.softmax(logits.double(), dim=-1)
    for c in range(logits.shape[-1]):
        captured, _, _ = _capture(model, modules, x, None, label_value=c)
        yield captured, probs[:, c : c + 1]


# ---------------------------------------------------------------------------------------
# Preconditioning and scores


def inverse_hvp(factors: Factors, grads: dict[str, Tensor]) -> dict[str, Tensor]:
    """``H^-1 G`` per layer: ``Q_S ((Q_S^T G Q_A) / (Lambda + lambda)) Q_A^T``.

    ``grads`` maps layer name -> ``(n, d_out, d_in)`` (or ``(d_out, d_in)``).
    """
    out = {}
    for name, f in factors.layers.items():
        g = grads[name].double()
        rot = f.qs.T @ g @ f.qa
        out[name] = f.qs @ (rot / (f.eigenvalues + f.damping)) @ f.qa.T
    return out


def _check_layers(factors: Factors, model: nn.Module) -> dict[str, nn.Linear]:
    """The model's layers named in ``factors``."""
    return linear_layers(model, factors.layer_names)


def _low_rank(p: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """Rank-``rank`` factors of ``p`` ``(n, o, i)``: ``L (n, o, r)`` (singular values folded
    in) and ``R (n, i, r)`` with ``p ~ L R^T``."""
    u, s, vh = torch.linalg.svd(p, full_matrices=False)
    r = min(rank, s.shape[-1])
    return u[..., :r] * s[:, None, :r], vh[:, :r, :].transpose(1, 2)


def influence_scores(
    model: nn.Module,
    factors: Factors | None,
    train_x: Tensor,
    train_y: Tensor,
    query_x: Tensor,
    query_y: Tensor,
    query_rank: int | None = None,
    batch_size: int = 256,
    layers: Sequence[str] | None = None,
) -> np.ndarray:
    """Influence of every training example on every query, ``(n_query, n_train)``.

    ``score = grad L_query^T H^-1 grad L_train`` (true labels); positive = the training
    example helps (reduces the query loss). ``factors=None`` skips preconditioning (a plain
    gradient dot product over ``layers``).

    With ``query_rank=r`` each preconditioned query gradient is replaced per layer by its
    top-``r`` singular triplets (query batching, Grosse et al.); scores are then computed
    from the layer inputs and output gradients without forming training gradients.
    """
    if query_rank is not None and query_rank < 1:
        raise ValueError(f"query_rank {query_rank} must be >= 1 or None")
    names = factors.layer_names if factors is not None else layers
    modules = linear_layers(model, names)
    q = per_example_grads(model, query_x, query_y, list(modules), batch_size)
    if factors is not None:
        q = inverse_hvp(factors, q)
    low = {n: _low_rank(p, query_rank) for n, p in q.items()} if query_rank else None
    cols = []
    for sl, captured in _captured_batches(model, modules, train_x, train_y, batch_size):
        block = torch.zeros(len(query_x), sl.stop - sl.start, dtype=torch.float64)
        for name, (a, g) in captured.items():
            if low is None:
                grads = torch.einsum("bto,bti->boi", g, a)
                block += torch.einsum("qoi,boi->qb", q[name], grads)
            else:
                left, right = low[name]
                gl = torch.einsum("bto,qor->bqtr", g, left)
                ar = torch.einsum("bti,qir->bqtr", a, right)
                block += (gl * ar).sum((2, 3)).T
        cols.append(block)
    return torch.cat(cols, dim=1).numpy()


def grad_dot_scores(
    model: nn.Module,
    train_x: Tensor,
    train_y: Tensor,
    query_x: Tensor,
    query_y: Tensor,
    layers: Sequence[str] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """``grad L_query . grad L_train`` over the chosen layers, ``(n_query, n_train)``."""
    return influence_scores(
        model, None, train_x, train_y, query_x, query_y, batch_size=batch_size, layers=layers
    )


def self_influence(
    model: nn.Module, factors: Factors, x: Tensor, y: Tensor, batch_size: int = 256
) -> np.ndarray:
    """``g^T H^-1 g`` per example (true labels), ``(n,)``; large = unusual/memorized."""
    modules = _check_layers(factors, model)
    out = []
    for sl, captured in _captured_batches(model, modules, x, y, batch_size):
        total = torch.zeros(sl.stop - sl.start, dtype=torch.float64)
        for name, (a, g) in captured.items():
            f = factors.layers[name]
            rot = torch.einsum("bto,bti->boi", g @ f.qs, a @ f.qa)
            total += (rot.square() / (f.eigenvalues + f.damping)).sum((1, 2))
        out.append(total)
    return torch.cat(out).numpy()


def summed_influence(
    model: nn.Module,
    factors: Factors | None,
    train_x: Tensor,
    train_y: Tensor,
    query_x: Tensor,
    query_y: Tensor,
    batch_size: int = 256,
) -> np.ndarray:
    """Influence of each training example on the summed query loss, ``(n_train,)``.

    Equals ``influence_scores(...).sum(0)`` but preconditions the summed query gradient
    once. ``factors=None`` gives the summed gradient dot product over all linear layers.
    """
    names = factors.layer_names if factors is not None else None
    modules = linear_layers(model, names)
    q = per_example_grads(model, query_x, query_y, list(modules), batch_size)
    q = {n: v.sum(0) for n, v in q.items()}
    if factors is not None:
        q = inverse_hvp(factors, q)
    out = []
    for sl, captured in _captured_batches(model, modules, train_x, train_y, batch_size):
        total = torch.zeros(sl.stop - sl.start, dtype=torch.float64)
        for name, (a, g) in captured.items():
            # q . sum_t g_t a_t^T = sum_t g_t^T q a_t
            total += torch.einsum("bto,oi,bti->b", g, q[name], a)
        out.append(total)
    return torch.cat(out).numpy()


# ---------------------------------------------------------------------------------------
# Text filtering and evaluation


def tfidf_filter(
    query_texts: Sequence[str], candidate_texts: Sequence[str], keep: int, **tfidf_kwargs: Any
) -> np.ndarray:
    """Indices of the ``keep`` candidates most similar to the query set, best first.

    Similarity is the largest TF-IDF cosine similarity to any query (scikit-learn's
    ``TfidfVectorizer``, fit on candidates and queries; ``tfidf_kwargs`` go to it, e.g.
    ``analyzer="char", ngram_range=(2, 4)`` for character-level text). Ties keep the
    candidates' order.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    if keep < 0:
        raise ValueError(f"keep {keep} must be >= 0")
    vec = TfidfVectorizer(**tfidf_kwargs).fit(list(candidate_texts) + list(query_texts))
    cand = vec.transform(candidate_texts)
    qry = vec.transform(query_texts)
    # Rows are L2-normalized, so the dot product is the cosine similarity.
    sim = np.asarray((cand @ qry.T).max(axis=1).todense()).ravel()
    return np.argsort(-sim, kind="stable")[:keep]


def random_subsets(n: int, m: int, fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """``m`` random subsets of ``range(n)``, each keeping ``round(fraction * n)`` examples.

    Returns a bool mask ``(m, n)``.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction {fraction} must be in (0, 1]")
    rng = np.random.default_rng(seed)
    k = int(round(fraction * n))
    masks = np.zeros((m, n), dtype=bool)
    for row in masks:
        row[rng.choice(n, size=k, replace=False)] = True
    return masks


def linear_datamodeling_score(
    scores: np.ndarray, subsets: np.ndarray, measured: np.ndarray, measured_is_loss: bool = True
) -> float:
    """The linear datamodeling score (LDS) of per-example influence ``scores`` ``(n_train,)``.

    The predicted effect of a subset (``subsets``: ``(m, n_train)`` bool, True = kept) is the
    sum of the scores of its kept examples; the LDS is the Spearman correlation between the
    predicted effects and the measured outcomes ``(m,)``. Influence predicts a LOWER loss,
    so with ``measured_is_loss`` (default, e.g. the query loss after retraining on each
    subset) the correlation is taken with ``-measured``; pass False for a higher-is-better
    outcome (e.g. accuracy).
    """
    subsets = np.asarray(subsets, dtype=bool)
    measured = np.asarray(measured, dtype=float)
    if subsets.shape != (len(measured), len(scores)):
        raise ValueError(
            f"subsets shape {subsets.shape} must be (len(measured), len(scores)) = "
            f"({len(measured)}, {len(scores)})"
        )
    predicted = subsets.astype(float) @ np.asarray(scores, dtype=float)
    target = -measured if measured_is_loss else measured
    return float(spearmanr(predicted, target).statistic)
