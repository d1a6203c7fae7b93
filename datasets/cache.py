"""Where OptGym keeps what it builds: ``$OPTGYM_CACHE``, else ``$XDG_CACHE_HOME/optgym``,
else ``~/.cache/optgym``. Nothing built ever goes into the installed package.

A cached file OptGym rebuilds when it is bad carries an integrity tag beside it
(:func:`optgym.integrity.write_tagged` and :func:`~optgym.integrity.read_tagged`). Cached
files are read with :func:`optgym.datasets.files.read_regular`, so none of them can block a
reader.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from optgym.datasets.files import write_file


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
