"""Wrappers shared by every OptGym env: the runner's budget, and what training needs (a
benchmark drawn per reset, fixed-size actions and graph observations, a per-step time cap,
another named observation)."""

from optgym.wrappers.actions import FixedScores
from optgym.wrappers.budget import BudgetWrapper
from optgym.wrappers.graph import PaddedGraph, to_batch
from optgym.wrappers.observation import NamedObservation
from optgym.wrappers.sampler import BenchmarkSampler
from optgym.wrappers.time_cap import StepTimeCap

__all__ = [
    "BenchmarkSampler",
    "BudgetWrapper",
    "FixedScores",
    "NamedObservation",
    "PaddedGraph",
    "StepTimeCap",
    "to_batch",
]
