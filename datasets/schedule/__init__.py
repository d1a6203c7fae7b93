"""Halide schedule-search benchmarks: pipelines of tensor operators as pure data
(:mod:`~optgym.datasets.schedule.spec`), their operator library with numpy references
(:mod:`~optgym.datasets.schedule.ops`), and the datasets ``halide-ops-v0`` (fixed pipelines) and
``halide-random-v0`` (seeded random operator networks)."""

from __future__ import annotations

from optgym.datasets.schedule.generators import (
    HalideOpsDataset,
    RandomDagDataset,
    load_spec,
    ops_spec,
    random_spec,
)
from optgym.datasets.schedule.ops import (
    FEATURE_NAMES,
    OPS,
    Access,
    Counts,
    Op,
    accesses,
    evaluate,
    input_data,
    intrinsic_features,
    naive_work,
    outputs_match,
    reference_output,
    required_regions,
    stage_feature_matrix,
)
from optgym.datasets.schedule.spec import InputTensor, PipelineSpec, Stage

__all__ = [
    "FEATURE_NAMES",
    "OPS",
    "Access",
    "Counts",
    "HalideOpsDataset",
    "InputTensor",
    "Op",
    "PipelineSpec",
    "RandomDagDataset",
    "Stage",
    "accesses",
    "evaluate",
    "input_data",
    "intrinsic_features",
    "load_spec",
    "naive_work",
    "ops_spec",
    "outputs_match",
    "random_spec",
    "reference_output",
    "required_regions",
    "stage_feature_matrix",
]
