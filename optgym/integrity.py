"""Integrity tags: what this installation wrote, it can recognise later.

A tag is an HMAC-SHA256 of some bytes under a key that lives in the cache
(``<cache>/integrity.key``, made on first use with 32 random bytes, owner-only). Cached files
(benchmarks, initial incumbents, measurements, the native bridge) and the fields of a results
line that cannot be recomputed by a replay (wall times, budget used, measured traces) carry
one: a file edited or planted in the cache, or a line edited after the runner wrote it, no
longer matches. A line written by another installation does not match either: its replayed
fields are checked as always, its measured ones are not (``optgym validate`` says so).

``purpose`` separates tags made for different uses, so that a tag copied from one kind of
record never fits another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from functools import lru_cache
from pathlib import Path

KEY_NAME = "integrity.key"
KEY_BYTES = 32


def _load_key(root: Path) -> bytes:
    path = root / KEY_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise RuntimeError(
            f"{path} must be a regular file owned by this user and readable by no one else "
            "(mode 600); remove it and a new key is made (cached files are then rebuilt)"
        )
    from optgym.datasets.files import read_regular

    try:  # opened without following a link or blocking: what the lstat saw
        key = read_regular(path, "integrity key", KEY_BYTES + 1)
    except ValueError as e:
        raise RuntimeError(f"{e}; remove it and a new key is made") from None
    if len(key) != KEY_BYTES:
        raise RuntimeError(
            f"{path} holds {len(key)} bytes, a key is {KEY_BYTES}; remove it and a new key is "
            "made (cached files are then rebuilt)"
        )
    return key


@lru_cache(maxsize=8)
def _key_for(root: str) -> bytes:
    return _load_key(Path(root))


def key() -> bytes:
    """This installation's key (the cache's), made on first use."""
    from optgym.datasets.cache import cache_dir

    return _key_for(str(cache_dir().resolve()))


def tag(data: bytes, purpose: str) -> str:
    """The hex tag of ``data`` for ``purpose`` (e.g. ``"benchmark"``, ``"result-line"``)."""
    return hmac.new(key(), purpose.encode() + b"\0" + data, hashlib.sha256).hexdigest()


def matches(data: bytes, purpose: str, claimed: object) -> bool:
    """Whether ``claimed`` is the tag of ``data`` for ``purpose`` (any value is safe)."""
    return isinstance(claimed, str) and hmac.compare_digest(tag(data, purpose), claimed)
