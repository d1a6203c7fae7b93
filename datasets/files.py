"""Reading untrusted files: a size limit checked before reading, a nesting limit checked
before parsing. Messages name the file and the limit, never the contents."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np

from optgym.datasets.dataset import Benchmark


def read_limited(source: Benchmark | str | Path, what: str, limit: int) -> bytes:
    """The bytes of ``source`` (a benchmark's file, checked against its recorded sha256, or
    a path), after checking without reading it that it is a regular file of at most
    ``limit`` bytes. ``ValueError`` names ``what`` (e.g. "map file"), the path and the
    limit, never the contents."""
    path = source.path if isinstance(source, Benchmark) else Path(source)
    try:
        info = path.stat()
    except OSError as e:
        raise ValueError(f"cannot read {what} {path}: {e.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what} {path} is not a regular file")
    if info.st_size > limit:
        raise ValueError(f"{what} {path} is {info.st_size} bytes; at most {limit} allowed")
    try:
        if isinstance(source, Benchmark):
            data = source.read_bytes()
        else:
            with path.open("rb") as f:
                data = f.read(limit + 1)
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
