"""Reproducible ``.npz`` files: the same arrays give the same bytes on any machine."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from typing import Any

import numpy as np

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # zip members carry no real timestamps


def arrays_to_npz(source: Any, names: Iterable[str]) -> bytes:
    """The attributes ``names`` of ``source`` as uncompressed ``.npz`` bytes, in that order,
    with fixed member times (``np.savez`` stamps the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in names:
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_ZIP_TIME)
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, getattr(source, name), allow_pickle=False)
    return buf.getvalue()
