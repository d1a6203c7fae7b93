"""LLVM bitcode datasets: seeded Csmith and llvm-stress generators and real programs built
from Debian source packages."""

from optgym.datasets.passes.generators import CsmithDataset, LlvmStressDataset

__all__ = ["CsmithDataset", "LlvmStressDataset", "llvm_datasets"]


def llvm_datasets() -> list:
    """Every LLVM dataset, in the order ``optgym datasets list`` shows them."""
    from optgym.datasets.passes.debian import DebianDataset

    return [CsmithDataset(), LlvmStressDataset(), DebianDataset()]
