"""Datasets and benchmarks shared by every OptGym problem."""

from __future__ import annotations

from optgym.datasets.dataset import Benchmark, Dataset, DatasetRegistry


def all_datasets() -> DatasetRegistry:
    """Every dataset OptGym knows; each problem adds its family here."""
    from optgym.datasets.dataselect import dataselect_datasets
    from optgym.datasets.halide import halide_datasets
    from optgym.datasets.ilp import ilp_datasets
    from optgym.datasets.llvm import llvm_datasets
    from optgym.datasets.nav2d import nav2d_datasets

    return DatasetRegistry(
        [
            *llvm_datasets(),
            *ilp_datasets(),
            *halide_datasets(),
            *nav2d_datasets(),
            *dataselect_datasets(),
        ]
    )


__all__ = ["Benchmark", "Dataset", "DatasetRegistry", "all_datasets"]
