"""Episode states: small JSON records that replay an episode, with a writer and a reader.

An :class:`EpisodeState` names the env, how it was built (``config``: the constructor's
keyword arguments), the benchmark, the seed, an optional reference applied first (``"Oz"``:
the env's own -Oz pipeline) and the actions, with the cumulative reward they earned.
``env.validate(state)`` replays it from a fresh reset in an env built with that config.
Equality ignores the wall time, as CompilerGym's state record does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_KEYS = ("env_id", "benchmark", "reward_space", "actions", "reward", "config")


@dataclass
class EpisodeState:
    """A replayable episode. ``actions`` are JSON values (ints for discrete spaces)."""

    env_id: str
    benchmark: str
    reward_space: str
    actions: list[Any]
    reward: float
    seed: int | None = None
    reference: str | None = None
    walltime: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    # What an env needs beyond actions to check a state (LNS: the incumbent, its objective
    # and the gap-over-time trace, since measured times do not replay). Not in equality.
    extras: dict[str, Any] = field(default_factory=dict)
    # The env's constructor arguments (``env.config``): validate rebuilds the env with them.
    # Not in equality: the CompilerGym CSV does not hold it.
    config: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpisodeState):
            return NotImplemented
        return (
            self.env_id == other.env_id
            and self.benchmark == other.benchmark
            and self.reward_space == other.reward_space
            and self.actions == other.actions
            and self.reference == other.reference
            and math.isclose(self.reward, other.reward, rel_tol=1e-9, abs_tol=1e-12)
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeState:
        """Build a state from a dict; ``ValueError`` naming missing or mistyped fields."""
        if not isinstance(data, dict):
            raise ValueError(f"an episode state must be a JSON object, got {type(data).__name__}")
        missing = [k for k in STATE_KEYS if k not in data]
        if missing:
            raise ValueError(
                f"episode state lacks {', '.join(missing)}; required: {', '.join(STATE_KEYS)}"
            )
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"episode state has unknown fields {sorted(unknown)}")
        if not isinstance(data["actions"], list):
            raise ValueError(f"episode state 'actions' must be a list, got {data['actions']!r}")
        if not isinstance(data["reward"], (int, float)) or isinstance(data["reward"], bool):
            raise ValueError(f"episode state 'reward' must be a number, got {data['reward']!r}")
        for name in ("config", "extras", "versions"):
            if name in data and not isinstance(data[name], dict):
                raise ValueError(f"episode state {name!r} must be a JSON object")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> EpisodeState:
        return cls.from_dict(json.loads(text))


@dataclass
class ValidationResult:
    """Outcome of replaying a state: ``ok`` when the reward reproduced within tolerance."""

    state: EpisodeState
    ok: bool
    reward: float | None
    error: str | None = None
    # Units of the env's work the replay spent (its ``work_unit``).
    work: int = 0

    def __str__(self) -> str:
        if self.ok:
            return f"ok: {self.state.benchmark} reward {self.reward:.6g}"
        return f"failed: {self.state.benchmark}: {self.error or 'replay differs'}"


class StateWriter:
    """Append states (or result rows that hold one) as JSON lines, one write and a flush
    per line, so that a kill loses nothing already written.

    The file is never opened through a symbolic link (``ValueError`` before anything
    touches it: a link could point at any file, which a repair of a cut last line would
    then truncate) and must be a regular file (a FIFO or a device is refused, never waited
    on). Holds an exclusive lock on the file (where the OS has ``fcntl``) so that two runs
    never interleave their lines; the lock goes with the process, even when it is killed.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_symlink():
            raise ValueError(f"results {self.path} is a symbolic link; name a regular file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._open()
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock
            return
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            raise RuntimeError(
                f"{self.path} is being written by another run; wait for it or choose "
                "another results file"
            ) from None

    def _open(self) -> Any:
        """The results file opened for appending: created if missing, never through a
        link (``O_NOFOLLOW``), never blocking (a FIFO without a reader), and only if what
        was opened is a regular file."""
        import errno
        import os
        import stat

        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY
        flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        not_regular = (
            f"results {self.path} is not a regular file (a FIFO, device or folder); "
            "name a JSON-lines file"
        )
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:  # made a link after the check above
                raise ValueError(
                    f"results {self.path} is a symbolic link; name a regular file"
                ) from None
            if e.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO with no reader, a folder
                raise ValueError(not_regular) from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError(not_regular)
            if hasattr(os, "set_blocking"):
                os.set_blocking(fd, True)
            return os.fdopen(fd, "a", encoding="utf-8")
        except BaseException:
            os.close(fd)
            raise

    def write(self, record: EpisodeState | dict[str, Any]) -> None:
        row = record.to_dict() if isinstance(record, EpisodeState) else record
        self._file.write(json.dumps(row, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> StateWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: The longest line a JSON-lines reader takes (bytes); a longer one fails alone, unread.
MAX_LINE_BYTES = 16 << 20
#: The most lines a results file may hold (line breaks, blank lines included): a line is
#: one episode, and the largest leaderboard test set is a few hundred. A file with more is
#: refused whole, before any line is parsed, so that no per-line work scales with it.
MAX_RESULT_LINES = 100_000


def _raw_lines(f: Any) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, bytes)`` per line of the binary file ``f``; ``None`` for the bytes of a
    line longer than :data:`MAX_LINE_BYTES` (skipped without holding it in memory)."""
    lineno = 0
    while True:
        raw = f.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = f.readline(1 << 20)
            yield lineno, None
            continue
        yield lineno, raw


def json_lines(path: str | Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(line number, value, None)`` for each non-empty line of a JSON-lines file, or
    ``(line number, None, "malformed JSON: ...")`` for a line that does not parse (bytes
    that are not UTF-8, nesting too deep, a line over :data:`MAX_LINE_BYTES`): one bad line
    never stops the reading of the others. The message never quotes the line.

    ``ValueError`` (naming the file, its line count and the limit) before the first line
    when the file holds more than :data:`MAX_RESULT_LINES` lines."""
    from optgym.datasets.files import open_regular

    # never blocks (a FIFO swapped in) and reads no link's target in place of the file
    with open_regular(path, "results file", follow=True) as f:
        lines, tail = 0, b""
        while chunk := f.read(1 << 20):
            lines, tail = lines + chunk.count(b"\n"), chunk[-1:]
            if lines > MAX_RESULT_LINES:
                raise ValueError(
                    f"{path} has more than {MAX_RESULT_LINES} lines; at most "
                    f"{MAX_RESULT_LINES} allowed (one line an episode)"
                )
        if tail not in (b"", b"\n") and lines + 1 > MAX_RESULT_LINES:  # a last line, unended
            raise ValueError(
                f"{path} has {lines + 1} lines; at most {MAX_RESULT_LINES} allowed "
                "(one line an episode)"
            )
        f.seek(0)
        for lineno, raw in _raw_lines(f):
            if raw is None:
                yield lineno, None, f"line longer than {MAX_LINE_BYTES >> 20} MiB: not read"
                continue
            if not raw.strip():
                continue
            try:
                yield lineno, json.loads(raw.decode("utf-8")), None
            except UnicodeDecodeError as e:
                yield lineno, None, f"malformed JSON: not UTF-8 (byte {e.start})"
            except RecursionError:
                yield lineno, None, "malformed JSON: nested too deeply"
            except ValueError as e:
                # json's messages hold a position, never the text (an int too long to
                # convert names its digit count)
                yield lineno, None, f"malformed JSON: {str(e)[:200]}"


def check_benchmark_unchanged(state: EpisodeState, sha256: str, what: str = "benchmark") -> None:
    """``ValueError`` when the state records the sha256 of its benchmark's file and the file
    loaded now differs (``what`` names it in the message: "map", "task")."""
    claimed = (state.versions or {}).get("benchmark_sha256")
    if claimed and claimed != sha256:
        raise ValueError(
            f"the {what} of {state.benchmark} has changed: sha256 {sha256}, "
            f"the state was made on {claimed}"
        )
