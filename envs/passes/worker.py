"""The LLVM worker process: holds one module and runs passes on it in-process.

Started by :class:`optgym.envs.passes.backend.LlvmSession` as
``python -m optgym.envs.passes.worker <fd>``; it talks over the Unix socket ``fd`` with
length-prefixed pickles. A crash in LLVM (an abort, a fatal error) ends only this process.
``fork`` copies the worker with ``os.fork()``: the copy holds the very same in-memory module
(use-list order included), which re-parsing or ``CloneModule`` would not give.
"""

from __future__ import annotations

import array
import ctypes
import os
import pickle
import select
import signal
import socket
import struct
import sys
import time
from typing import Any

from optgym.envs.passes import diagnostics, native

HEADER = struct.Struct("<Q")
_FD_SPACE = socket.CMSG_SPACE(4 * 4)


class Channel:
    """Length-prefixed pickles over a non-blocking Unix socket, file descriptors included.

    ``recv`` first polls the socket for ``spin`` seconds before it sleeps: a reply that
    comes within that window skips a wake-up, which costs more than the step itself on small
    programs (about 38 us per round trip blocking, 6 us spinning, on a 2-core machine).
    """

    def __init__(self, sock: socket.socket):
        self.sock = sock
        sock.setblocking(False)
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def _wait(self, deadline: float | None) -> None:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
        if not self._poll.poll(timeout) and deadline is not None:
            raise TimeoutError("no reply from the LLVM worker in time")

    def recv(self, spin: float = 0.0, timeout: float | None = None) -> tuple[Any, list[int]]:
        """One message and the file descriptors sent with it; EOFError when closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        header = b""
        fds: list[int] = []
        spin_until = time.perf_counter() + spin
        while len(header) < HEADER.size:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(HEADER.size - len(header), _FD_SPACE)
            except BlockingIOError:
                if time.perf_counter() > spin_until:
                    self._wait(deadline)
                continue
            if not data:
                raise EOFError
            header += data
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
        (size,) = HEADER.unpack(header)
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        while got < size:
            try:
                n = self.sock.recv_into(view[got:], size - got)
            except BlockingIOError:
                self._wait(deadline)
                continue
            if not n:
                raise EOFError
            got += n
        return pickle.loads(buf), fds

    def send(self, obj: Any, fds: list[int] | None = None) -> None:
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        data = memoryview(HEADER.pack(len(payload)) + payload)
        sent = 0
        out = select.poll()
        out.register(self.sock, select.POLLOUT)
        while sent < len(data):
            try:
                if fds and sent == 0:
                    n = socket.send_fds(self.sock, [data], fds)
                else:
                    n = self.sock.send(data[sent:])
            except BlockingIOError:
                out.poll(1000)
                continue
            sent += n


class Worker:
    SPIN = 0.0003  # seconds to poll for the next command before sleeping

    def __init__(self, channel: Channel):
        self.channel = channel
        self.lib = native.load()
        self.mod: int | None = None
        self.source: tuple[bytes, bool] | None = None
        self.ic = (ctypes.c_int64 * native.INSTCOUNT_DIM)()
        self.ap = (ctypes.c_int64 * native.AUTOPHASE_DIM)()

    def _error(self) -> str:
        return self.lib.og_error().decode(errors="replace")

    def _parse(self, data: bytes, is_text: bool) -> int:
        mod = self.lib.og_load(data, len(data), int(is_text))
        if not mod:  # LLVM's message quotes the input: pass on only what is safe to show
            kind = "LLVM bitcode or IR text" if is_text else "valid LLVM bitcode"
            raise ValueError(f"is not {kind} ({diagnostics.parse_failure(self._error(), data)})")
        return mod

    def load(self, data: bytes, is_text: bool) -> None:
        mod = self._parse(data, is_text)
        if self.lib.og_inst_count(mod) == 0:  # a comment-only file parses as an empty module
            self.lib.og_free(mod)
            raise ValueError(
                "holds no instructions (an empty module, or declarations only): nothing to "
                "optimize, and its score would be 0"
            )
        if self.mod:
            self.lib.og_free(self.mod)
        self.mod, self.source = mod, (data, is_text)

    def run(self, mod: int, pipeline: str) -> None:
        if self.lib.og_run(mod, pipeline.encode()):
            raise ValueError(f"running {pipeline!r} failed: {self._error()}")

    def observe(self, mod: int, names: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        lib = self.lib
        if "InstCount" in names or "Autophase" in names:
            lib.og_features(mod, self.ic, self.ap)
        for name in names:
            if name == "IrInstructionCount":
                out[name] = lib.og_inst_count(mod)
            elif name == "InstCount":
                out[name] = bytes(self.ic)
            elif name == "Autophase":
                out[name] = bytes(self.ap)
            elif name == "Ir":
                ptr = lib.og_print(mod)
                out[name] = ctypes.string_at(ptr).decode(errors="replace")
                lib.og_dispose_message(ptr)
            elif name == "Bitcode":
                buf = lib.og_bitcode(mod)
                out[name] = ctypes.string_at(lib.og_buffer_start(buf), lib.og_buffer_size(buf))
                lib.og_buffer_free(buf)
            elif name == "ObjectTextSizeBytes":
                out[name] = self._text_size(mod)
            elif name == "Programl":
                g = lib.og_graph_build(mod)
                n, e = lib.og_graph_num_nodes(g), lib.og_graph_num_edges(g)
                nodes = ctypes.string_at(lib.og_graph_nodes(g), 8 * 3 * n) if n else b""
                edges = ctypes.string_at(lib.og_graph_edges(g), 8 * 4 * e) if e else b""
                lib.og_graph_free(g)
                out[name] = (nodes, edges)
            else:
                raise ValueError(f"unknown observation {name!r}")
        return out

    def _text_size(self, mod: int) -> int:
        # Codegen rewrites the IR it lowers, so emit from a forked copy of this process.
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            size = self.lib.og_text_size(mod)
            msg = str(size) if size >= 0 else "error:" + self._error()
            os.write(w, msg.encode())
            os._exit(0)
        os.close(w)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        os.close(r)
        text = b"".join(chunks).decode(errors="replace")
        if not text:
            raise ValueError("LLVM crashed while emitting object code")
        if text.startswith("error:"):
            raise ValueError(f"emitting object code failed: {text[6:]}")
        return int(text)

    def reference(self, pipeline: str, names: tuple[str, ...]) -> dict[str, Any]:
        """Observations of the original module after ``pipeline``, on a fresh parse."""
        assert self.source is not None
        mod = self._parse(*self.source)
        try:
            self.run(mod, pipeline)
            return self.observe(mod, names)
        finally:
            self.lib.og_free(mod)

    def fork(self, fds: list[int]) -> int:
        if len(fds) != 1:
            raise ValueError("fork needs exactly one socket")
        pid = os.fork()
        if pid == 0:
            self.channel.close()
            self.channel = Channel(socket.socket(fileno=fds[0]))
            return 0
        os.close(fds[0])
        return pid

    def serve(self) -> None:
        while True:
            try:
                msg, fds = self.channel.recv(spin=self.SPIN)
            except (EOFError, ConnectionError):
                return
            cmd = msg[0]
            try:
                if cmd == "run":
                    self.run(self.mod, msg[1])
                    reply = ("ok", self.observe(self.mod, msg[2]))
                elif cmd == "observe":
                    reply = ("ok", self.observe(self.mod, msg[1]))
                elif cmd == "load":
                    self.load(msg[1], msg[2])
                    reply = ("ok", None)
                elif cmd == "reference":
                    reply = ("ok", self.reference(msg[1], msg[2]))
                elif cmd == "fork":
                    pid = self.fork(fds)
                    if pid == 0:
                        self.channel.send(("ok", os.getpid()))
                        continue
                    reply = ("ok", pid)
                elif cmd == "version":
                    reply = ("ok", native.llvm_version())
                elif cmd == "close":
                    self.channel.send(("ok", None))
                    return
                else:
                    reply = ("err", f"unknown command {cmd!r}")
            except Exception as e:  # reported to the env, which raises it there
                reply = ("err", str(e))
            self.channel.send(reply)


def main() -> None:
    # Forked copies and codegen probes are never waited for: let the kernel reap them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the user's process's to handle
    Worker(Channel(socket.socket(fileno=int(sys.argv[1])))).serve()
    os._exit(0)


if __name__ == "__main__":
    main()
