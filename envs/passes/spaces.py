"""Observation and reward spaces of the pass-ordering env, as CompilerGym defines them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces


class StringSpace(spaces.Space[str]):
    """Any ``str`` (IR text, a schedule): gymnasium's ``Text`` checks a charset per
    character, far too slow for megabytes of IR."""

    def __init__(self, seed: int | np.random.Generator | None = None):
        super().__init__(shape=None, dtype=None, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str)

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        return ""

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "StringSpace()"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, StringSpace)


class GraphDataSpace(spaces.Space[Any]):
    """A torch-geometric ``Data`` (or ``HeteroData``) graph of any size.

    ``node_features`` and ``edge_features`` give the width of ``x`` and ``edge_attr``.
    """

    def __init__(self, node_features: int, edge_features: int, seed: int | None = None):
        super().__init__(shape=None, dtype=None, seed=seed)
        self.node_features = node_features
        self.edge_features = edge_features

    def contains(self, x: Any) -> bool:
        from torch_geometric.data import Data

        if not isinstance(x, Data):
            return False
        return (
            x.x.dim() == 2
            and x.x.shape[1] == self.node_features
            and x.edge_index.dim() == 2
            and x.edge_index.shape[0] == 2
            and (x.edge_attr is None or x.edge_attr.shape[-1] == self.edge_features)
        )

    def sample(self, mask: Any = None, probability: Any = None) -> Any:
        import torch
        from torch_geometric.data import Data

        n = int(self.np_random.integers(1, 8))
        e = int(self.np_random.integers(0, 16))
        return Data(
            x=torch.zeros((n, self.node_features), dtype=torch.long),
            edge_index=torch.as_tensor(self.np_random.integers(0, n, size=(2, e))),
            edge_attr=torch.zeros((e, self.edge_features), dtype=torch.long),
        )

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __repr__(self) -> str:
        n, e = self.node_features, self.edge_features
        return f"GraphDataSpace(node_features={n}, edge_features={e})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, GraphDataSpace)
            and other.node_features == self.node_features
            and other.edge_features == self.edge_features
        )


_OPCODES = (
    "Ret", "Br", "Switch", "IndirectBr", "Invoke", "Resume", "Unreachable", "CleanupRet",
    "CatchRet", "CatchSwitch", "CallBr", "FNeg", "Add", "FAdd", "Sub", "FSub", "Mul", "FMul",
    "UDiv", "SDiv", "FDiv", "URem", "SRem", "FRem", "Shl", "LShr", "AShr", "And", "Or", "Xor",
    "Alloca", "Load", "Store", "GetElementPtr", "Fence", "AtomicCmpXchg", "AtomicRMW", "Trunc",
    "ZExt", "SExt", "FPToUI", "FPToSI", "UIToFP", "SIToFP", "FPTrunc", "FPExt", "PtrToInt",
    "IntToPtr", "BitCast", "AddrSpaceCast", "CleanupPad", "CatchPad", "ICmp", "FCmp", "PHI",
    "Call", "Select", "UserOp1", "UserOp2", "VAArg", "ExtractElement", "InsertElement",
    "ShuffleVector", "ExtractValue", "InsertValue", "LandingPad", "Freeze",
)  # fmt: skip

#: InstCount: three totals, then one count per LLVM opcode in Instruction.def order.
INSTCOUNT_NAMES: tuple[str, ...] = (
    "TotalInstsCount",
    "TotalBlocksCount",
    "TotalFuncsCount",
) + tuple(f"{op}Count" for op in _OPCODES)

#: The 56 Autophase features (Haj-Ali et al., MLSys 2020), in CompilerGym's order.
AUTOPHASE_NAMES: tuple[str, ...] = (
    "BBNumArgsHi", "BBNumArgsLo", "onePred", "onePredOneSuc", "onePredTwoSuc", "oneSuccessor",
    "twoPred", "twoPredOneSuc", "twoEach", "twoSuccessor", "morePreds", "BB03Phi", "BBHiPhi",
    "BBNoPhi", "BeginPhi", "BranchCount", "returnInt", "CriticalCount", "NumEdges",
    "const32Bit", "const64Bit", "numConstZeroes", "numConstOnes", "UncondBranches",
    "binaryConstArg", "NumAShrInst", "NumAddInst", "NumAllocaInst", "NumAndInst", "BlockMid",
    "BlockLow", "NumBitCastInst", "NumBrInst", "NumCallInst", "NumGetElementPtrInst",
    "NumICmpInst", "NumLShrInst", "NumLoadInst", "NumMulInst", "NumOrInst", "NumPHIInst",
    "NumRetInst", "NumSExtInst", "NumSelectInst", "NumShlInst", "NumStoreInst", "NumSubInst",
    "NumTruncInst", "NumXorInst", "NumZExtInst", "TotalBlocks", "TotalInsts", "TotalMemInst",
    "TotalFuncs", "ArgsPhi", "testUnary",
)  # fmt: skip

#: Reference pipelines an episode can be measured against (and the reference agents run).
REFERENCES: dict[str, str] = {"O0": "", "O3": "default<O3>", "Oz": "default<Oz>"}

_INT64_MAX = np.iinfo(np.int64).max


def _vector(n: int) -> spaces.Box:
    return spaces.Box(0, _INT64_MAX, shape=(n,), dtype=np.int64)


#: Observation space name -> (gymnasium space, what the worker computes, reference or None).
OBSERVATION_SPACES: dict[str, tuple[spaces.Space, str, str | None]] = {
    "Ir": (StringSpace(), "Ir", None),
    "InstCount": (_vector(len(INSTCOUNT_NAMES)), "InstCount", None),
    "Autophase": (_vector(len(AUTOPHASE_NAMES)), "Autophase", None),
    "Programl": (GraphDataSpace(node_features=2, edge_features=2), "Programl", None),
    "IrInstructionCount": (_vector(1), "IrInstructionCount", None),
    "IrInstructionCountO0": (_vector(1), "IrInstructionCount", "O0"),
    "IrInstructionCountO3": (_vector(1), "IrInstructionCount", "O3"),
    "IrInstructionCountOz": (_vector(1), "IrInstructionCount", "Oz"),
    "ObjectTextSizeBytes": (_vector(1), "ObjectTextSizeBytes", None),
    "ObjectTextSizeO0": (_vector(1), "ObjectTextSizeBytes", "O0"),
    "ObjectTextSizeO3": (_vector(1), "ObjectTextSizeBytes", "O3"),
    "ObjectTextSizeOz": (_vector(1), "ObjectTextSizeBytes", "Oz"),
}


@dataclass(frozen=True)
class RewardSpace:
    """Reward = (previous cost - cost) / norm; norm = max(initial - reference cost, 1) when
    ``reference`` is set, else 1. Summed over an episode: the cost reduction, as a fraction
    of what the reference pipeline achieves (1.0 = as good as -Oz)."""

    name: str
    cost: str  # worker observation: IrInstructionCount or ObjectTextSizeBytes
    reference: str | None
    deterministic: bool = True


REWARD_SPACES: dict[str, RewardSpace] = {
    r.name: r
    for r in (
        RewardSpace("IrInstructionCount", "IrInstructionCount", None),
        RewardSpace("IrInstructionCountO3", "IrInstructionCount", "O3"),
        RewardSpace("IrInstructionCountOz", "IrInstructionCount", "Oz"),
        RewardSpace("ObjectTextSizeBytes", "ObjectTextSizeBytes", None),
        RewardSpace("ObjectTextSizeO3", "ObjectTextSizeBytes", "O3"),
        RewardSpace("ObjectTextSizeOz", "ObjectTextSizeBytes", "Oz"),
    )
}
