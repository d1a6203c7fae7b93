"""Client side of the LLVM worker: one :class:`LlvmSession` per environment.

A session owns a worker process (``native/optgym_llvm.cpp``, started by
:func:`optgym.envs.passes.native.spawn`) holding one module. Each request is one fixed
struct and its payload over a Unix socket, and each reply one struct, the observations
asked for and the time the worker spent. When LLVM crashes the worker, the next request
raises :class:`BackendCrash`; the environment reports it for that episode and starts a new
worker on the next reset.

Waiting for a reply polls the socket for a short while, and sleeps in the kernel after that,
but only while the machine has a core to spare (fewer runnable processes than cores, read
from ``/proc/loadavg``): a reply that arrives within the poll skips a wake-up from sleep,
which costs tens of microseconds on a virtual machine, and polling costs nothing while a
core is idle. When other processes want the cores, the session sleeps at once, and so does
the worker between requests.
"""

from __future__ import annotations

import atexit
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from typing import Any

import numpy as np

from optgym.env import BackendCrash as _EpisodeCrash
from optgym.envs.passes import diagnostics, native

# The wire format; native/optgym_llvm.cpp holds the same numbers.
REQUEST = struct.Struct("<IIQ")  # command, argument, payload length
REPLY = struct.Struct("<iIQQ")  # status, observation mask, payload length, worker ns
LOAD, RUN, REFERENCE, FORK, TRY, VERSION, CLOSE, STATUS = range(1, 9)
OK, ERROR, CRASHED, TIMED_OUT = 0, 1, 2, 3
#: Observation names and their bits in a request's mask; replies hold them in this order.
OBSERVATION_BITS: dict[str, int] = {
    "IrInstructionCount": 1,
    "InstCount": 2,
    "Autophase": 4,
    "Ir": 8,
    "Bitcode": 16,
    "ObjectTextSizeBytes": 32,
    "Programl": 64,
}
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_STATUS = struct.Struct("<i")


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


def mask_of(names: tuple[str, ...]) -> int:
    """The request mask for observation ``names`` (keys of :data:`OBSERVATION_BITS`)."""
    mask = 0
    for name in names:
        mask |= OBSERVATION_BITS[name]
    return mask


_FIXED = {"IrInstructionCount": 0, "ObjectTextSizeBytes": 0,
          "InstCount": native.INSTCOUNT_DIM, "Autophase": native.AUTOPHASE_DIM}  # fmt: skip
_LAYOUTS: dict[int, tuple[tuple[str, int], ...]] = {}


def _layout(mask: int) -> tuple[tuple[str, int], ...]:
    """The observations a reply to ``mask`` holds, in order, with their int64 counts (0: one
    number, -1: a length-prefixed blob)."""
    layout = _LAYOUTS.get(mask)
    if layout is None:
        layout = tuple(
            (name, _FIXED.get(name, -1)) for name, bit in OBSERVATION_BITS.items() if mask & bit
        )
        _LAYOUTS[mask] = layout
    return layout


def decode(mask: int, body: memoryview) -> dict[str, Any]:
    """The observations of a reply: counts as ``int``, InstCount and Autophase as int64
    arrays, ``Ir`` as ``str``, ``Bitcode`` as ``bytes``, ``Programl`` as the (nodes,
    edges) int64 buffers."""
    out: dict[str, Any] = {}
    at = 0

    def blob() -> bytes:
        nonlocal at
        (n,) = _U64.unpack_from(body, at)
        at += 8 + n
        return bytes(body[at - n : at])

    for name, n in _layout(mask):
        if n == 0:
            out[name] = _I64.unpack_from(body, at)[0]
            at += 8
        elif n > 0:
            out[name] = np.frombuffer(body, dtype=np.int64, count=n, offset=at).copy()
            at += 8 * n
        elif name == "Ir":
            out[name] = blob().decode(errors="replace")
        elif name == "Bitcode":
            out[name] = blob()
        else:
            out[name] = (blob(), blob())
    return out


def _spare_core(_fd: list[int] = []) -> bool:  # noqa: B006  the fd, opened once
    """Whether fewer processes are runnable than this process may use cores."""
    if not _fd:
        try:
            _fd.append(os.open("/proc/loadavg", os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            _fd.append(-1)
    if _fd[0] < 0:
        return False
    try:
        running = int(os.pread(_fd[0], 128, 0).split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return False
    return running <= _CPUS


_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


class Channel:
    """Requests and replies over a non-blocking Unix socket (see the module's docstring)."""

    SPIN = 0.005  # seconds to poll for a reply before sleeping, while a core is spare
    _LOAD_CHECK = 0.0005  # seconds a spare-core answer is kept

    def __init__(self, sock: socket.socket):
        self.sock = sock
        sock.setblocking(False)
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._buf = bytearray(1 << 16)
        self._spin_ok = False
        self._checked = 0.0
        #: Seconds the worker spent on the last request, by its own clock.
        self.worker_seconds = 0.0

    def close(self) -> None:
        self.sock.close()

    def send(self, command: int, argument: int = 0, payload: bytes = b"",
             fds: list[int] | None = None) -> None:  # fmt: skip
        header = REQUEST.pack(command, argument, len(payload))
        if fds:
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))]
            self._sendall(header + payload, ancillary)
        elif len(payload) < 4096:
            self._sendall(header + payload)
        else:
            self._sendall(header)
            self._sendall(payload)

    def _sendall(self, data: bytes, ancillary: list | None = None) -> None:
        view = memoryview(data)
        while view:
            try:
                if ancillary:
                    n = self.sock.sendmsg([view], ancillary)
                    ancillary = None
                else:
                    n = self.sock.send(view)
            except BlockingIOError:
                select.select([], [self.sock], [], 1.0)
                continue
            view = view[n:]

    def _spare_core(self, now: float) -> bool:
        """Whether a core is spare, asked again at most every ``_LOAD_CHECK`` seconds."""
        if now - self._checked > self._LOAD_CHECK:
            self._spin_ok, self._checked = _spare_core(), now
        return self._spin_ok

    def _wait(self, deadline: float | None) -> None:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
        if not self._poll.poll(timeout) and deadline is not None:
            raise TimeoutError("no reply from the LLVM worker in time")

    def receive(
        self, timeout: float | None = None, spin: bool = True
    ) -> tuple[int, int, memoryview]:
        """The next reply's status, observation mask and payload; ``EOFError`` when the
        worker is gone, ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        now = time.perf_counter()
        # The spin never outlasts the timeout: a reply that comes after it is a timeout,
        # even when it comes while we spin.
        spin = spin and (timeout is None or timeout > self.SPIN)
        spin_until = now + self.SPIN if spin and self._spare_core(now) else 0.0
        buf, sock = self._buf, self.sock
        got = 0
        while got < REPLY.size:
            try:
                n = sock.recv_into(memoryview(buf)[got:])
            except BlockingIOError:
                if spin_until:  # poll on while the reply may come soon and no one waits
                    now = time.perf_counter()
                    if now < spin_until and self._spare_core(now):
                        continue
                    spin_until = 0.0
                self._wait(deadline)
                continue
            if not n:
                raise EOFError
            got += n
        status, mask, length, ns = REPLY.unpack_from(buf)
        self.worker_seconds = ns * 1e-9
        end = REPLY.size + length
        if end <= len(buf):
            while got < end:
                got += self._read_into(memoryview(buf)[got:end], deadline)
            return status, mask, memoryview(buf)[REPLY.size : end]
        body = bytearray(length)
        have = got - REPLY.size
        body[:have] = buf[REPLY.size : got]
        view = memoryview(body)
        while have < length:
            have += self._read_into(view[have:], deadline)
        return status, mask, view

    def _read_into(self, view: memoryview, deadline: float | None) -> int:
        while True:
            try:
                n = self.sock.recv_into(view)
            except BlockingIOError:
                self._wait(deadline)
                continue
            if not n:
                raise EOFError
            return n


class LlvmSession:
    """A connection to one LLVM worker process holding one module."""

    def __init__(
        self, sock: socket.socket, pid: int, proc: subprocess.Popen | None, timeout: float
    ):
        self.channel = Channel(sock)
        self.pid = pid
        self.proc = proc
        self.timeout = timeout
        self.closed = False
        self.log: Any = None  # the worker's stderr, a file shared with the workers it forks
        self.log_start = 0  # where this worker's own lines may start in it
        self.parent: LlvmSession | None = None  # the worker this one was forked from
        self.data: bytes | None = None  # the program loaded last: a crash log never quotes it

    @classmethod
    def start(cls, timeout: float = 600.0) -> LlvmSession:
        """Start a worker; builds it first so that errors surface here."""
        native.worker_bytes()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log = tempfile.TemporaryFile()
        try:
            proc = native.spawn(
                [str(child.fileno())], (child.fileno(),), cwd=_scratch_dir(),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=log,  # a file, not a pipe: a chatty LLVM must never block on it
            )  # fmt: skip
        finally:
            child.close()
        session = cls(parent, proc.pid, proc, timeout)
        session.log = log
        return session

    # ---- requests ------------------------------------------------------------------------
    def request(
        self, command: int, argument: int = 0, payload: bytes = b"", what: str = ""
    ) -> tuple[int, memoryview]:
        """Send one request and wait for its reply: the observation mask and payload.
        ``BackendError`` with the worker's message when it refused; ``BackendCrash`` when the
        worker died or timed out (it is then killed). ``what`` names the request in
        messages."""
        if self.closed:
            raise BackendCrash("the LLVM worker was closed")
        since = self._log_end() if command == REFERENCE else 0
        try:
            self.channel.send(command, argument, payload)
            status, mask, body = self.channel.receive(self.timeout)
        except (EOFError, ConnectionError, OSError) as e:
            raise self._crashed(what or f"request {command}", e) from None
        if status == CRASHED:  # LLVM crashed in a copy the worker made for it, not in it
            raise BackendCrash(f"the LLVM worker died during {what!r}{self._log_lines(since)}")
        if status != OK:
            raise BackendError(bytes(body).decode(errors="replace"))
        return mask, body

    def _log_end(self) -> int:
        try:
            return self.log.seek(0, os.SEEK_END) if self.log is not None else 0
        except (ValueError, OSError):
            return 0

    def _log_lines(self, since: int) -> str:
        """``": "`` and LLVM's fatal-error lines in the log after ``since``, scrubbed of
        quotes and of the program's bytes; ``""`` when there are none."""
        if self.log is None:
            return ""
        try:
            end = self._log_end()
            self.log.seek(max(since, end - 65536))  # the tail is enough
            err = self.log.read().decode(errors="replace").strip()
        except (ValueError, OSError):
            return ""
        err = diagnostics.worker_log(err, self.data)
        return f": {err}" if err else ""

    def load(self, data: bytes, is_text: bool) -> int:
        """Parse and verify ``data`` (bitcode, or IR text) as the module; its instruction
        count."""
        mask, body = self.request(LOAD, int(is_text), data, "load")
        return _I64.unpack_from(body)[0]

    def run(self, pipeline: str, names: tuple[str, ...]) -> dict[str, Any]:
        """Run ``pipeline`` on the module (``""``: nothing) and observe ``names``."""
        mask, body = self.request(RUN, mask_of(names), pipeline.encode(), "run")
        return decode(mask, body)

    def observe(self, names: tuple[str, ...]) -> dict[str, Any]:
        return self.run("", names)

    def reference(self, pipeline: str, names: tuple[str, ...]) -> dict[str, Any]:
        """Observations of the program as loaded after ``pipeline``, on a fresh parse."""
        mask, body = self.request(REFERENCE, mask_of(names), pipeline.encode(), "reference")
        return decode(mask, body)

    def try_each(
        self, pipelines: list[str], names: tuple[str, ...], seconds: float | None = None
    ) -> list[dict[str, Any] | str]:
        """Run each pipeline on its own ``fork()`` of the worker, from the module as it is
        (which stays as it is): per pipeline its observations, or a message (LLVM refused,
        crashed in that copy alone, or ``seconds`` ran out before it finished: the worker
        then kills the copies still running and answers, and lives on)."""
        limit = 0 if seconds is None else max(1, int(seconds * 1e9))
        payload = _U64.pack(limit) + b"\0".join(p.encode() for p in pipelines)
        timeout = self.timeout
        if seconds is not None:  # the worker answers at its limit: wait a little longer
            self.timeout = seconds + 5.0
        try:
            mask, body = self.request(TRY, mask_of(names), payload, "try")
        finally:
            self.timeout = timeout
        out: list[dict[str, Any] | str] = []
        at = 0
        for _ in pipelines:
            (status,) = _STATUS.unpack_from(body, at)
            (n,) = _U64.unpack_from(body, at + 4)
            chunk = body[at + 12 : at + 12 + n]
            at += 12 + n
            if status == OK:
                out.append(decode(mask, chunk))
            else:
                out.append(bytes(chunk).decode(errors="replace"))
        return out

    def version(self) -> str:
        return bytes(self.request(VERSION, what="version")[1]).decode()

    # ---- life and death --------------------------------------------------------------------
    def _crashed(self, cmd: str, cause: BaseException) -> BackendCrash:
        reason = "timed out" if isinstance(cause, TimeoutError) else "died"
        self.kill()
        detail = self._exit_detail() + self._log_lines(self.log_start)
        return BackendCrash(f"the LLVM worker {reason} during {cmd!r}{detail}")

    def _exit_detail(self) -> str:
        """How the (killed or dead) worker ended: `` (killed by SIGSEGV)``, `` (exit status
        1)`` or ``""``, from its parent: this process, or the worker it was forked from."""
        code: int | None = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                return ""
        elif self.parent is not None and not self.parent.closed:
            try:
                _, body = self.parent.request(STATUS, 0, _I64.pack(self.pid), "status")
            except (BackendError, BackendCrash):
                return ""
            wstatus = _I64.unpack_from(body)[0]
            if os.WIFSIGNALED(wstatus):
                code = -os.WTERMSIG(wstatus)
            elif os.WIFEXITED(wstatus):
                code = os.WEXITSTATUS(wstatus)
        if code is not None and code < 0:
            try:
                return f" (killed by {signal.Signals(-code).name})"
            except ValueError:
                return f" (killed by signal {-code})"
        return f" (exit status {code})" if code else ""

    def fork(self) -> LlvmSession:
        """A new session whose worker is a ``fork()`` of this one, module state included."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.channel.send(FORK, fds=[theirs.fileno()])
            status, _, body = self.channel.receive(self.timeout)
        except (EOFError, ConnectionError, OSError) as e:
            mine.close()
            raise self._crashed("fork", e) from None
        finally:
            theirs.close()
        if status != OK:
            mine.close()
            raise BackendError(bytes(body).decode(errors="replace"))
        session = LlvmSession(mine, _I64.unpack_from(body)[0], None, self.timeout)
        session.data = self.data
        session.parent = self
        if self.log is not None:  # the copy writes to the same file, from here on
            session.log = self.log
            session.log_start = self._log_end()
        try:  # the copy says hello on its own socket once it serves it
            session.channel.receive(self.timeout, spin=False)
        except (EOFError, ConnectionError, OSError) as e:
            raise session._crashed("fork", e) from None
        return session

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
        if self.log is not None and self.parent is None:  # forks share their parent's
            self.log.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
