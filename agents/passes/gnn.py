"""The features extractor for the ``Programl`` observation of ``optgym/PassOrdering-v0``,
on the shared graph layers of :mod:`optgym.agents.gnn`.

Node features are two category ids, ``kind`` (0 instruction, 1 variable, 2 constant;
:data:`NODE_KINDS`) and ``text`` (an instruction's opcode index in ``INSTCOUNT_NAMES[3:]``
order, or a variable's or constant's LLVM type kind; below :data:`NODE_TEXTS`). Edge
features are ``flow`` (0 control, 1 data, 2 call; :data:`EDGE_FLOWS`) and the operand
``position``, clipped to ``EDGE_POSITIONS - 1``. Ids outside these ranges are clipped into
them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from optgym.agents.gnn import GraphExtractor, both_directions, category_ids, trimmed
from optgym.wrappers.graph import to_batch

__all__ = ["EDGE_FLOWS", "EDGE_POSITIONS", "NODE_KINDS", "NODE_TEXTS", "ProgramlExtractor"]

#: Programl node kinds: 0 instruction, 1 variable, 2 constant.
NODE_KINDS = 3
#: Programl node texts: 67 opcodes (``INSTCOUNT_NAMES[3:]``); type kinds are below this too.
NODE_TEXTS = 67
#: Programl edge flows: 0 control, 1 data, 2 call.
EDGE_FLOWS = 3
#: Programl operand positions embedded; larger positions are clipped to ``EDGE_POSITIONS - 1``.
EDGE_POSITIONS = 16


class ProgramlExtractor(GraphExtractor):
    """Features extractor for the padded ``Programl`` graph of ``optgym/PassOrdering-v0``.

    Node embedding: ``kind`` embedding plus an embedding of the ``(kind, text)`` pair (so
    opcodes and type kinds do not share rows); edge embedding: ``flow`` plus ``position``
    (clipped to ``EDGE_POSITIONS - 1``) plus the direction (messages go both ways). Then
    ``layers`` rounds of ``GINEConv`` (sum aggregation), mean and max pooling per graph, the
    other entries of the observation (if any), and ``Linear`` + ``ReLU`` to ``features_dim``.
    """

    aggr: ClassVar[str] = "add"

    def _embeddings(self, node_features: int, edge_features: int) -> None:
        if node_features < 2 or edge_features < 2:
            raise ValueError(
                "ProgramlExtractor needs 2 node features (kind, text) and 2 edge features "
                f"(flow, position), got {node_features} and {edge_features}"
            )
        hidden = self.hidden
        self.kind = nn.Embedding(NODE_KINDS, hidden)
        self.text = nn.Embedding(NODE_KINDS * NODE_TEXTS, hidden)
        self.flow = nn.Embedding(EDGE_FLOWS, hidden)
        self.position = nn.Embedding(EDGE_POSITIONS, hidden)
        self.direction = nn.Embedding(2, hidden)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(batch, features_dim)`` features of a batch of padded Programl observations."""
        data = to_batch(trimmed(observations))
        return self._head(self.pooled(data), observations)

    def pooled(self, data: Any) -> torch.Tensor:
        """``(num_graphs, 2 * hidden)``: the mean and max node embeddings of each graph of a
        torch-geometric batch (``x``, ``edge_index``, ``edge_attr``, ``batch``,
        ``num_graphs``), as the env's ``Programl`` observations give them, unpadded."""
        kind = category_ids(data.x[:, 0], NODE_KINDS)
        text = category_ids(data.x[:, 1], NODE_TEXTS)
        h = self.kind(kind) + self.text(kind * NODE_TEXTS + text)
        # flow + position + direction embeddings, summed once per combination (96 rows)
        # and looked up once per edge
        table = (
            self.flow.weight[:, None, None]
            + self.position.weight[None, :, None]
            + self.direction.weight[None, None, :]
        ).reshape(-1, self.hidden)
        pair = category_ids(data.edge_attr[:, 0], EDGE_FLOWS) * EDGE_POSITIONS + category_ids(
            data.edge_attr[:, 1], EDGE_POSITIONS
        )
        edge_attr = nn.functional.embedding(torch.cat([2 * pair, 2 * pair + 1]), table)
        h = self.message_passing(h, both_directions(data.edge_index), edge_attr)
        return self._pool(h, data.batch, data.num_graphs)
