"""Hostile leaderboard submissions: archives that unpack to far more than they weigh, a PAX
header that asks for gigabytes, results files of millions of tiny lines and display names
that hide or reorder text. Each is crafted for real in a temporary folder and must be
refused quickly with one ``ValueError`` that names the file or field, what is wrong and the
limit, never its contents, and never with a traceback."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import struct
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from optgym.cli import main
from optgym.leaderboard import submission as submission_module
from optgym.leaderboard.submission import (
    MAX_ARCHIVE_MEMBERS,
    MAX_UNPACKED_BYTES,
    load_submission,
    manifest_problems,
    result_lines,
)
from optgym.state import MAX_RESULT_LINES, json_lines

MiB = 1 << 20
SECRET = "SECRET-CONTENT-7f3a"
MANIFEST = {
    "schema_version": 1, "task": "path-planning", "name": "CMA-ES", "agent": "cmaes",
    "stochastic": True, "authors": ["OptGym maintainers"], "code": {"url": "", "commit": ""},
    "training_data": [], "versions": {"optgym": "0.1.0", "datasets": ["benchmark://nav2d-v0"]},
    "license": "MIT", "track": "open", "round": None, "hardware": None,
    "weights_sha256": None, "description": "",
}  # fmt: skip
MANIFEST_BYTES = json.dumps(MANIFEST).encode()
RESULTS_BYTES = json.dumps({"note": SECRET}).encode() + b"\n"


# --- crafting, by hand ---------------------------------------------------------------------


def _tar_header(name: bytes, size: int, kind: bytes = b"0") -> bytes:
    """A ustar header block for a member ``name`` of ``size`` bytes (``kind``: the type
    flag, ``b"x"`` for a PAX extended header), written field by field."""
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:136] = b"0000644\0" + b"0000000\0" * 2 + b"%011o\0" % size
    block[136:148] = b"00000000000\0"
    block[148:156] = b" " * 8  # the checksum counts its own field as spaces
    block[156:157] = kind
    block[257:265] = b"ustar\x0000"
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _member(name: str, data: bytes) -> bytes:
    """A tar member: its header and its data, padded to whole 512-byte blocks."""
    return _tar_header(name.encode(), len(data)) + data + bytes(-len(data) % 512)


def _zeros_gzip(prefix: bytes, zeros_mib: int, suffix: bytes) -> bytes:
    """A valid gzip stream of ``prefix``, ``zeros_mib`` MiB of zeros, then ``suffix``, made
    in a fraction of a second: after a full flush deflate forgets what came before, so one
    compressed MiB of zeros (about 1 KB) is written ``zeros_mib`` times."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", deflate.compress(prefix)]
    out.append(deflate.flush(zlib.Z_FULL_FLUSH))
    block = bytes(MiB)
    chunk = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH) == chunk
    out += [chunk] * zeros_mib + [deflate.compress(suffix), deflate.flush()]
    crc = zlib.crc32(prefix)
    for _ in range(zeros_mib):
        crc = zlib.crc32(block, crc)
    size = len(prefix) + zeros_mib * MiB + len(suffix)
    out.append(struct.pack("<LL", zlib.crc32(suffix, crc), size & 0xFFFFFFFF))
    return b"".join(out)


def _zip(members: list[tuple[str, bytes, int, int]], comment_entries: int = 0) -> bytes:
    """A zip written field by field: ``(name, stored bytes, method, declared size)`` per
    member (the declared size may lie), then ``comment_entries`` extra central-directory
    entries that point at the first member."""
    local, central = [], []
    offset = 0
    for name, data, method, size in members:
        crc = zlib.crc32(data)
        head = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, method, 0, 33,
                           crc, len(data), size, len(name), 0)  # fmt: skip
        local.append(head + name.encode() + data)
        central.append(struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, method,
                                   0, 33, crc, len(data), size, len(name), 0, 0, 0, 0,
                                   0o100644 << 16, offset) + name.encode())  # fmt: skip
        offset += len(local[-1])
    central += [central[0]] * comment_entries
    directory = b"".join(central)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, min(len(central), 0xFFFF),
                      min(len(central), 0xFFFF), len(directory), offset, 0)  # fmt: skip
    return b"".join(local) + directory + end


def _refusal(path: Path, needle: str, seconds: float = 2.0) -> str:
    """Load ``path``: it must be refused within ``seconds`` with a ``ValueError`` holding
    ``needle`` and naming the file, never its contents. Returns the message."""
    start = time.monotonic()
    with pytest.raises(ValueError) as caught:
        load_submission(path)
    elapsed = time.monotonic() - start
    message = str(caught.value)
    assert needle in message, message
    assert str(path) in message and SECRET not in message
    assert elapsed < seconds, f"refused after {elapsed:.1f} s"
    return message


def _verify_cli(path: Path, capsys: pytest.CaptureFixture, needle: str) -> None:
    """``optgym leaderboard verify`` refuses ``path`` with ``needle``, in seconds."""
    start = time.monotonic()
    assert main(["leaderboard", "verify", str(path), "--record", "-"]) == 1
    out = capsys.readouterr()
    assert time.monotonic() - start < 5
    assert "REFUSED" in out.out and needle in out.out, out.out
    assert "Traceback" not in out.out + out.err and SECRET not in out.out + out.err


# --- H1: what an archive unpacks to is capped before the work is done ----------------------


def test_gzip_helper_makes_a_real_stream() -> None:
    assert gzip.decompress(_zeros_gzip(b"head", 3, b"tail")) == b"head" + bytes(3 * MiB) + b"tail"


def test_a_gigabyte_of_zeros_in_a_small_tar_gz_is_refused_before_decompression(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # 1 GiB of zeros (nearly four times the cap) under another name than the two files,
    # between them: a 1 MB archive that used to cost a minute of CPU per 16 GiB, then pass
    zeros_mib = 1024
    assert zeros_mib * MiB > 3 * MAX_UNPACKED_BYTES
    prefix = _member("e/manifest.json", MANIFEST_BYTES) + _tar_header(
        b"e/padding.bin", zeros_mib * MiB
    )
    suffix = _member("e/results.jsonl", RESULTS_BYTES) + bytes(1024)
    path = tmp_path / "bomb.tar.gz"
    path.write_bytes(_zeros_gzip(prefix, zeros_mib, suffix))
    assert path.stat().st_size < 2 * MiB
    message = _refusal(path, f"unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    assert f"at most {MAX_UNPACKED_BYTES} allowed" in message
    _verify_cli(path, capsys, "unpacks to more than")


def test_many_members_whose_sizes_add_up_past_the_cap_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submission_module, "MAX_UNPACKED_BYTES", 3 * MiB)
    parts = [_member("manifest.json", MANIFEST_BYTES)]
    parts += [_member(f"pad{i}.bin", bytes(MiB)) for i in range(4)]
    parts += [_member("results.jsonl", RESULTS_BYTES), bytes(1024)]
    path = tmp_path / "many.tar.gz"
    path.write_bytes(gzip.compress(b"".join(parts)))
    _refusal(path, f"unpacks to more than {3 * MiB} bytes")
    manifest = ("manifest.json", MANIFEST_BYTES, 0, len(MANIFEST_BYTES))
    (tmp_path / "many.zip").write_bytes(_zip([manifest, ("pad.bin", b"", 0, 4 * MiB)]))
    _refusal(tmp_path / "many.zip", f"unpacks to more than {3 * MiB} bytes")


def test_reads_of_the_decompressed_stream_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # declared sizes under the cap, but a PAX header tarfile reads in one piece over it
    monkeypatch.setattr(submission_module, "MAX_UNPACKED_BYTES", 64 * 1024)
    record = b"100016 comment=" + b"a" * 100000 + b"\n"
    pax = _tar_header(b"././@PaxHeader", len(record), b"x") + record
    data = pax + bytes(-len(pax) % 512) + _member("manifest.json", MANIFEST_BYTES)
    path = tmp_path / "pax.tar.gz"
    path.write_bytes(gzip.compress(data + _member("results.jsonl", RESULTS_BYTES) + bytes(1024)))
    _refusal(path, f"unpacks to more than {64 * 1024} bytes")
    monkeypatch.setattr(submission_module, "MAX_UNPACKED_BYTES", 1024**2)
    assert load_submission(path).manifest == MANIFEST  # the same archive, under a larger cap


@pytest.mark.parametrize(
    ("compress", "kind"),
    [(bz2.compress, "bzip2"), (lzma.compress, "xz")],
)
def test_tar_compressions_other_than_gzip_are_refused(
    tmp_path: Path, compress: Any, kind: str
) -> None:
    data = _member("manifest.json", MANIFEST_BYTES) + _member("results.jsonl", RESULTS_BYTES)
    path = tmp_path / "entry.tar"
    path.write_bytes(compress(data + bytes(1024)))
    message = _refusal(path, f"is {kind}-compressed")
    assert "allowed: a plain tar (.tar), a gzip-compressed tar (.tar.gz, .tgz)" in message
    path.write_bytes(data + bytes(1024))  # the same tar, plain, loads
    assert load_submission(path).results == RESULTS_BYTES
    path = tmp_path / "entry.tgz"
    path.write_bytes(gzip.compress(data + bytes(1024)))
    assert load_submission(path).results == RESULTS_BYTES


def test_a_zip_member_that_lies_about_its_size_is_never_inflated_unbounded(tmp_path: Path) -> None:
    # bzip2 inflates a whole compressed chunk at once: 16 MiB of zeros in 45 bytes, said
    # to be 10 bytes long. Only stored and deflate are read.
    bomb = bz2.compress(bytes(16 * MiB))
    path = tmp_path / "bomb.zip"
    path.write_bytes(_zip([("manifest.json", MANIFEST_BYTES, 0, len(MANIFEST_BYTES)),
                           ("results.jsonl", bomb, zipfile.ZIP_BZIP2, 10)]))  # fmt: skip
    message = _refusal(path, "has member results.jsonl compressed with zip method 12")
    assert "allowed: stored (0), deflate (8)" in message
    # deflate that lies is cut at its declared size (and the line count then applies)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    lying = deflate.compress(RESULTS_BYTES * 1000) + deflate.flush()
    path.write_bytes(_zip([("manifest.json", MANIFEST_BYTES, 0, len(MANIFEST_BYTES)),
                           ("results.jsonl", lying, zipfile.ZIP_DEFLATED, 5)]))  # fmt: skip
    with pytest.raises(ValueError, match="not a readable tar or zip") as caught:
        load_submission(path)  # zipfile's CRC check fails on the cut member
    assert SECRET not in str(caught.value)


def test_a_zip_directory_of_a_million_entries_is_refused_unparsed(tmp_path: Path) -> None:
    # zipfile builds an object per central-directory entry before any can be counted
    path = tmp_path / "directory.zip"
    path.write_bytes(_zip([("manifest.json", MANIFEST_BYTES, 0, len(MANIFEST_BYTES))], 10**6))
    _refusal(path, f"has more than {MAX_ARCHIVE_MEMBERS} members", seconds=1.0)


def test_an_honest_zip_and_tar_still_load(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("entry/manifest.json", MANIFEST_BYTES)
        z.writestr("entry/results.jsonl", RESULTS_BYTES)
        z.writestr("entry/README.md", "notes\n")
    (tmp_path / "ok.zip").write_bytes(buffer.getvalue())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as t:
        for name, data in (("manifest.json", MANIFEST_BYTES), ("results.jsonl", RESULTS_BYTES)):
            info = tarfile.TarInfo(f"entry-\u00e9\u00e8-{'x' * 120}/{name}")  # PAX headers
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    (tmp_path / "ok.tar.gz").write_bytes(buffer.getvalue())
    for name in ("ok.zip", "ok.tar.gz"):
        sub = load_submission(tmp_path / name)
        assert (sub.manifest, sub.results) == (MANIFEST, RESULTS_BYTES)


# --- C1: a PAX header that declares 2 GiB, under a 1.5 GB address-space limit -----------------

LIMITED = textwrap.dedent(
    """
    import resource, sys
    from optgym.cli import main

    resource.setrlimit(resource.RLIMIT_AS, (1500 * 1024**2, 1500 * 1024**2))
    sys.exit(main(["leaderboard", "verify", sys.argv[1], "--record", "-"]))
    """
)


@pytest.mark.parametrize("name", ["pax.tar", "pax.tar.gz"])
def test_a_two_gigabyte_pax_header_is_refused_without_a_memory_error(
    tmp_path: Path, name: str
) -> None:
    # a 19 KB archive whose PAX header says 2 GiB: tarfile reads a header in one piece,
    # and gzip's reader allocates what it is asked for before it decompresses
    pax = _tar_header(b"././@PaxHeader", 2 << 30, b"x") + b"30 path=" + SECRET.encode() * 1000
    path = tmp_path / name
    path.write_bytes(gzip.compress(pax) if name.endswith(".gz") else pax)
    assert path.stat().st_size < 20 * 1024
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", LIMITED, str(path)], capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "REFUSED" in done.stdout and f"unpacks to more than {MAX_UNPACKED_BYTES}" in output
    assert "Traceback" not in output and "MemoryError" not in output and SECRET not in output
    assert time.monotonic() - start < 30


# --- H2: the line count is capped before any line is parsed ------------------------------------


@pytest.mark.parametrize("newline", [b"\n", b"\r"])
def test_millions_of_one_character_lines_are_refused_unparsed(
    tmp_path: Path, capsys: pytest.CaptureFixture, newline: bytes
) -> None:
    lines = 8 * MiB  # 16 MiB of results: 16 KB zipped
    assert lines > MAX_RESULT_LINES
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("manifest.json", MANIFEST_BYTES)
        z.writestr("results.jsonl", (b"x" + newline) * lines)
    path = tmp_path / "lines.zip"
    path.write_bytes(buffer.getvalue())
    assert path.stat().st_size < 64 * 1024
    message = _refusal(path, f"has {lines} lines; at most {MAX_RESULT_LINES} allowed")
    assert "results.jsonl" in message
    _verify_cli(path, capsys, f"at most {MAX_RESULT_LINES} allowed")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "manifest.json").write_bytes(MANIFEST_BYTES)
    (folder / "results.jsonl").write_bytes((b"x" + newline) * lines)
    _refusal(folder, f"has {lines} lines")


def test_lines_are_counted_as_the_parser_splits_them() -> None:
    for data in (b"", b"a", b"a\n", b"a\r\nb\rc\n\n", b"\r\r\n\n", b"a\nb"):
        assert result_lines(data) == len(data.splitlines()), data


def test_validate_refuses_a_results_file_over_the_line_limit_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(b"x\n" * (MAX_RESULT_LINES + 1))
    with pytest.raises(ValueError, match=f"has more than {MAX_RESULT_LINES} lines"):
        next(json_lines(path))
    start = time.monotonic()
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert time.monotonic() - start < 5
    assert err.count("\n") == 1 and f"at most {MAX_RESULT_LINES} allowed" in err, err
    path.write_bytes(b"x\n" * MAX_RESULT_LINES + b"x")  # the last line unended
    with pytest.raises(ValueError, match=f"has {MAX_RESULT_LINES + 1} lines"):
        next(json_lines(path))
    path.write_bytes(b"\n" * (MAX_RESULT_LINES - 1) + b'{"a": 1}')  # at the limit: read
    assert list(json_lines(path)) == [(MAX_RESULT_LINES, {"a": 1}, None)]


# --- display names: no bidi overrides, zero-width or other invisible characters -----------------

HIDDEN = {
    "right-to-left override": "\u202e",
    "left-to-right embedding": "\u202a",
    "first strong isolate": "\u2068",
    "pop directional isolate": "\u2069",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "right-to-left mark": "\u200f",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "private use": "\ue000",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "bell": "\x07",
    "tab": "\t",
    "C1 control": "\x85",
    "lone surrogate": "\ud800",
}


@pytest.mark.parametrize("field", ["name", "authors", "description"])
@pytest.mark.parametrize("what", list(HIDDEN))
def test_display_text_with_hidden_characters_is_refused(field: str, what: str) -> None:
    text = f"{SECRET}{HIDDEN[what]}gpj.exe"
    manifest = {**MANIFEST, field: [text] if field == "authors" else text}
    problems = manifest_problems(manifest)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"manifest {field} must be")
    assert "Cc, Cf, Co, Cs, Zl, Zp" in problems[0]
    assert SECRET not in problems[0] and HIDDEN[what] not in problems[0]


def test_visible_text_and_newlines_in_the_description_are_kept() -> None:
    assert manifest_problems(MANIFEST) == []
    manifest = {
        **MANIFEST, "name": "Zo\u00eb's CMA-ES \u2014 \u674e\u96f7 \U0001f680",
        "authors": ["Zo\u00eb M\u00fcller", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629"],
        "description": "Two lines:\nthe second one.",
    }  # fmt: skip
    assert manifest_problems(manifest) == []


def test_verify_refuses_a_hidden_name_by_field(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "entry"
    folder.mkdir()
    manifest = {**MANIFEST, "name": f"CMA-ES\u202e{SECRET}"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "results.jsonl").write_bytes(RESULTS_BYTES)
    assert main(["leaderboard", "verify", str(folder), "--record", "-"]) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "manifest name must be 1-80 characters" in out
    assert "bidi" in out and SECRET not in out and "\u202e" not in out
