"""Where OptGym keeps what it builds: ``$OPTGYM_CACHE``, else ``$XDG_CACHE_HOME/optgym``,
else ``~/.cache/optgym``. Nothing built ever goes into the installed package.

A cached file OptGym rebuilds when it is bad carries an integrity tag beside it
(``<file>.tag``, see :mod:`optgym.integrity`) that binds three things: the purpose (what
kind of file it is), the file's identity (its path relative to the cache root) and its
bytes. A file changed, planted, or copied with its tag from another place in the cache (the
benchmark of seed 2 over that of seed 1) does not match; nor does a FIFO, a device, a
symbolic link or a folder put where a file was: each is rebuilt, with a warning, and the
rebuilt file replaces it atomically. Cached files are read with
:func:`optgym.datasets.files.read_regular`, so none of them can block a reader.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import warnings
from pathlib import Path

from optgym.datasets.files import file_kind, read_regular, write_file

TAG_SUFFIX = ".tag"
#: The largest cached file :func:`read_tagged` reads (bytes); a larger one is rebuilt.
MAX_CACHED_BYTES = 1 << 30
_MAX_TAG_BYTES = 1024


def cache_dir() -> Path:
    """The cache root, created on first use."""
    root = os.environ.get("OPTGYM_CACHE")
    if root:
        path = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".cache") / "optgym"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RuntimeError(
            f"cannot use {path} as the cache ({e.strerror}); set OPTGYM_CACHE to a writable folder"
        ) from None
    if not path.is_dir():
        raise RuntimeError(f"the cache {path} is not a folder; set OPTGYM_CACHE to a folder")
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write the cached file ``path`` with :func:`optgym.datasets.files.write_file` (a
    temporary file renamed over it: a reader never sees half a file, a link there is
    replaced, never followed), after removing a folder planted at ``path``."""
    clear_planted_folder(path)
    write_file(path, data)


def clear_planted_folder(path: Path) -> None:
    """Remove a folder (not a link to one) at ``path``, where the cache keeps a file, so
    that the file can be renamed over it; anything else there is left for the rename to
    replace. Only for paths in the cache: the folder's contents are lost."""
    try:
        info = path.lstat()
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)  # never follows a link inside it


def cache_identity(path: Path) -> str:
    """What a cached file stands for, as its tag binds it: its path relative to the cache
    root (POSIX separators), or its absolute path when it lies outside the cache."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(os.path.abspath(cache_dir())).as_posix()
    except ValueError:
        return absolute.as_posix()


def _bound_purpose(purpose: str, identity: str) -> str:
    # JSON has no raw NUL, so the HMAC's purpose/data separator stays unambiguous.
    return json.dumps([purpose, identity], ensure_ascii=True, separators=(",", ":"))


def cache_tag(path: Path, data: bytes, purpose: str, identity: str | None = None) -> str:
    """The integrity tag of ``data`` as the cached file ``path`` for ``purpose``: it binds
    the purpose, the identity (default :func:`cache_identity` of ``path``) and the bytes."""
    from optgym import integrity

    bound = _bound_purpose(purpose, cache_identity(path) if identity is None else identity)
    return integrity.tag(data, bound)


def cache_tag_matches(
    path: Path, data: bytes, purpose: str, claimed: object, identity: str | None = None
) -> bool:
    """Whether ``claimed`` is :func:`cache_tag` of ``data`` at ``path`` (any value is safe)."""
    from optgym import integrity

    bound = _bound_purpose(purpose, cache_identity(path) if identity is None else identity)
    return integrity.matches(data, bound, claimed)


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
