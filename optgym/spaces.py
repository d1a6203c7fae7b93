"""Gymnasium spaces that OptGym's envs share beyond gymnasium's own."""

from __future__ import annotations

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


class MaskedMultiDiscrete(spaces.MultiDiscrete):
    """A ``MultiDiscrete`` whose ``sample()`` without a mask draws only values legal in the
    env's current state (``legal()`` gives one boolean vector per component), so a random
    policy written against gymnasium's API never takes a masked action. ``contains`` is
    the plain structural check; the env raises on masked values."""

    def __init__(
        self,
        nvec: np.ndarray,
        legal: Any = None,
        seed: int | np.random.Generator | None = None,
    ):
        super().__init__(nvec, seed=seed)
        self._legal = legal  # a callable () -> list of boolean arrays, or None

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        if mask is None and probability is None and self._legal is not None:
            legal = self._legal()
            if legal is not None:
                mask = tuple(np.asarray(m, dtype=np.int8) for m in legal)
        return super().sample(mask=mask, probability=probability)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_legal"] = None  # a saved space (e.g. in an sb3 model) is a plain MultiDiscrete
        return state

    def __deepcopy__(self, memo: dict) -> MaskedMultiDiscrete:
        new = MaskedMultiDiscrete(self.nvec.copy(), self._legal)
        new._np_random = self._np_random
        return new


def space_text(space: Any) -> str:
    """A space in one short line (``optgym envs``, the docs): a Box as
    ``Box(low..high, shape, dtype)`` (the bounds' range when they differ per element), a
    Dict item by item, anything else by its ``str`` cut to 300 characters."""
    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {space_text(v)}" for k, v in space.items()) + ")"
    if isinstance(space, spaces.Box):

        def bound(values: Any) -> str:
            lo, hi = values.min(), values.max()
            return f"{lo:g}" if lo == hi else f"[{lo:g}, {hi:g}]"

        return f"Box({bound(space.low)}..{bound(space.high)}, {space.shape}, {space.dtype})"
    text = str(space)
    return text if len(text) <= 300 else text[:297] + "..."
