"""The schedule env's own action space: a ``MultiDiscrete`` that samples only legal actions."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces


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
