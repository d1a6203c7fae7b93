"""Reproducible ``.npz`` files, and a guarded reader for task files that may be hostile.

:func:`arrays_to_npz` writes arrays so that the same arrays give the same bytes on any
machine. :func:`read_npz` reads a task file that anyone may have written (``file://`` URIs):
it checks the file size, the zip directory and every member's declared uncompressed size
against :data:`LIMITS` before inflating anything, parses each ``.npy`` header itself (no
pickles, no object or structured dtypes, a shape whose byte count matches the member) and
turns every failure into a ``ValueError`` that names the path, the array and the limit,
never the bytes of the file. :func:`check_array` and its helpers validate arrays by name.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from optgym.datasets.dataset import Benchmark
from optgym.datasets.files import read_limited

T = TypeVar("T")

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # zip members carry no real timestamps
MAX_HEADER_BYTES = 4096  # an .npy header of a plain array is about 128 bytes


@dataclass(frozen=True)
class NpzLimits:
    """Limits on a task file, checked before anything is inflated (bytes)."""

    file_bytes: int = 32 * 2**20
    """The ``.npz`` file itself."""
    array_bytes: int = 32 * 2**20
    """One array, uncompressed, as its zip entry declares it."""
    total_bytes: int = 64 * 2**20
    """Every array together, uncompressed."""
    members: int = 32
    """Arrays in the file."""
    directory_bytes: int = 64 * 2**10
    """The zip's central directory (bounds the work of listing the members)."""


LIMITS = NpzLimits()


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


# Errors a damaged zip raises from zipfile, zlib or struct: each becomes a ValueError.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    KeyError,
    IndexError,
)


def _source_path(source: Benchmark | str | Path) -> Path:
    return source.path if isinstance(source, Benchmark) else Path(source)


def read_file_bytes(source: Benchmark | str | Path, what: str, limit: int) -> bytes:
    """The bytes of a task file (:func:`optgym.datasets.dataset.read_limited`)."""
    return read_limited(source, what, limit)


def _member_label(filename: str) -> str:
    """How an error names a zip member: its array name when it looks like one (a name, not
    content), else a neutral phrase."""
    stem = filename[:-4] if filename.endswith(".npy") else filename
    if 0 < len(stem) <= 40 and stem.isascii() and stem.replace("_", "").isalnum():
        return repr(stem)
    return "with a name that is not an array name"


def open_zip(data: bytes, where: str, limits: NpzLimits) -> zipfile.ZipFile:
    """The zip archive of ``data``, its central directory checked against the limits
    before ``zipfile`` lists it."""
    bad = f"{where} is not a readable .npz file (a corrupt, truncated or non-zip file)"
    end_record = getattr(zipfile, "_EndRecData", None)  # the record ZipFile will read
    if end_record is not None:
        try:
            end = end_record(io.BytesIO(data))
        except _ZIP_ERRORS:
            raise ValueError(bad) from None
        if end is None:
            raise ValueError(bad)
        size = end[getattr(zipfile, "_ECD_SIZE", 5)]
        if size > limits.directory_bytes:
            raise ValueError(
                f"{where}: its zip directory is {size} bytes; at most "
                f"{limits.directory_bytes} allowed (at most {limits.members} arrays)"
            )
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS:
        raise ValueError(bad) from None


def _parse_npy(raw: bytes, name: str, where: str) -> np.ndarray:
    """The array of one ``.npy`` member, its header checked before any data is read."""
    fp = io.BytesIO(raw)
    bad = f"{where}: array {name!r} is not a valid .npy array (bad header)"
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(fp, MAX_HEADER_BYTES)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(fp, MAX_HEADER_BYTES)
        else:
            header = None
    except Exception:  # the header is a Python literal; any failure means a bad header
        raise ValueError(bad) from None
    if header is None:
        raise ValueError(
            f"{where}: array {name!r} has .npy format version {version}; allowed: 1.0, 2.0"
        )
    shape, fortran, dtype = header
    if dtype.hasobject:
        raise ValueError(
            f"{where}: array {name!r} holds Python objects (a pickle); only plain numeric and "
            "boolean arrays are allowed"
        )
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in "biuf":
        raise ValueError(
            f"{where}: array {name!r} has dtype {dtype}; allowed: plain boolean, integer or "
            "float arrays"
        )
    count = math.prod(shape)  # exact: Python integers
    expected = count * dtype.itemsize
    present = len(raw) - fp.tell()
    if expected != present:
        raise ValueError(
            f"{where}: array {name!r} declares shape {shape} of {dtype} ({expected} bytes) "
            f"but holds {present} bytes of data"
        )
    flat = np.frombuffer(raw, dtype=dtype, count=count, offset=fp.tell())
    arr = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    if dtype.kind == "b" and arr.size and int(arr.view(np.uint8).max()) > 1:
        raise ValueError(f"{where}: boolean array {name!r} holds bytes other than 0 and 1")
    # a writable, native-order copy (torch.from_numpy needs both)
    return np.array(arr, dtype=dtype.newbyteorder("="), order="C", copy=True)


def read_npz(
    source: Benchmark | str | Path,
    what: str,
    allowed: Collection[str],
    limits: NpzLimits = LIMITS,
) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` task file (``what`` names the kind in errors). Every member
    must be ``<name>.npy`` with ``name`` in ``allowed``, once; the file, the directory and
    each member's declared size are checked against ``limits`` before inflating it.
    ``ValueError`` naming the path, the array and the limit for anything else."""
    where = f"{what} {_source_path(source)}"
    data = read_file_bytes(source, what, limits.file_bytes)
    zf = open_zip(data, where, limits)
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.members:
            raise ValueError(f"{where} has {len(infos)} members; at most {limits.members} allowed")
        members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            stem = info.filename[:-4] if info.filename.endswith(".npy") else None
            if stem is None or stem not in allowed:
                raise ValueError(
                    f"{where} has a member {_member_label(info.filename)} that is not one of "
                    f"its arrays; allowed: {', '.join(allowed)} (each as <name>.npy)"
                )
            if stem in members:
                raise ValueError(f"{where} holds array {stem!r} twice")
            if info.flag_bits & 0x1:
                raise ValueError(f"{where}: array {stem!r} is encrypted; plain npz files only")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ValueError(
                    f"{where}: array {stem!r} uses zip compression method "
                    f"{info.compress_type}; allowed: stored (np.savez) or deflated "
                    "(np.savez_compressed)"
                )
            if info.file_size > limits.array_bytes:
                raise ValueError(
                    f"{where}: array {stem!r} inflates to {info.file_size} bytes; at most "
                    f"{limits.array_bytes} allowed per array"
                )
            total += info.file_size
            if total > limits.total_bytes:
                raise ValueError(
                    f"{where}: its arrays inflate to more than {limits.total_bytes} bytes in "
                    "all, the most allowed"
                )
            members[stem] = info
        arrays: dict[str, np.ndarray] = {}
        for stem, info in members.items():
            try:
                with zf.open(info) as f:
                    raw = f.read(info.file_size + 1)  # zipfile stops at the declared size
            except _ZIP_ERRORS:
                raise ValueError(
                    f"{where}: array {stem!r} is corrupt or truncated in the zip archive"
                ) from None
            if len(raw) != info.file_size:
                raise ValueError(f"{where}: array {stem!r} is truncated in the zip archive")
            arrays[stem] = _parse_npy(raw, stem, where)
    return arrays


def read_task(
    source: Benchmark | str | Path,
    what: str,
    allowed: Collection[str],
    build: Callable[[dict[str, np.ndarray], str], T],
) -> T:
    """The task a file (a benchmark or a path) holds: its arrays read by :func:`read_npz`
    and checked by ``build(arrays, where)`` (``where`` names the kind and the path);
    ``ValueError`` naming the bad array."""
    return build(read_npz(source, what, allowed), f"{what} {_source_path(source)}")


# ---- validation of arrays by name ---------------------------------------------------------------

KIND_NAMES = {"b": "boolean", "i": "integer", "u": "integer", "f": "float"}


def require_arrays(
    arrays: dict[str, np.ndarray], names: Iterable[str], where: str, only: str | None = None
) -> None:
    """``ValueError`` listing the arrays of ``names`` that ``arrays`` lacks, and (when
    ``only`` names the kind of file, e.g. "a digits task") those it has beyond them."""
    names = list(names)
    missing = [a for a in names if a not in arrays]
    if missing:
        kind = f" ({only})" if only else ""
        raise ValueError(
            f"{where}{kind} lacks the arrays {', '.join(missing)}; required: {', '.join(names)}"
        )
    extra = sorted(set(arrays) - set(names)) if only else []
    if extra:
        raise ValueError(f"{where} has arrays {', '.join(extra)} that {only} has not")


def _shape_text(shape: tuple[int | None, ...]) -> str:
    parts = ["n" if s is None else str(s) for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def check_array(
    arrays: dict[str, np.ndarray],
    name: str,
    where: str,
    kinds: str,
    shape: tuple[int | None, ...],
) -> np.ndarray:
    """``arrays[name]`` after checking its dtype kind (``"f"``, ``"iu"``, ``"b"``...) and
    its shape (``None``: any length there); ``ValueError`` naming the array and what is
    allowed."""
    a = arrays[name]
    allowed = " or ".join(dict.fromkeys(KIND_NAMES[k] for k in kinds))
    want = f"{allowed} of shape {_shape_text(shape)}"
    if a.dtype.kind not in kinds:
        raise ValueError(f"{where}: array {name!r} has dtype {a.dtype}; allowed: {want}")
    fits = a.ndim == len(shape) and all(
        s is None or s == n for s, n in zip(shape, a.shape, strict=False)
    )
    if not fits:
        raise ValueError(f"{where}: array {name!r} has shape {a.shape}; allowed: {want}")
    return a


def check_rows(
    arrays: dict[str, np.ndarray], names: Iterable[str], where: str, split: str, most: int
) -> int:
    """The common length of ``names`` (the arrays of one split): ``ValueError`` when they
    differ, when the split is empty or when it has more than ``most`` rows."""
    names = list(names)
    n = len(arrays[names[0]])
    for other in names[1:]:
        if len(arrays[other]) != n:
            raise ValueError(
                f"{where}: arrays {names[0]!r} and {other!r} must have the same number of "
                f"rows (one per {split} example); got {n} and {len(arrays[other])}"
            )
    if n == 0:
        raise ValueError(
            f"{where}: the {split} split is empty (array {names[0]!r} has 0 rows); it needs "
            f"1 to {most}"
        )
    if n > most:
        raise ValueError(
            f"{where}: the {split} split has {n} rows (array {names[0]!r}); at most {most} allowed"
        )
    return n


def check_range(
    arrays: dict[str, np.ndarray], name: str, where: str, low: float, high: float, what: str
) -> None:
    """``ValueError`` when ``arrays[name]`` has a NaN, an inf or a value outside ``[low,
    high]``, naming how many and the first index (never the value)."""
    a = arrays[name]
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            _raise_at(
                bad,
                f"{where}: array {name!r} has {_count(bad, 'non-finite value')} (NaN or inf)",
                what,
            )
    bad = (a < low) | (a > high)
    if bad.any():
        _raise_at(bad, f"{where}: array {name!r} has {_count(bad, 'value')} out of range", what)


def _count(bad: np.ndarray, noun: str) -> str:
    n = int(bad.sum())
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _raise_at(bad: np.ndarray, message: str, what: str) -> None:
    first = np.argwhere(bad)[0]
    at = int(first[0]) if len(first) == 1 else tuple(int(i) for i in first)
    raise ValueError(f"{message}, the first at index {at}; allowed: {what}")
