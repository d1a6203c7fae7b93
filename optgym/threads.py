"""Torch's intra-op thread count, set for a block and restored after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch on ``n`` intra-op threads inside the block, then restore the previous count
    (deterministic results need a fixed count: sums over other thread counts round
    differently)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def single_thread() -> contextlib.AbstractContextManager[None]:
    """``torch_threads(1)``."""
    return torch_threads(1)
