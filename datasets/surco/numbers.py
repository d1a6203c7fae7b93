"""The checks the SurCo instance files share (their keys, their numbers): what breaks them is
a one-line ``ValueError`` naming the field and what is allowed, never the file's contents."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: The largest number an instance file may hold (a mean, a size, a deadline...).
MAX_VALUE = 1e9


def checked_integer(value: Any, what: str, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``; ``ValueError`` naming ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an integer in [{lo}, {hi}]")
    if not lo <= value <= hi:
        raise ValueError(f"{what} is out of range; allowed: an integer in [{lo}, {hi}]")
    return int(value)


def checked_number(value: Any, what: str, negative: str) -> float:
    """``value`` as a finite float in ``[0, MAX_VALUE]``; ``ValueError`` naming ``what``
    otherwise (``negative`` says what is allowed for a negative one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float's range
        raise ValueError(f"{what} is too large; at most {MAX_VALUE:g} allowed") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{what} is not a finite number; allowed: finite numbers")
    if number < 0:
        raise ValueError(f"{what} is negative; {negative}")
    if number > MAX_VALUE:
        raise ValueError(f"{what} is too large; at most {MAX_VALUE:g} allowed")
    return number


def check_keys(obj: dict, kind: str, keys: Sequence[str], what: str) -> None:
    """``ValueError`` unless the parsed file ``obj`` (``what`` names it) says ``kind`` and
    holds exactly ``keys``."""
    if obj.get("kind") != kind:
        raise ValueError(f"{what}: 'kind' must be {kind!r}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ValueError(f"{what} lacks {', '.join(map(repr, missing))}; needed: "
                         f"{', '.join(keys)}")  # fmt: skip
    if len(obj) != len(keys):
        raise ValueError(f"{what} has {len(obj) - len(keys)} unknown key(s); allowed: "
                         f"{', '.join(keys)}")  # fmt: skip
