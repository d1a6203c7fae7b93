"""Thread counts set for a block and restored after it: torch's intra-op threads, and the
BLAS threads of NumPy's OpenBLAS."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch on ``n`` intra-op threads inside the block, then restore the previous count
    (deterministic results need a fixed count: sums over other thread counts round
    differently)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def single_thread() -> contextlib.AbstractContextManager[None]:
    """``torch_threads(1)``."""
    return torch_threads(1)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run NumPy's BLAS (OpenBLAS, through threadpoolctl) on one thread inside the block,
    as the sandbox does (``OPENBLAS_NUM_THREADS=1``): a product or an eigendecomposition
    (CMA-ES's) split over other thread counts rounds otherwise, so that an agent run here and
    rerun in the sandbox would not give the same actions."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
