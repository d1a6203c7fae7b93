"""Client side of the LLVM worker: one :class:`LlvmSession` per environment.

A session owns a worker process (see ``worker.py``). When LLVM crashes the worker, the
next request raises :class:`BackendCrash`; the environment reports it for that episode and
starts a new worker on the next reset.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from typing import Any

from optgym.env import BackendCrash as _EpisodeCrash
from optgym.envs.passes import diagnostics, native
from optgym.envs.passes.worker import Channel


class BackendError(RuntimeError):
    """LLVM reported an error (bad bitcode, a failed pipeline); the worker lives on."""


class BackendCrash(_EpisodeCrash):
    """The worker process died (an LLVM abort, a fatal error, a signal, a timeout)."""


_SCRATCH: str | None = None


def _scratch_dir() -> str:
    # Passes such as insert-gcov-profiling write files into the working directory.
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = tempfile.mkdtemp(prefix="optgym-llvm-")
        atexit.register(shutil.rmtree, _SCRATCH, True)
    return _SCRATCH


class LlvmSession:
    """A connection to one LLVM worker process holding one module."""

    SPIN = 0.0005  # seconds to poll for a reply before sleeping (see Channel)

    def __init__(
        self, sock: socket.socket, pid: int, proc: subprocess.Popen | None, timeout: float
    ):
        self.channel = Channel(sock)
        self.pid = pid
        self.proc = proc
        self.timeout = timeout
        self.closed = False
        self.log: Any = None
        self.data: bytes | None = None  # the program loaded last: a crash log never quotes it

    @classmethod
    def start(cls, timeout: float = 600.0) -> LlvmSession:
        """Start a worker; builds the native bridge first so errors surface here."""
        native.library_path()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            [sys.executable, "-m", "optgym.envs.passes.worker", str(child.fileno())],
            pass_fds=[child.fileno()],
            cwd=_scratch_dir(),
            stdin=subprocess.DEVNULL,
            stderr=log,  # a file, not a pipe: a chatty LLVM must never block on it
        )
        child.close()
        session = cls(parent, proc.pid, proc, timeout)
        session.log = log
        return session

    def request(self, *msg: Any) -> Any:
        if self.closed:
            raise BackendCrash("the LLVM worker was closed")
        try:
            self.channel.send(msg)
            status, value = self.channel.recv(spin=self.SPIN, timeout=self.timeout)[0]
        except (EOFError, ConnectionError, OSError) as e:
            raise self._crashed(msg[0], e) from None
        if status == "err":
            raise BackendError(value)
        return value

    def _crashed(self, cmd: str, cause: BaseException) -> BackendCrash:
        reason = "timed out" if isinstance(cause, TimeoutError) else "died"
        detail = ""
        self.kill()
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=5)
                if code < 0:
                    detail = f" (killed by {signal.Signals(-code).name})"
                elif code:
                    detail = f" (exit status {code})"
                err = ""
                if self.log is not None:
                    self.log.seek(0, os.SEEK_END)
                    self.log.seek(max(0, self.log.tell() - 65536))  # the tail is enough
                    err = self.log.read().decode(errors="replace").strip()
                # Only LLVM's fatal-error lines, scrubbed of quotes and of the program's bytes.
                err = diagnostics.worker_log(err, self.data)
                if err:
                    detail += f": {err}"
            except (subprocess.TimeoutExpired, ValueError, OSError):
                pass
        return BackendCrash(f"the LLVM worker {reason} during {cmd!r}{detail}")

    def fork(self) -> LlvmSession:
        """A new session whose worker is a ``fork()`` of this one, module state included."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.channel.send(("fork",), fds=[theirs.fileno()])
            status, pid = self.channel.recv(timeout=self.timeout)[0]
        except (EOFError, ConnectionError, OSError) as e:
            mine.close()
            raise self._crashed("fork", e) from None
        finally:
            theirs.close()
        if status == "err":
            mine.close()
            raise BackendError(pid)
        session = LlvmSession(mine, pid, None, self.timeout)
        session.data = self.data
        session.request_handshake()
        return session

    def request_handshake(self) -> None:
        try:
            self.channel.recv(timeout=self.timeout)
        except (EOFError, ConnectionError, OSError) as e:
            raise self._crashed("fork", e) from None

    def kill(self) -> None:
        """End the worker now."""
        if self.closed:
            return
        self.closed = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.channel.close()

    def close(self) -> None:
        if self.closed:
            return
        self.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.log is not None:
            self.log.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
