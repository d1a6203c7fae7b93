"""The ``Programl`` observation: the worker's graph arrays as a torch-geometric ``Data``.

Nodes (``x[:, 0]`` kind, ``x[:, 1]`` text): 0 = instruction (text = opcode index in
``spaces.INSTCOUNT_NAMES[3:]`` order), 1 = variable (an instruction result, argument or
global; text = LLVM type kind), 2 = constant (text = type kind). ``function`` holds each
node's function index (-1 for constants). Edges (``edge_attr[:, 0]`` flow, ``[:, 1]``
position): 0 = control, 1 = data, 2 = call.
"""

from __future__ import annotations

import numpy as np


def to_data(nodes: bytes, edges: bytes):
    """Build ``torch_geometric.data.Data`` from the worker's int64 node and edge rows."""
    import torch
    from torch_geometric.data import Data

    n = np.frombuffer(nodes, dtype=np.int64).reshape(-1, 3)
    e = np.frombuffer(edges, dtype=np.int64).reshape(-1, 4)
    return Data(
        x=torch.from_numpy(n[:, :2].copy()),
        function=torch.from_numpy(n[:, 2].copy()),
        edge_index=torch.from_numpy(e[:, :2].T.copy()),
        edge_attr=torch.from_numpy(e[:, 2:].copy()),
        num_nodes=len(n),
    )
