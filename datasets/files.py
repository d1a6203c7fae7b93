"""Reading untrusted files: a size limit checked before reading, a nesting limit checked
before parsing. Messages name the file and the limit, never the contents.

Files are opened with :func:`open_regular`: never through a symbolic link where none is
expected, never blocking on a FIFO or a device, and only when what was opened is a regular
file. Files are written with :func:`write_file`: a temporary file made in the same folder,
then renamed over the destination, so a reader never sees half a file and a link at the
destination is replaced, never followed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

if TYPE_CHECKING:
    from optgym.datasets.dataset import Benchmark

# Read-only, no controlling terminal, no blocking open (a FIFO without a writer, a tty), no
# descriptor leaked into a child process.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def open_regular(path: str | Path, what: str, *, follow: bool = False) -> BinaryIO:
    """``path`` opened for reading in binary, once it is known to be a regular file.

    The file is opened without blocking (``O_NONBLOCK``: a FIFO or a device never waits for
    a writer) and, unless ``follow``, without following a symbolic link in its last part
    (``O_NOFOLLOW``); the open descriptor is then checked with ``fstat``, so what is read is
    what was checked. ``ValueError`` names ``what`` (e.g. "cached benchmark"), the path and
    why (missing, "a symbolic link, not a regular file", "not a regular file"), never the
    contents.
    """
    path = Path(path)
    flags = _READ_FLAGS | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow and path.is_symlink():
            raise ValueError(
                f"{what} {path} is a symbolic link, not a regular file; name the file itself"
            ) from None
        raise ValueError(f"cannot read {what} {path}: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(
                f"{what} {path} is not a regular file (a {file_kind(info.st_mode)}); "
                "only regular files are read"
            )
        # A regular file never blocks; reads then behave as usual.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_kind(mode: int) -> str:
    """What the file of ``st_mode`` ``mode`` is, in a word or two, for messages ("FIFO",
    "folder", "symbolic link", ...)."""
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISDIR, "folder"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISLNK, "symbolic link"),
                       (stat.S_ISREG, "regular file")):  # fmt: skip
        if test(mode):
            return name
    return "special file"


def read_regular(
    path: str | Path, what: str, limit: int | None = None, *, follow: bool = False
) -> bytes:
    """The bytes of the regular file ``path``, opened with :func:`open_regular` (no link
    followed unless ``follow``, never blocking); with a ``limit``, a file of more than
    ``limit`` bytes is refused before it is read. ``ValueError`` names ``what``, the path
    and what is wrong."""
    try:
        with open_regular(path, what, follow=follow) as f:
            size = os.fstat(f.fileno()).st_size
            if limit is not None and size > limit:
                raise ValueError(f"{what} {path} is {size} bytes; at most {limit} allowed")
            data = f.read() if limit is None else f.read(limit + 1)
    except OSError as e:
        raise ValueError(f"cannot read {what} {path}: {e.strerror}") from None
    if limit is not None and len(data) > limit:  # it grew after the check
        raise ValueError(f"{what} {path} is more than {limit} bytes; at most {limit} allowed")
    return data


def write_file(path: str | Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that a reader never sees half a file and nothing is
    written through a link.

    The bytes go to a new temporary file in the same folder (created with ``O_EXCL`` and
    ``O_NOFOLLOW``, so it is a fresh file of this process), which gets ``mode`` and is then
    renamed over ``path`` with ``os.replace``: a symbolic link, FIFO or other file at
    ``path`` is replaced, never followed or opened. The folder is made if missing.
    ``ValueError`` when ``path`` is a folder; ``OSError`` when the folder is not writable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:  # a name taken (by chance, or planted): draw another
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)  # on the descriptor: never on what the name holds now
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            raise ValueError(f"{path} is a folder; name a file to write") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_limited(source: Benchmark | str | Path, what: str, limit: int) -> bytes:
    """The bytes of ``source`` (a benchmark's file, checked against its recorded sha256, or
    a path), after checking without reading it that it is a regular file of at most
    ``limit`` bytes. A path is read with :func:`read_regular` (no link followed, never
    blocking on a FIFO or a device). ``ValueError`` names ``what`` (e.g. "map file"), the
    path and the limit, never the contents."""
    if isinstance(source, (str, Path)):
        return read_regular(source, what, limit)
    path = source.path
    try:
        info = path.stat()
    except OSError as e:
        raise ValueError(f"cannot read {what} {path}: {e.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what} {path} is not a regular file")
    if info.st_size > limit:
        raise ValueError(f"{what} {path} is {info.st_size} bytes; at most {limit} allowed")
    try:
        data = source.read_bytes()  # opened with open_regular too: it never blocks
    except OSError as e:
        raise ValueError(f"cannot read {what} {path}: {e.strerror}") from None
    if len(data) > limit:  # it grew after the check
        raise ValueError(f"{what} {path} is more than {limit} bytes; at most {limit} allowed")
    return data


def json_depth(data: bytes) -> int:
    """How deep ``[`` and ``{`` nest in JSON text, in linear time and without parsing:
    escapes are dropped, then brackets are counted outside strings."""
    text = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(text.split(b'"')[::2])  # the even pieces lie outside strings
    codes = np.frombuffer(outside, dtype=np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
    steps -= np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max()) if len(steps) else 0


def check_json_depth(data: bytes, what: str, limit: int) -> None:
    """``ValueError`` when the JSON text ``data`` (``what`` names it) nests lists and objects
    deeper than ``limit``: checked before parsing, so no depth reaches the parser."""
    depth = json_depth(data)
    if depth > limit:
        raise ValueError(
            f"{what} nests JSON lists and objects {depth} deep; at most {limit} allowed"
        )


def parse_json_object(data: bytes, what: str, depth: int) -> dict:
    """The JSON object in ``data`` (``what`` names it in messages): nesting checked before
    parsing; ``ValueError`` when it is not UTF-8 JSON or not an object, never quoting it."""
    import json

    check_json_depth(data, what, depth)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{what} is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def read_json_object(path: str | Path, what: str, limit: int, depth: int) -> dict:
    """The JSON object in the file ``path``, read with :func:`read_limited` and parsed
    with :func:`parse_json_object`."""
    return parse_json_object(read_limited(path, what, limit), f"{what} {path}", depth)
