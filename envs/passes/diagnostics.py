"""Messages about a program's bytes that never quote those bytes.

A benchmark may name any file (``file:///etc/shadow``). LLVM's own diagnostics print the
offending source line and quote identifiers; OptGym passes on only the position and a
description with every quoted part and every run of the file's bytes removed, so an error
message (or a crashed worker's log relayed in ``info["error"]``) cannot echo the file.
"""

from __future__ import annotations

import re

BITCODE_MAGIC = (b"BC\xc0\xde", b"\xde\xc0\x17\x0b")  # raw bitcode, and its wrapper header
_POSITION = re.compile(r"^input:(\d+):(\d+): error: (.*)$")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_WINDOW = 8  # a message may share no run of this many characters with the input
# Worker log lines worth relaying: LLVM's fatal errors and an uncaught Python exception.
_LOG_LINE = re.compile(r"^(LLVM ERROR: |error: |fatal error: |[\w.]+(Error|Exception): )")
_LOG_LINES = 3
_LOG_LINE_CHARS = 300


def is_bitcode(data: bytes) -> bool:
    """Whether ``data`` starts with a bitcode header (else it is read as IR text)."""
    return data.startswith(BITCODE_MAGIC)


def content_problem(data: bytes) -> str | None:
    """What makes ``data`` plainly not a program, before LLVM sees it; None if nothing does.

    An empty file and a text file holding NUL bytes (all-zero files, ``/proc/*/environ``)
    parse as an empty module in LLVM, so they are refused here.
    """
    if not data:
        return "is empty (0 bytes)"
    if not is_bitcode(data):
        nul = data.find(b"\0")
        if nul >= 0:
            zeros = " (all its bytes are zero)" if not data.strip(b"\0") else ""
            return (
                f"is neither LLVM bitcode (no 'BC' header) nor IR text: it holds a NUL byte "
                f"at offset {nul}{zeros}"
            )
    return None


def _shares_run(text: str, data: bytes) -> bool:
    raw = text.encode(errors="replace")
    return any(raw[i : i + _WINDOW] in data for i in range(max(len(raw) - _WINDOW + 1, 0)))


def scrub(text: str, data: bytes) -> str:
    """``text`` with quoted parts replaced by ``'...'``; empty if it still shares a run of
    :data:`_WINDOW` characters with ``data``."""
    text = _QUOTED.sub("'...'", text).strip()
    return "" if _shares_run(text, data) else text


def parse_failure(raw: str, data: bytes) -> str:
    """Why LLVM refused ``data``, from its error ``raw``, without quoting ``data``."""
    first = raw.strip().splitlines()[0] if raw.strip() else ""
    match = _POSITION.match(first)
    if match:
        line, column, description = match.groups()
        what = scrub(description, data)
        where = f"parse failed at line {line}, column {column}"
        return f"{where}: {what}" if what else where
    # Bitcode reader and verifier messages: the first line names the problem (the verifier
    # prints the offending instructions on the lines after it).
    what = scrub(first, data)
    return what or "LLVM gave no description that can be shown without quoting the file"


def worker_log(log: str, data: bytes | None) -> str:
    """The lines of a crashed worker's log worth relaying (LLVM's fatal error), scrubbed."""
    kept: list[str] = []
    for line in log.splitlines():
        line = line.strip()
        if not _LOG_LINE.match(line):
            continue
        text = _QUOTED.sub("'...'", line)[:_LOG_LINE_CHARS]
        if data is not None and _shares_run(text, data):
            continue
        kept.append(text)
    return "; ".join(kept[-_LOG_LINES:])
