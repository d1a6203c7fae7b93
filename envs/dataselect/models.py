"""The models the data-selection env trains: small MLPs, trained deterministically.

Training is full-batch Adam from a seeded initialization, on one CPU thread, so the trained
weights depend only on the examples kept: the same keep mask gives bit-identical weights.
The objective is the mean cross-entropy over the kept examples plus ``(l2 / 2) * ||theta||^2``
over every parameter (biases included), implemented as Adam's ``weight_decay=l2``, which adds
``l2 * theta`` to the gradient. Influence methods need the same objective: its Hessian is the
mean loss's plus ``l2 * I``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from optgym.threads import single_thread

TRAIN_STEPS = 200
LEARNING_RATE = 0.02
L2 = 1e-3
HIDDEN = (64,)


def make_mlp(
    n_in: int, n_classes: int, hidden: Sequence[int] = HIDDEN, seed: int = 0
) -> nn.Sequential:
    """An MLP ``Linear, Tanh, ..., Linear`` (float32, PyTorch's default initialization drawn
    from ``torch.manual_seed(seed)``; the global RNG is left as it was). Only ``nn.Linear``
    and ``nn.Tanh`` modules, so K-FAC code can walk its linear layers."""
    if n_in < 1 or n_classes < 2 or any(h < 1 for h in hidden):
        raise ValueError(
            f"need n_in >= 1, n_classes >= 2 and hidden sizes >= 1; got n_in={n_in}, "
            f"n_classes={n_classes}, hidden={tuple(hidden)}"
        )
    sizes = [n_in, *hidden, n_classes]
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def as_mask(keep: np.ndarray | torch.Tensor | None, n: int) -> torch.Tensor | None:
    """``keep`` (one flag per example, ``n`` of them) as a boolean tensor; None stays None
    (every example). ``ValueError`` for another shape."""
    if keep is None:
        return None
    mask = torch.as_tensor(np.asarray(keep, dtype=bool))
    if mask.shape != (n,):
        raise ValueError(
            f"keep mask must have shape ({n},) (one flag per example), got {tuple(mask.shape)}"
        )
    if not bool(mask.any()):
        raise ValueError("keep mask keeps no example; training needs at least one")
    return mask


def finished(model: nn.Module) -> nn.Module:
    """A trained ``model`` put in eval mode, its parameters still requiring gradients (for
    influence methods); the same model."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def train_mlp(
    init: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    keep: np.ndarray | torch.Tensor | None = None,
    *,
    steps: int = TRAIN_STEPS,
    lr: float = LEARNING_RATE,
    l2: float = L2,
) -> nn.Module:
    """A copy of ``init`` trained on the rows of ``x`` (N, d) float32 and ``y`` (N,) int64
    where ``keep`` (N,) bool is true (all rows when None): ``steps`` full-batch Adam steps
    of learning rate ``lr`` on mean cross-entropy + ``(l2 / 2) ||theta||^2``, one thread.
    ``init`` is not changed; the copy is returned in eval mode."""
    mask = as_mask(keep, len(y))
    xs, ys = (x, y) if mask is None else (x[mask], y[mask])
    model = copy.deepcopy(init)
    model.train()
    with single_thread():
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=l2, foreach=True)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(xs), ys)
            loss.backward()
            opt.step()
    return finished(model)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(mean cross-entropy in nats, accuracy in [0, 1])`` of ``model`` on ``x, y``."""
    with single_thread(), torch.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).double().mean().item()
    return float(loss), float(accuracy)


def example_features(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Per-example ``(loss, gradient norm)`` (N, 2) float64 under ``model``: the
    cross-entropy, and the Frobenius norm of its gradient with respect to the last linear
    layer's weight, ``||softmax(z) - onehot(y)|| * ||h||`` (``h`` that layer's input)."""
    last = model[-1]
    if not isinstance(last, nn.Linear):
        raise ValueError(f"the model's last module must be nn.Linear, got {type(last).__name__}")
    with single_thread(), torch.no_grad():
        h = model[:-1](x)
        logits = last(h)
        losses = nn.functional.cross_entropy(logits, y, reduction="none")
        residual = torch.softmax(logits, dim=1)
        residual[torch.arange(len(y)), y] -= 1.0
        grad_norm = residual.norm(dim=1) * h.norm(dim=1)
    return torch.stack([losses, grad_norm], dim=1).double().numpy()
