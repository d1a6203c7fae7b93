"""Datasets and benchmarks shared by every OptGym problem."""

from __future__ import annotations

from optgym.datasets.dataset import Benchmark, Dataset, DatasetRegistry


def all_datasets() -> DatasetRegistry:
    """Every dataset OptGym knows: each problem's record lists its own."""
    from optgym.envs import problems

    return DatasetRegistry(d for p in problems().values() for d in p.datasets())


__all__ = ["Benchmark", "Dataset", "DatasetRegistry", "all_datasets"]
