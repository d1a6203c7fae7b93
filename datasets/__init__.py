"""Datasets and benchmarks shared by every OptGym problem."""
