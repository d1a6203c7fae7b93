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
names and oversized members are refused, nothing is written to disk.

>>> sub = load_submission(Path("leaderboard/board/entries/path-planning/<id>"))
>>> sub.id, sub.manifest["agent"]
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from optgym.datasets.files import check_json_depth, read_limited
from optgym.result_line import TAG_FIELD

#: The manifest's schema version.
SCHEMA_VERSION = 1
MANIFEST, RESULTS, VERIFICATION = "manifest.json", "results.jsonl", "verification.json"
#: Seeds a stochastic agent needs on every benchmark.
MIN_SEEDS = 3
TRACKS = ("open", "closed")
TRAINING_SPLITS = ("train", "validation")
MAX_MANIFEST_BYTES = 64 * 1024
MAX_RESULTS_BYTES = 256 * 1024**2
MAX_ARCHIVE_BYTES = MAX_RESULTS_BYTES + MAX_MANIFEST_BYTES + 1024**2
MAX_ARCHIVE_MEMBERS = 64
MAX_JSON_DEPTH = 8
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")

_HEX64 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{7,64}")
_LICENSE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,63}")
_URL = re.compile(r"https?://[^\s<>\"'`]{1,500}")
_VERSION = re.compile(r"[0-9A-Za-z.+-]{1,32}")
_DATASET = re.compile(r"(benchmark|generator)://[a-z0-9][a-z0-9_.-]{0,60}-v[0-9]{1,4}")
_CLASS = re.compile(r"[A-Za-z0-9_./+-]{1,80}")

#: Every manifest field: (what it holds, required).
MANIFEST_FIELDS: dict[str, tuple[str, bool]] = {
    "schema_version": (f"the integer {SCHEMA_VERSION}", True),
    "task": ("the leaderboard task (optgym tasks)", True),
    "name": ("the entry's display name, 1-80 characters", True),
    "agent": ("the agent spec exactly as the result lines write it", True),
    "stochastic": ("true when the agent's result depends on its seed", True),
    "authors": ("a list of 1-20 names, each 1-200 characters", True),
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
    "description": ("free text, at most 2000 characters", False),
}


def _text(value: Any, most: int, least: int = 1) -> bool:
    """A string of ``least``..``most`` characters without control characters."""
    return (
        isinstance(value, str)
        and least <= len(value) <= most
        and not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value)
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
        return None if _text(value, 500) else "must be a non-empty string"
    if name == "name":
        return None if _text(value, 80) else "must be 1-80 characters, no control characters"
    if name == "stochastic":
        return None if isinstance(value, bool) else "must be true or false"
    if name == "authors":
        ok = isinstance(value, list) and 1 <= len(value) <= 20
        return None if ok and all(_text(a, 200) for a in value) else "must be 1-20 names"
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
    if name == "description":
        return None if _text(value, 2000, 0) or value == "" else "must be at most 2000 characters"
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


def _member_name(name: str) -> str | None:
    """The file a member stands for (``manifest.json``/``results.jsonl``, at the top or
    under one folder), None for a folder entry; ``ValueError`` for unsafe names."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not path.parts:
        raise ValueError("the archive holds an absolute or '..' member name")
    if len(path.parts) > 2:
        return None
    return path.name if path.name in (MANIFEST, RESULTS) else None


def _tar_files(data: bytes) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for count, member in enumerate(archive):
            if count >= MAX_ARCHIVE_MEMBERS:
                raise ValueError(f"the archive has more than {MAX_ARCHIVE_MEMBERS} members")
            name = _member_name(member.name)
            if member.isdir():
                continue
            if not member.isfile():
                raise ValueError("the archive holds a link or special file; only files allowed")
            if name is None:
                continue
            limit = MAX_MANIFEST_BYTES if name == MANIFEST else MAX_RESULTS_BYTES
            if member.size > limit:
                raise ValueError(f"archive member {name} is over {limit} bytes")
            handle = archive.extractfile(member)
            assert handle is not None
            yield name, handle.read(limit + 1)


def _zip_files(data: bytes) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            raise ValueError(f"the archive has more than {MAX_ARCHIVE_MEMBERS} members")
        for info in infos:
            name = _member_name(info.filename)
            if info.is_dir():
                continue
            if (info.external_attr >> 16) & 0o170000 not in (0, 0o100000):
                raise ValueError("the archive holds a link or special file; only files allowed")
            if name is None:
                continue
            limit = MAX_MANIFEST_BYTES if name == MANIFEST else MAX_RESULTS_BYTES
            if info.file_size > limit:
                raise ValueError(f"archive member {name} is over {limit} bytes")
            with archive.open(info) as handle:
                yield name, handle.read(limit + 1)


def _archive_files(path: Path) -> dict[str, bytes]:
    data = read_limited(path, "submission archive", MAX_ARCHIVE_BYTES)
    reader = _zip_files if path.name.endswith(".zip") else _tar_files
    files: dict[str, bytes] = {}
    try:
        for name, content in reader(data):
            if name in files:
                raise ValueError(f"the archive holds {name} twice")
            files[name] = content
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError):
        raise ValueError(f"submission archive {path} is not a readable tar or zip") from None
    except RuntimeError:  # zip: encrypted members
        raise ValueError(f"submission archive {path} has encrypted members") from None
    for name, limit in ((MANIFEST, MAX_MANIFEST_BYTES), (RESULTS, MAX_RESULTS_BYTES)):
        if name in files and len(files[name]) > limit:
            raise ValueError(f"archive member {name} is over {limit} bytes")
    return files


def load_submission(path: str | Path) -> Submission:
    """The submission at ``path`` (a folder or an archive). ``ValueError`` names what is
    missing or unsafe, never the contents; the manifest's fields are not checked here."""
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
    return Submission(_parse_manifest(files[MANIFEST]), files[RESULTS], path)


def make_manifest(
    task: Any,
    spec: Any,
    name: str | None = None,
    authors: Sequence[str] = (),
    code_url: str = "",
    commit: str = "",
    training_data: Sequence[dict[str, str]] = (),
    license: str = "NOASSERTION",
    round: str | None = None,
    weights: str | Path | None = None,
    description: str = "",
) -> dict[str, Any]:
    """The manifest of an entry of ``spec`` (an :class:`~optgym.agents.AgentSpec`) on
    ``task``, run with this OptGym; the closed track when ``round`` is given. A task ranked
    within a hardware class gets this machine's calibration (:mod:`.hardware`)."""
    import optgym
    from optgym.leaderboard.hardware import calibrate
    from optgym.leaderboard.tasks import hardware_dependent

    manifest = {
        "schema_version": SCHEMA_VERSION, "task": task.name, "name": name or spec.canonical,
        "agent": spec.canonical, "stochastic": spec.stochastic,
        "authors": list(authors) or ["anonymous"],
        "code": {"url": code_url, "commit": commit}, "training_data": list(training_data),
        "versions": {"optgym": optgym.__version__, "datasets": [u for u, _ in task.datasets]},
        "license": license,
        "track": "open" if round is None else "closed", "round": round,
        "hardware": calibrate() if hardware_dependent(task) else None,
        "weights_sha256": None, "description": description,
    }  # fmt: skip
    if weights is not None:
        manifest["weights_sha256"] = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    return manifest


def write_submission(folder: str | Path, manifest: dict[str, Any], results: bytes) -> Path:
    """Write ``manifest.json`` and ``results.jsonl`` into ``folder`` (made if missing);
    ``ValueError`` when the manifest is malformed. Returns the folder."""
    problems = manifest_problems(manifest)
    if problems:
        raise ValueError("; ".join(problems))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (folder / RESULTS).write_bytes(results)
    return folder


__all__ = [
    "MANIFEST",
    "MANIFEST_FIELDS",
    "MIN_SEEDS",
    "RESULTS",
    "SCHEMA_VERSION",
    "Submission",
    "load_submission",
    "make_manifest",
    "manifest_problems",
    "submission_id",
    "write_submission",
]
