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

A cached file OptGym rebuilds when it is bad (:func:`write_tagged`, :func:`read_tagged`)
carries its tag beside it (``<file>.tag``), which binds three things: the purpose (what kind
of file it is), the file's identity (its path relative to the cache root,
:func:`optgym.datasets.cache.cache_identity`) and its bytes. A file changed, planted, or
copied with its tag from another place in the cache (the benchmark of seed 2 over that of
seed 1) does not match; nor does a FIFO, a device, a symbolic link or a folder put where a
file was: each is rebuilt, with a warning, and the rebuilt file replaces it atomically.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import warnings
from functools import lru_cache
from pathlib import Path

from optgym.datasets.cache import cache_dir, cache_identity, write_atomic
from optgym.datasets.files import file_kind, read_regular

KEY_NAME = "integrity.key"
KEY_BYTES = 32
TAG_SUFFIX = ".tag"
#: The largest cached file :func:`read_tagged` reads (bytes); a larger one is rebuilt.
MAX_CACHED_BYTES = 1 << 30
_MAX_TAG_BYTES = 1024


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
    return _key_for(str(cache_dir().resolve()))


def tag(data: bytes, purpose: str) -> str:
    """The hex tag of ``data`` for ``purpose`` (e.g. ``"benchmark"``, ``"result-line"``)."""
    return hmac.new(key(), purpose.encode() + b"\0" + data, hashlib.sha256).hexdigest()


def matches(data: bytes, purpose: str, claimed: object) -> bool:
    """Whether ``claimed`` is the tag of ``data`` for ``purpose`` (any value is safe)."""
    return isinstance(claimed, str) and hmac.compare_digest(tag(data, purpose), claimed)


def _bound_purpose(purpose: str, identity: str) -> str:
    # JSON has no raw NUL, so the HMAC's purpose/data separator stays unambiguous.
    return json.dumps([purpose, identity], ensure_ascii=True, separators=(",", ":"))


def cache_tag(path: Path, data: bytes, purpose: str, identity: str | None = None) -> str:
    """The integrity tag of ``data`` as the cached file ``path`` for ``purpose``: it binds
    the purpose, the identity (default :func:`cache_identity` of ``path``) and the bytes."""
    bound = _bound_purpose(purpose, cache_identity(path) if identity is None else identity)
    return tag(data, bound)


def cache_tag_matches(
    path: Path, data: bytes, purpose: str, claimed: object, identity: str | None = None
) -> bool:
    """Whether ``claimed`` is :func:`cache_tag` of ``data`` at ``path`` (any value is safe)."""
    bound = _bound_purpose(purpose, cache_identity(path) if identity is None else identity)
    return matches(data, bound, claimed)


def tag_path(path: Path) -> Path:
    """Where the tag of the cached file ``path`` is kept: ``<path>.tag``."""
    return path.with_name(path.name + TAG_SUFFIX)


def read_tag(path: Path) -> str:
    """The tag kept beside the cached file ``path`` (read without following a link or
    blocking); ``ValueError`` when it is missing, not a regular file, too long or not
    ASCII."""
    raw = read_regular(tag_path(path), "integrity tag", _MAX_TAG_BYTES)
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError(f"integrity tag {tag_path(path)} is not ASCII") from None


def write_tagged(path: Path, data: bytes, purpose: str, identity: str | None = None) -> None:
    """Write ``data`` to ``path`` (atomically, replacing whatever is there) with its
    integrity tag beside it (``<path>.tag``), for :func:`read_tagged` to check."""
    write_atomic(tag_path(path), cache_tag(path, data, purpose, identity).encode())
    write_atomic(path, data)


def read_tagged(
    path: Path, purpose: str, identity: str | None = None, limit: int = MAX_CACHED_BYTES
) -> bytes | None:
    """The bytes of the cached file ``path`` if its tag shows this installation wrote them
    there for ``purpose`` (``identity``: what the file stands for, default its path in the
    cache); None when it is missing, or (with a warning naming the file) when it or its tag
    was changed, removed, planted or copied from elsewhere, is not a regular file (a FIFO,
    a device, a link or a folder: never opened in a way that blocks or follows) or is over
    ``limit`` bytes: the caller rebuilds it and :func:`write_tagged` replaces it."""
    if not os.path.lexists(path) and not os.path.lexists(tag_path(path)):
        return None
    try:
        data = read_regular(path, f"cached {purpose}", limit)
        claimed = read_tag(path)
    except ValueError:
        data, claimed = None, ""
    if data is not None and cache_tag_matches(path, data, purpose, claimed, identity):
        return data
    why = "changed, or not written there by this installation"
    for each in (path, tag_path(path)):
        try:
            mode = each.lstat().st_mode
        except OSError:
            continue
        if not stat.S_ISREG(mode):
            why = f"{each.name} is a {file_kind(mode)}, not a regular file"
            break
    warnings.warn(
        f"cached {purpose} {path} does not match its integrity tag ({why}): rebuilding it",
        stacklevel=2,
    )
    return None
