"""Where OptGym keeps what it builds: ``$OPTGYM_CACHE``, else ``$XDG_CACHE_HOME/optgym``,
else ``~/.cache/optgym``. Nothing built ever goes into the installed package."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

TAG_SUFFIX = ".tag"


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
    """Write ``data`` to ``path`` so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a shared cache is read by others
    os.replace(tmp, path)


def write_tagged(path: Path, data: bytes, purpose: str) -> None:
    """Write ``data`` to ``path`` (atomically) with its integrity tag beside it
    (``<path>.tag``), for :func:`read_tagged` to check."""
    from optgym import integrity

    write_atomic(path.with_name(path.name + TAG_SUFFIX), integrity.tag(data, purpose).encode())
    write_atomic(path, data)


def read_tagged(path: Path, purpose: str) -> bytes | None:
    """The bytes of the cached file ``path`` if its tag shows this installation wrote them;
    None when it is missing, or (with a warning naming the file) when it or its tag was
    changed, removed or planted: the caller rebuilds it."""
    from optgym import integrity

    tag_path = path.with_name(path.name + TAG_SUFFIX)
    if not path.exists() and not tag_path.exists():
        return None
    try:
        data = path.read_bytes()
        claimed = tag_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        data, claimed = b"", ""
    if path.is_file() and integrity.matches(data, purpose, claimed):
        return data
    warnings.warn(
        f"cached {purpose} {path} does not match its integrity tag (changed, or not written "
        "by this installation): rebuilding it",
        stacklevel=2,
    )
    return None
