"""LLVM bitcode datasets: seeded Csmith and llvm-stress generators and real programs built
from Debian source packages."""

from optgym.datasets.passes.generators import CsmithDataset, LlvmStressDataset

__all__ = ["CsmithDataset", "LlvmStressDataset"]
