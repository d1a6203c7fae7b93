"""A leaderboard submission: the runner's result lines plus a manifest, and its id.

A submission is a folder, or a ``.tar``/``.tar.gz``/``.tgz``/``.zip`` archive of one, that
holds two files:

* ``results.jsonl``: the lines ``optgym bench`` wrote (:mod:`optgym.result_line`), one per
  episode of the task's leaderboard test set and seed;
* ``manifest.json``: who made the entry and how (:data:`MANIFEST_FIELDS`), checked field by
  field by :func:`manifest_problems`.

Its id is the SHA-256 of its canonical content (:func:`submission_id`): the manifest and the
lines as JSON with sorted keys, lines without their integrity tag and in sorted order, so
the same entry has the same id wherever it was packed. Archives are read in memory: only the
two files are taken (at the top or under one folder), links, devices, absolute or ``..``
names and oversized members are refused, nothing is written to disk. What an archive may
unpack to is capped before the work is done (:data:`MAX_UNPACKED_BYTES`: its members'
declared sizes, and every byte read out of its decompressed stream), a tar is plain or
gzip-compressed only, and a results file of more than
:data:`~optgym.state.MAX_RESULT_LINES` lines is refused before any line is parsed.

>>> sub = load_submission(Path("leaderboard/board/entries/path-planning/<id>"))
>>> sub.id, sub.manifest["agent"]
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from optgym.datasets.files import check_json_depth, read_limited
from optgym.result_line import TAG_FIELD
from optgym.state import MAX_RESULT_LINES
from optgym.text import hidden

#: The manifest's schema version.
SCHEMA_VERSION = 1
MANIFEST, RESULTS, VERIFICATION = "manifest.json", "results.jsonl", "verification.json"
#: A closed-track entry's attestation by the board's verifier (see :mod:`.verify`).
ATTESTATION = "attestation.json"
#: Seeds a stochastic agent needs on every benchmark.
MIN_SEEDS = 3
TRACKS = ("open", "closed")
TRAINING_SPLITS = ("train", "validation")
MAX_MANIFEST_BYTES = 64 * 1024
MAX_RESULTS_BYTES = 256 * 1024**2
#: The code a submission ships (``code/``: its plug-in modules, weights): files and bytes.
MAX_CODE_FILES = 256
MAX_CODE_BYTES = 64 * 1024**2
CODE = "code"
#: The most bytes an archive file may have on disk.
MAX_ARCHIVE_BYTES = MAX_RESULTS_BYTES + MAX_MANIFEST_BYTES + MAX_CODE_BYTES + 1024**2
#: The most bytes an archive may unpack to (321 MiB: the two files and the code at their
#: limits, plus 1 MiB for headers and small extra files). Checked twice, each before the
#: work is done: on the sum of its members' declared sizes, and on the bytes read (or
#: skipped) out of its decompressed stream, headers included, so a small archive never
#: costs gigabytes of decompression or memory.
MAX_UNPACKED_BYTES = MAX_RESULTS_BYTES + MAX_MANIFEST_BYTES + MAX_CODE_BYTES + 1024**2
MAX_ARCHIVE_MEMBERS = 64 + 2 * MAX_CODE_FILES
MAX_JSON_DEPTH = 8
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
# the files a submission holds besides its code
_FILES = (MANIFEST, RESULTS, ATTESTATION)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{7,64}")
_LICENSE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,63}")
_URL = re.compile(r"https?://[^\s<>\"'`]{1,500}")
_VERSION = re.compile(r"[0-9A-Za-z.+-]{1,32}")
_DATASET = re.compile(r"(benchmark|generator)://[a-z0-9][a-z0-9_.-]{0,60}-v[0-9]{1,4}")
_CLASS = re.compile(r"[A-Za-z0-9_./+-]{1,80}")

#: Unicode categories no manifest text may hold: controls (Cc), format characters such as
#: bidi overrides and zero-width spaces (Cf), private use (Co), surrogates (Cs) and line
#: and paragraph separators (Zl, Zp); they would hide or reorder what a reader sees.
_VISIBLE = (
    "no control, format (bidi, zero-width), private-use, surrogate or separator "
    "characters (Unicode categories Cc, Cf, Co, Cs, Zl, Zp)"
)

#: Every manifest field: (what it holds, required).
MANIFEST_FIELDS: dict[str, tuple[str, bool]] = {
    "schema_version": (f"the integer {SCHEMA_VERSION}", True),
    "task": ("the leaderboard task (optgym tasks)", True),
    "name": ("the entry's display name, 1-80 visible characters", True),
    "agent": ("the agent spec exactly as the result lines write it", True),
    "stochastic": ("true when the agent's result depends on its seed", True),
    "authors": ("a list of 1-20 names, each 1-200 visible characters", True),
    "code": ('{"url": an http(s) URL or "", "commit": a hex commit or ""}', True),
    "training_data": (
        'a list of {"dataset": URI, "split": "train" or "validation"} or '
        '{"benchmark": URI} (never the test split)',
        True,
    ),
    "versions": (
        '{"optgym": the version the lines were run with, "datasets": the dataset URIs '
        "(with their -vN versions) of the benchmarks the lines cover}",
        True,
    ),
    "license": ("an SPDX license id for the entry's code and weights", True),
    "track": ('"open" (self-run, replayed) or "closed" (run by the verifier)', True),
    "round": ("the hidden round's name on the closed track, else null", False),
    "hardware": (
        '{"class": hardware class, "calibration": number, "fingerprint": {...}} from '
        "optgym calibrate (required for tasks ranked within a hardware class), or null",
        False,
    ),
    "weights_sha256": ("sha256 of the weights file the agent loaded, or null", False),
    "code_files": (
        f"the files the submission ships under {CODE}/ (plug-in modules, weights), each "
        f"path (letters, digits, _.- and /) with its sha256; at most {MAX_CODE_FILES}",
        False,
    ),
    "description": ("free text, at most 2000 visible characters and newlines", False),
}


def _text(value: Any, most: int, least: int = 1, allow: str = "") -> bool:
    """A string of ``least``..``most`` characters, none hidden (:mod:`optgym.text`: controls,
    bidirectional overrides, zero-width characters) but those in ``allow``."""
    return (
        isinstance(value, str)
        and least <= len(value) <= most
        and all(c in allow or not hidden(c) for c in value)
    )


def _check_code(value: Any) -> str | None:
    if not isinstance(value, dict) or set(value) != {"url", "commit"}:
        return 'must be {"url": ..., "commit": ...}'
    if value["url"] != "" and not (isinstance(value["url"], str) and _URL.fullmatch(value["url"])):
        return 'url must be an http(s) URL without spaces or quotes, or ""'
    if value["commit"] != "" and not (
        isinstance(value["commit"], str) and _COMMIT.fullmatch(value["commit"])
    ):
        return 'commit must be 7-64 lowercase hex digits, or ""'
    return None


def _check_training_item(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "each item must be an object"
    if set(item) == {"benchmark"}:
        return None if _text(item["benchmark"], 500) else "benchmark must be a URI"
    if set(item) == {"dataset", "split"}:
        if not _text(item["dataset"], 200):
            return "dataset must be a dataset URI"
        if item["split"] not in TRAINING_SPLITS:
            return f"split must be one of {', '.join(TRAINING_SPLITS)} (never test)"
        return None
    return 'each item is {"dataset": URI, "split": ...} or {"benchmark": URI}'


def _check_hardware(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"class", "calibration", "fingerprint"}:
        return 'must be {"class", "calibration", "fingerprint"} (optgym calibrate --json) or null'
    if not (isinstance(value["class"], str) and _CLASS.fullmatch(value["class"])):
        return "class must be 1-80 characters of letters, digits and ./+-_"
    calibration = value["calibration"]
    if isinstance(calibration, bool) or not isinstance(calibration, (int, float)):
        return "calibration must be a number"
    if not 0 < calibration < 1e6:
        return "calibration must be in (0, 1e6)"
    fingerprint = value["fingerprint"]
    if not isinstance(fingerprint, dict) or len(fingerprint) > 16:
        return "fingerprint must be an object of at most 16 fields"
    for k, v in fingerprint.items():
        if not _text(k, 40) or not (_text(v, 200, 0) or isinstance(v, int)):
            return "fingerprint fields must be short names with short text or integer values"
    return None


def _check_versions(value: Any) -> str | None:
    if not isinstance(value, dict) or set(value) != {"optgym", "datasets"}:
        return 'must be {"optgym": version, "datasets": [dataset URIs]}'
    if not (isinstance(value["optgym"], str) and _VERSION.fullmatch(value["optgym"])):
        return "optgym must be a version such as 0.1.0"
    datasets = value["datasets"]
    if not isinstance(datasets, list) or not 1 <= len(datasets) <= 64:
        return "datasets must be a list of 1-64 dataset URIs"
    if not all(isinstance(d, str) and _DATASET.fullmatch(d) for d in datasets):
        return "datasets must be URIs such as generator://csmith-v0"
    return None


def _field_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is wrong for the manifest field ``name``, or None."""
    if name == "schema_version":
        ok = value == SCHEMA_VERSION and isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"must be {SCHEMA_VERSION}"
    if name in ("task", "agent"):
        return None if _text(value, 500) else f"must be a string of 1-500 characters, {_VISIBLE}"
    if name == "name":
        return None if _text(value, 80) else f"must be 1-80 characters, {_VISIBLE}"
    if name == "stochastic":
        return None if isinstance(value, bool) else "must be true or false"
    if name == "authors":
        ok = isinstance(value, list) and 1 <= len(value) <= 20
        if ok and all(_text(a, 200) for a in value):
            return None
        return f"must be a list of 1-20 names of 1-200 characters, {_VISIBLE}"
    if name == "code":
        return _check_code(value)
    if name == "training_data":
        if not isinstance(value, list) or len(value) > 1000:
            return "must be a list of at most 1000 items"
        return next((w for w in map(_check_training_item, value) if w), None)
    if name == "versions":
        return _check_versions(value)
    if name == "license":
        ok = isinstance(value, str) and _LICENSE.fullmatch(value)
        return None if ok else "must be an SPDX id such as MIT or Apache-2.0"
    if name == "track":
        return None if value in TRACKS else f"must be one of {', '.join(TRACKS)}"
    if name == "round":
        ok = value is None or (isinstance(value, str) and _CLASS.fullmatch(value))
        return None if ok else "must be null or a round name (letters, digits, ./+-_)"
    if name == "hardware":
        return _check_hardware(value)
    if name == "weights_sha256":
        ok = value is None or (isinstance(value, str) and _HEX64.fullmatch(value))
        return None if ok else "must be null or 64 lowercase hex digits"
    if name == "code_files":
        ok = isinstance(value, dict) and len(value) <= MAX_CODE_FILES and all(
            isinstance(k, str) and code_path_problem(k) is None
            and isinstance(v, str) and _HEX64.fullmatch(v) for k, v in value.items()
        )  # fmt: skip
        return None if ok else f"must map at most {MAX_CODE_FILES} relative paths to sha256s"
    if name == "description":
        if _text(value, 2000, 0, allow="\n"):
            return None
        return f"must be at most 2000 characters, {_VISIBLE} but newline"
    return "is not a manifest field"


def manifest_problems(manifest: Any) -> list[str]:
    """What is wrong with the manifest's form, one message a field (never quoting a
    value); empty when it is well formed."""
    from optgym.result_line import names

    if not isinstance(manifest, dict):
        return ["the manifest must be a JSON object"]
    out = []
    missing = [k for k, (_, required) in MANIFEST_FIELDS.items() if required and k not in manifest]
    if missing:
        out.append(f"manifest lacks {', '.join(missing)}")
    unknown = [k for k in manifest if k not in MANIFEST_FIELDS]
    if unknown:
        out.append(f"manifest has unknown fields: {names(unknown)}; allowed: "
                   f"{', '.join(MANIFEST_FIELDS)}")  # fmt: skip
    for key, value in manifest.items():
        if key in MANIFEST_FIELDS:
            why = _field_problem(key, value)
            if why:
                out.append(f"manifest {key} {why} ({MANIFEST_FIELDS[key][0]})")
    if not out and (manifest["track"] == "closed") != (manifest.get("round") is not None):
        out.append("manifest round is given exactly when the track is closed")
    return out


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def submission_id(manifest: dict[str, Any], results: bytes) -> str:
    """The SHA-256 of the submission's canonical content: the manifest, then every results
    line (parsed, without its tag; a line that does not parse as its raw bytes) in sorted
    order, as JSON with sorted keys."""
    lines = []
    for raw in results.splitlines():
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except (ValueError, RecursionError):
            lines.append(b"raw:" + hashlib.sha256(raw).hexdigest().encode())
            continue
        if isinstance(row, dict):
            row = {k: v for k, v in row.items() if k != TAG_FIELD}
        lines.append(_canonical(row))
    digest = hashlib.sha256(b"optgym-submission-1\n" + _canonical(manifest) + b"\n")
    for line in sorted(lines):
        digest.update(line + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class Submission:
    """A loaded submission: its manifest (parsed, maybe malformed: see
    :func:`manifest_problems`) and the bytes of its results file."""

    manifest: Any
    results: bytes
    source: Path
    #: The code it ships: relative path under ``code/`` -> bytes.
    code: dict[str, bytes] = field(default_factory=dict)
    #: The board verifier's attestation of a closed-track entry (parsed), or None.
    attestation: Any = None

    @property
    def id(self) -> str:
        manifest = self.manifest if isinstance(self.manifest, dict) else {}
        return submission_id(manifest, self.results)


def _parse_manifest(data: bytes) -> Any:
    check_json_depth(data, "manifest.json", MAX_JSON_DEPTH)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("manifest.json is not UTF-8 JSON") from None


class _Refused(ValueError):
    """What is wrong with an archive, said after "submission archive PATH"."""


#: Compressions a tar may not use, by the bytes that start them.
_OTHER_COMPRESSIONS = (
    (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"), (b"\x1f\x9d", "compress (.Z)"), (b"\x5d\x00\x00", "lzma"),
)  # fmt: skip
_TAR_ALLOWED = "allowed: a plain tar (.tar), a gzip-compressed tar (.tar.gz, .tgz) or a .zip"
#: The zip compression methods the two files may use, by number.
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


def _over_cap() -> _Refused:
    return _Refused(
        f"unpacks to more than {MAX_UNPACKED_BYTES} bytes (its members' sizes, or what "
        f"reading it takes); at most {MAX_UNPACKED_BYTES} allowed"
    )


class _CappedReader:
    """A read-only, seekable view of ``stream`` (a decompressed archive) that takes at most
    :data:`MAX_UNPACKED_BYTES` bytes out of it in all: a read or seek that would go past
    the cap is refused (``ValueError``) before it is done, so no buffer for it is
    allocated and nothing is decompressed past it.

    ``rewind_costs``: a backward seek re-reads the stream from its start (gzip), so it
    counts the bytes up to its target again. (A gzip stream decompresses ahead by at most
    its 128 KiB buffer.)
    """

    def __init__(self, stream: Any, rewind_costs: bool) -> None:
        self._stream, self._rewind_costs = stream, rewind_costs
        self._pos = 0  # where the stream is, in bytes
        self._pulled = 0  # bytes taken out of it so far, in all

    def _charge(self, target: int) -> None:
        """Count the bytes the stream must produce to get from here to ``target``."""
        if target >= self._pos:
            cost = target - self._pos
        else:
            cost = target if self._rewind_costs else 0
        if target > MAX_UNPACKED_BYTES or self._pulled + cost > MAX_UNPACKED_BYTES:
            raise _over_cap()
        self._pulled += cost

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes; an unbounded read (no ``size``) is refused."""
        if size is None or size < 0:
            raise _over_cap()
        self._charge(self._pos + size)
        data = self._stream.read(size)
        self._pulled -= size - len(data)  # charged for bytes the stream did not have
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Go to byte ``offset`` (from the start, or from here with ``SEEK_CUR``)."""
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise _Refused("needs a seek from its end, which a stream cannot do")
        if offset < 0:
            raise _Refused("is not a readable tar or zip (a seek before its start)")
        self._charge(offset)
        self._stream.seek(offset)
        self._pos = self._stream.tell()
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


def _member_name(name: str) -> str | None:
    """The file a member stands for (``manifest.json``, ``results.jsonl`` or
    ``code/PATH``, at the top or under one folder), None for anything else; refused for
    unsafe names."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not path.parts:
        raise _Refused("holds an absolute or '..' member name")
    parts = path.parts[1:] if path.parts[0] not in (*_FILES, CODE) else path.parts
    if len(parts) >= 2 and parts[0] == CODE:
        inner = "/".join(parts[1:])
        why = code_path_problem(inner)
        if why:
            raise _Refused(f"holds a code file whose name {why}")
        return f"{CODE}/{inner}"
    if len(path.parts) > 2:
        return None
    return path.name if path.name in _FILES else None


def _member_limit(name: str, size: int) -> int:
    """The most bytes member ``name`` may hold; refused when its declared ``size`` is over."""
    limits = {MANIFEST: MAX_MANIFEST_BYTES, RESULTS: MAX_RESULTS_BYTES,
              ATTESTATION: MAX_MANIFEST_BYTES}  # fmt: skip
    limit = limits.get(name, MAX_CODE_BYTES)
    if size > limit:
        raise _Refused(f"has member {name} over {limit} bytes; at most {limit} allowed")
    return limit


def _tar_stream(data: bytes) -> _CappedReader:
    """The tar inside ``data`` (plain, or gzip decompressed as it is read), capped."""
    if data[257:262] == b"ustar":  # a tar header's magic: a plain tar
        return _CappedReader(io.BytesIO(data), rewind_costs=False)
    if data.startswith(b"\x1f\x8b"):
        return _CappedReader(gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb"), True)
    for magic, kind in _OTHER_COMPRESSIONS:
        if data.startswith(magic):
            raise _Refused(f"is {kind}-compressed; {_TAR_ALLOWED}")
    return _CappedReader(io.BytesIO(data), rewind_costs=False)  # an old tar without magic


def _tar_files(data: bytes) -> Iterator[tuple[str, bytes]]:
    # "r:": no compression guessed; tarfile skips members by seeking, which the reader caps
    with tarfile.open(fileobj=_tar_stream(data), mode="r:") as archive:
        declared = 0
        for count, member in enumerate(archive):
            if count >= MAX_ARCHIVE_MEMBERS:
                raise _Refused(f"has more than {MAX_ARCHIVE_MEMBERS} members")
            declared += max(member.size, 0)
            if declared > MAX_UNPACKED_BYTES:
                raise _over_cap()
            name = _member_name(member.name)
            if member.isdir():
                continue
            if not member.isfile():
                raise _Refused("holds a link or special file; only files allowed")
            if name is None:
                continue
            limit = _member_limit(name, member.size)
            handle = archive.extractfile(member)
            assert handle is not None
            yield name, handle.read(limit + 1)


def _zip_files(data: bytes) -> Iterator[tuple[str, bytes]]:
    # zipfile parses the whole central directory before a member can be counted: each of
    # its entries starts with this signature, and only a crafted file holds many of them
    if data.count(b"PK\x01\x02") > 2 * MAX_ARCHIVE_MEMBERS:
        raise _Refused(f"has more than {MAX_ARCHIVE_MEMBERS} members")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            raise _Refused(f"has more than {MAX_ARCHIVE_MEMBERS} members")
        if sum(info.file_size for info in infos) > MAX_UNPACKED_BYTES:
            raise _over_cap()
        for info in infos:
            name = _member_name(info.filename)
            if info.is_dir():
                continue
            if (info.external_attr >> 16) & 0o170000 not in (0, 0o100000):
                raise _Refused("holds a link or special file; only files allowed")
            if name is None:
                continue
            limit = _member_limit(name, info.file_size)
            # zipfile inflates deflate in bounded steps, never past the declared size; it
            # decompresses bzip2 and lzma a whole compressed chunk at a time, unbounded
            if info.compress_type not in _ZIP_METHODS:
                raise _Refused(
                    f"has member {name} compressed with zip method {info.compress_type}; "
                    f"allowed: {', '.join(f'{n} ({m})' for m, n in _ZIP_METHODS.items())}"
                )
            with archive.open(info) as handle:
                yield name, handle.read(limit + 1)


def _archive_files(path: Path) -> dict[str, bytes]:
    """The two files of the archive at ``path``; ``ValueError`` naming the archive and
    what is wrong with it (never its contents) for any error in reading it."""
    data = read_limited(path, "submission archive", MAX_ARCHIVE_BYTES)
    reader = _zip_files if path.name.endswith(".zip") else _tar_files
    files: dict[str, bytes] = {}
    try:
        for name, content in reader(data):
            if name in files:
                raise _Refused(f"holds {name} twice")
            files[name] = content
            _member_limit(name, len(content))
            code = [n for n in files if n.startswith(f"{CODE}/")]
            if len(code) > MAX_CODE_FILES:
                raise _Refused(f"holds more than {MAX_CODE_FILES} code files")
            if sum(len(files[n]) for n in code) > MAX_CODE_BYTES:
                raise _Refused(f"holds more than {MAX_CODE_BYTES} bytes of code")
    except _Refused as e:
        raise ValueError(f"submission archive {path} {e}") from None
    except Exception as e:  # noqa: BLE001  tarfile, zipfile, gzip and zlib raise many kinds
        raise ValueError(f"submission archive {path} {_reading_problem(e)}") from None
    return files


def _reading_problem(error: Exception) -> str:
    """What an error of tarfile, zipfile, gzip or zlib says of the archive, in words that
    never hold its contents."""
    if isinstance(error, NotImplementedError):  # zip: a method or encryption zipfile lacks
        return "uses a zip feature that cannot be read; allowed: stored or deflate members"
    if type(error) is RuntimeError:  # zip: a member needs a password
        return "has encrypted members; allowed: members without encryption"
    if isinstance(error, MemoryError):
        return "needs more memory to read than is free"
    return f"is not a readable tar or zip; {_TAR_ALLOWED}"


def result_lines(results: bytes) -> int:
    """How many lines ``results`` holds, as :meth:`bytes.splitlines` cuts them (at
    ``\\n``, ``\\r`` or ``\\r\\n``), counted without splitting."""
    breaks = results.count(b"\n") + results.count(b"\r") - results.count(b"\r\n")
    return breaks + (not results.endswith((b"\n", b"\r")) and bool(results))


def check_result_lines(results: bytes, what: str) -> None:
    """``ValueError`` naming ``what`` when ``results`` holds more than
    :data:`~optgym.state.MAX_RESULT_LINES` lines (blank ones included)."""
    count = result_lines(results)
    if count > MAX_RESULT_LINES:
        raise ValueError(
            f"{what} has {count} lines; at most {MAX_RESULT_LINES} allowed (one line an "
            "episode)"
        )


def load_submission(path: str | Path) -> Submission:
    """The submission at ``path`` (a folder or an archive). ``ValueError`` names what is
    missing, unsafe or over a limit (:data:`MAX_UNPACKED_BYTES` unpacked,
    :data:`~optgym.state.MAX_RESULT_LINES` result lines), never the contents; the
    manifest's fields are not checked here."""
    path = Path(path)
    if path.is_dir():
        for name in (MANIFEST, RESULTS):
            if (path / name).is_symlink():
                raise ValueError(f"{name} in submission {path} is a link; only files allowed")
        files = {
            MANIFEST: read_limited(path / MANIFEST, "manifest", MAX_MANIFEST_BYTES)
            if (path / MANIFEST).exists() else None,
            RESULTS: read_limited(path / RESULTS, "results file", MAX_RESULTS_BYTES)
            if (path / RESULTS).exists() else None,
        }  # fmt: skip
        if (path / ATTESTATION).is_symlink() or (path / ATTESTATION).exists():
            files[ATTESTATION] = read_limited(path / ATTESTATION, "attestation",
                                              MAX_MANIFEST_BYTES)  # fmt: skip
        if (path / CODE).is_symlink() or (path / CODE).exists():
            files.update({f"{CODE}/{k}": v for k, v in read_code(path / CODE).items()})
    elif path.is_file():
        if not path.name.endswith(ARCHIVE_SUFFIXES):
            raise ValueError(
                f"submission {path} is a file but not an archive; allowed: a folder or "
                f"{', '.join(ARCHIVE_SUFFIXES)}"
            )
        files = _archive_files(path)
    else:
        raise ValueError(f"no submission folder or archive at {path}")
    for name in (MANIFEST, RESULTS):
        if files.get(name) is None:
            raise ValueError(f"submission {path} has no {name}")
    check_result_lines(files[RESULTS], f"{RESULTS} of submission {path}")
    code = {k.removeprefix(f"{CODE}/"): v for k, v in files.items() if k.startswith(f"{CODE}/")}
    attestation = None
    if files.get(ATTESTATION) is not None:
        from optgym.datasets.files import parse_json_object

        attestation = parse_json_object(files[ATTESTATION], "the attestation", MAX_JSON_DEPTH)
    return Submission(_parse_manifest(files[MANIFEST]), files[RESULTS], path, code, attestation)


_CODE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def code_path_problem(name: str) -> str | None:
    """Why ``name`` cannot be the path of a shipped code file, or None: relative, ``/``
    between parts, each part letters, digits and ``_.-`` not starting with a dot, at most
    8 parts."""
    parts = name.split("/")
    if not 1 <= len(parts) <= 8 or not all(_CODE_PART.fullmatch(p) for p in parts):
        return ("is not a relative path of 1-8 parts of letters, digits and _.- (none "
                "starting with a dot)")  # fmt: skip
    return None


def read_code(folder: str | Path) -> dict[str, bytes]:
    """The files under ``folder`` (a submission's code: relative path -> bytes), read
    without following links: a link, a special file, a bad name or more than
    :data:`MAX_CODE_FILES` files or :data:`MAX_CODE_BYTES` bytes is a ``ValueError``."""
    import os
    import stat

    from optgym.datasets.files import read_regular

    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise ValueError(f"the code folder {folder} is a link or not a folder")
    out: dict[str, bytes] = {}
    total = 0
    for top, dirs, names in os.walk(folder, followlinks=False):
        for name in sorted(dirs):
            if Path(top, name).is_symlink():
                raise ValueError(f"the code folder {folder} holds a link; only files allowed")
        for name in sorted(names):
            path = Path(top, name)
            relative = path.relative_to(folder).as_posix()
            why = code_path_problem(relative)
            if why:
                raise ValueError(f"a file in the code folder {folder} has a name that {why}")
            if not stat.S_ISREG(path.lstat().st_mode):
                raise ValueError(f"the code folder {folder} holds a link or special file; "
                                 "only files allowed")  # fmt: skip
            if len(out) >= MAX_CODE_FILES:
                raise ValueError(f"the code folder {folder} has more than {MAX_CODE_FILES} "
                                 "files")  # fmt: skip
            out[relative] = read_regular(path, "code file", MAX_CODE_BYTES)
            total += len(out[relative])
            if total > MAX_CODE_BYTES:
                raise ValueError(f"the code folder {folder} holds more than {MAX_CODE_BYTES} "
                                 "bytes")  # fmt: skip
    return out


def code_hashes(code: dict[str, bytes]) -> dict[str, str]:
    """``code_files`` for a manifest: each shipped file's sha256."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in sorted(code.items())}


def code_problems(sub: Submission) -> list[str]:
    """What is wrong with the code a submission ships against its manifest's ``code_files``
    (a file missing, added or changed), never quoting a name the manifest does not list."""
    listed = sub.manifest.get("code_files") or {} if isinstance(sub.manifest, dict) else {}
    shipped = code_hashes(sub.code)
    out = []
    missing = [n for n in listed if n not in shipped]
    extra = [n for n in shipped if n not in listed]
    changed = [n for n in listed if n in shipped and shipped[n] != listed[n]]
    if missing:
        out.append(f"{len(missing)} code files the manifest lists are missing")
    if extra:
        out.append(f"{len(extra)} code files are not in the manifest's code_files")
    if changed:
        out.append(f"{len(changed)} code files do not match their sha256 in the manifest")
    return out


def extract_code(sub: Submission, folder: str | Path) -> Path:
    """Write the submission's code into ``folder`` (made; files 644, folders 755), for the
    sandbox to see read-only; returns the folder."""
    from optgym.datasets.files import write_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in sub.code.items():
        target = folder.joinpath(*name.split("/"))
        for parent in reversed(target.relative_to(folder).parents[:-1]):
            (folder / parent).mkdir(mode=0o755, exist_ok=True)
        write_file(target, data)
    return folder


def make_manifest(
    task: Any,
    agent: str,
    stochastic: bool,
    name: str | None = None,
    authors: Sequence[str] = (),
    code_url: str = "",
    commit: str = "",
    training_data: Sequence[dict[str, str]] = (),
    license: str = "NOASSERTION",
    round: str | None = None,
    weights: str | Path | None = None,
    description: str = "",
    code: str | Path | None = None,
) -> dict[str, Any]:
    """The manifest of an entry of ``agent`` (its canonical spec; ``stochastic`` as its class
    says) on ``task``, run with this OptGym; the closed track when ``round`` is given; the
    ``code_files`` of the folder ``code`` (what the submission ships) when given. A task
    ranked within a hardware class gets this machine's calibration (:mod:`.hardware`)."""
    import optgym
    from optgym.leaderboard.hardware import calibrate
    from optgym.tasks import hardware_dependent

    manifest = {
        "schema_version": SCHEMA_VERSION, "task": task.name, "name": name or agent,
        "agent": agent, "stochastic": stochastic,
        "authors": list(authors) or ["anonymous"],
        "code": {"url": code_url, "commit": commit}, "training_data": list(training_data),
        "versions": {"optgym": optgym.__version__, "datasets": [u for u, _ in task.datasets]},
        "license": license,
        "track": "open" if round is None else "closed", "round": round,
        "hardware": calibrate() if hardware_dependent(task) else None,
        "weights_sha256": None, "description": description,
        "code_files": code_hashes(read_code(code)) if code is not None else {},
    }  # fmt: skip
    if weights is not None:
        from optgym.datasets.files import read_regular

        data = read_regular(weights, "weights file", MAX_CODE_BYTES, follow=True)
        manifest["weights_sha256"] = hashlib.sha256(data).hexdigest()
    return manifest


def write_submission(
    folder: str | Path, manifest: dict[str, Any], results: bytes, code: str | Path | None = None
) -> Path:
    """Write ``manifest.json``, ``results.jsonl`` and, from the folder ``code``, the code
    the submission ships (``code/``) into ``folder`` (made if missing; nothing written
    through a link); ``ValueError`` when the manifest is malformed or the code is not what
    it lists. Returns the folder."""
    from optgym.datasets.files import write_file

    problems = manifest_problems(manifest)
    if problems:
        raise ValueError("; ".join(problems))
    folder = Path(folder)
    shipped = read_code(code) if code is not None else {}
    sub = Submission(manifest, results, folder, shipped)
    problems = code_problems(sub)
    if problems:
        raise ValueError("; ".join(problems))
    folder.mkdir(parents=True, exist_ok=True)
    write_file(folder / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    write_file(folder / RESULTS, results)
    if shipped and Path(code).resolve() != (folder / CODE).resolve():  # type: ignore[arg-type]
        extract_code(sub, folder / CODE)
    return folder


__all__ = [
    "ATTESTATION",
    "CODE",
    "MANIFEST",
    "MANIFEST_FIELDS",
    "MIN_SEEDS",
    "RESULTS",
    "SCHEMA_VERSION",
    "Submission",
    "check_result_lines",
    "code_hashes",
    "code_path_problem",
    "code_problems",
    "extract_code",
    "load_submission",
    "make_manifest",
    "read_code",
    "manifest_problems",
    "result_lines",
    "submission_id",
    "write_submission",
]
