"""Executors: where episodes (and training runs) run, behind one ``concurrent.futures`` shape.

Every executor has ``submit(fn, *args) -> Future``, ``shutdown()``, works as a context manager,
and says how many calls it runs at once (``capacity``). Three backends:

* :class:`LocalExecutor` (the default, ``--executor local``): each call in its own process,
  at most ``workers`` at a time. The process gets its own cgroup where the machine allows it
  (:mod:`optgym.cgroups`: root, or a delegated subtree) and leads its own process group, so
  the backends it starts (LLVM, SCIP and Halide workers), and any process they start in
  another session, go with it: the kernel holds the call to ``memory_mb`` and ``pids``, and
  a call past its ``timeout`` or ``cpu_seconds`` is ended by killing every process of its
  cgroup and group. Without cgroups, memory is the group's resident memory, sampled every
  0.25 s. A native crash ends only that call. A small guardian kills the call's processes
  too when the process that submitted the call dies, so no backend outlives its executor.
* :class:`RayExecutor` (``--executor ray``, the ``optgym[ray]`` extra): each call is a Ray
  task with the problem's resource request (CPUs, memory) that runs the call the same way, in
  a child process of the Ray worker. A crash inside the call is its result (Ray does not
  retry it); only a Ray worker that dies is retried by Ray.
* :class:`InlineExecutor` (``--executor inline``): in the calling process, one at a time;
  for debugging and as the reference that ``benchmarks/executor_overhead.py`` measures.

A call's value comes back as JSON, never as a pickle (a call may run an untrusted agent,
whose process could send anything): calls return JSON values, and a call's exception comes
back as its type name and message (a built-in type is raised as itself). A call that ends
without an answer raises :class:`CallFailed` from its future: the message says why (timed
out, over memory, killed by a signal, the Ray worker died).

>>> with LocalExecutor(workers=2, limits=Limits(timeout=60)) as ex:
...     print(ex.submit(pow, 2, 10).result())
1024
"""

from __future__ import annotations

import builtins
import ctypes
import ctypes.util
import json
import math
import multiprocessing
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from optgym.problem import Resources

if TYPE_CHECKING:
    from optgym.cgroups import Cgroup

#: The executor names of ``optgym bench --executor``.
EXECUTORS = ("local", "inline", "ray")
#: What a call asks a Ray cluster for where its problem's record says nothing else.
DEFAULT_RESOURCES = Resources()
#: Wall-time limit of one episode on the local and Ray executors, in seconds, unless given.
DEFAULT_TIMEOUT = 3600.0

#: The longest answer a call's process may send back (its JSON), in bytes.
MAX_ANSWER_BYTES = 256 * 2**20
_MAX_MESSAGE = 4096
# How often a running call's memory is measured, in seconds.
_POLL = 0.25
_PR_SET_PDEATHSIG = 1
#: Modules the process that forks every local call imports once, so calls start warm (a
#: sandboxed agent's host imports them too before its clock starts).
PRELOAD = ("optgym.bench", "optgym.agents", "optgym.envs", "optgym.wrappers", "numpy", "torch")


class CallFailed(RuntimeError):
    """A call ended without a result: timed out, over its memory limit, killed or crashed."""


#: The units of each limit of :class:`Limits`, for messages.
_LIMIT_UNITS = {"timeout": "seconds", "memory_mb": "MiB", "cpu_seconds": "CPU seconds",
                "pids": "processes and threads"}  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """What one call may use, its process and every process it starts together: ``timeout``
    seconds of wall time, ``memory_mb`` MiB of memory, ``cpu_seconds`` of CPU time and
    ``pids`` processes and threads at once; None is no limit. ``initializer`` runs in the
    call's process before the call (e.g. :func:`optgym.isolation.no_network`).
    ``require_cgroup``: refuse to run a call without a cgroup (:mod:`optgym.cgroups`), as
    the leaderboard's sandbox does; otherwise a machine without them falls back to process
    groups (``pids`` and ``cpu_seconds`` are then not enforced, memory is sampled)."""

    timeout: float | None = None
    memory_mb: float | None = None
    initializer: Callable[[], None] | None = None
    cpu_seconds: float | None = None
    pids: int | None = None
    require_cgroup: bool = False

    def __post_init__(self) -> None:
        for name, unit in _LIMIT_UNITS.items():
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a positive number of {unit} or None, "
                                 f"got {value!r}")  # fmt: skip


# --- one call in its own process group --------------------------------------------------------


_preload: list[str] = []


def preload(modules: Iterable[str]) -> None:
    """Have the fork server import ``modules`` (an env's module, say) too, so that every call
    starts with them imported. Effective only before this process's fork server starts (at
    its first call); modules that cannot be imported are left to the calls."""
    _preload.extend(m for m in modules if m not in _preload)


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    # Effective only before this process's fork server starts; later calls change nothing.
    context.set_forkserver_preload([*PRELOAD, *_preload])
    return context


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:  # not Linux: the guardian still ends the group
        pass


def _leader(
    send: Any, watch: Any, fn: Callable, args: tuple, kwargs: dict, environ: dict, cwd: str,
    initializer: Callable[[], None] | None, group: Cgroup | None,
) -> None:  # fmt: skip
    """The call's process: leads its own group, starts the guardian, enters the call's
    cgroup, runs the call and sends ``("ok", value)`` or ``("raised", exception)`` back."""
    os.setpgid(0, 0)
    _die_with_parent()
    # The guardian holds only the read end of the watch pipe: when the submitting process
    # closes its end (the call is over) or dies, the read sees end-of-file and the guardian
    # kills the cgroup and the group, backends included. It stays outside the cgroup, so
    # freezing the cgroup does not freeze it.
    kill = f"{group.kill_command()} 2>/dev/null; " if group is not None else ""
    subprocess.Popen(
        ["/bin/sh", "-c", f"cat >/dev/null; {kill}kill -KILL 0"],
        stdin=watch.fileno(), stdout=subprocess.DEVNULL,
    )  # fmt: skip
    watch.close()
    if group is not None:
        group.join()
    os.environ.clear()
    os.environ.update(environ)
    try:
        os.chdir(cwd)
    except OSError:
        pass
    try:
        if initializer is not None:
            initializer()
        outcome: dict[str, Any] = {"ok": fn(*args, **kwargs)}
    except BaseException as e:  # noqa: BLE001  the call's exception is its result
        outcome = {"raised": [type(e).__name__, str(e)[:_MAX_MESSAGE]]}
    try:
        payload = json.dumps(outcome).encode()
    except (TypeError, ValueError) as e:
        why = f"the call's value is not JSON ({e}); calls return JSON values"
        payload = json.dumps({"raised": ["CallFailed", why]}).encode()
    send.send_bytes(payload)
    send.close()


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _decode(payload: bytes) -> tuple[bool, Any]:
    """A call's answer, read as data only: ``{"ok": value}`` or ``{"raised": [type, message]}``
    (a built-in exception type is raised as itself, any other as :class:`CallFailed`). What
    a call's process sends is never unpickled: the call may run an untrusted agent."""
    try:
        outcome = json.loads(payload)
    except (ValueError, RecursionError):
        outcome = None
    if isinstance(outcome, dict) and len(outcome) == 1 and "ok" in outcome:
        return True, outcome["ok"]
    raised = outcome.get("raised") if isinstance(outcome, dict) and len(outcome) == 1 else None
    if not (isinstance(raised, list) and len(raised) == 2 and all(map(_is_text, raised))):
        return False, CallFailed("the call's process sent back something that is not an answer")
    name, message = raised
    kind = getattr(builtins, name, None)
    if name != "CallFailed" and isinstance(kind, type) and issubclass(kind, Exception):
        return False, kind(message)
    return False, CallFailed(message if name == "CallFailed" else f"{name}: {message}")


def _group_usage(pgids: set[int]) -> dict[int, tuple[float, float]]:
    """(resident memory in MiB, CPU seconds of the live processes and the children they
    waited for) of every process group in ``pgids``, from /proc."""
    total = dict.fromkeys(pgids, (0.0, 0.0))
    page = os.sysconf("SC_PAGE_SIZE") / 2**20
    tick = float(os.sysconf("SC_CLK_TCK"))
    try:
        names = os.listdir("/proc")
    except OSError:
        return total
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        pgrp = int(fields[2])
        if pgrp in total:
            mb, cpu = total[pgrp]
            ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            total[pgrp] = (mb + int(fields[21]) * page, cpu + ticks / tick)
    return total


def _kill_group(pid: int) -> None:
    """Kill the group ``pid`` leads, and ``pid`` itself in case it has not made its group
    yet."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _signal_text(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code} before sending a result"


def _cgroup_for(limits: Limits) -> Cgroup | None:
    """A new cgroup holding ``limits`` for one call, None where the machine has none (or
    ``CallFailed`` when the limits require one)."""
    from optgym import cgroups

    why = cgroups.unavailable()
    if why is not None:
        if limits.require_cgroup:
            raise CallFailed(f"the call needs a cgroup and cannot have one: {why}")
        return None
    try:
        return cgroups.Cgroup.create("call", limits.memory_mb, limits.pids)
    except RuntimeError as e:
        if limits.require_cgroup:
            raise CallFailed(str(e)) from None
        return None


class _Running:
    """One started call: its process, its cgroup, the pipe it answers on and its limits."""

    def __init__(self, future: Future, fn: Callable, args: tuple, kwargs: dict, limits: Limits):
        context = _context()
        self.future = future
        self.limits = limits
        self.group = _cgroup_for(limits)
        self.recv, send = context.Pipe(duplex=False)
        watch_r, self.watch = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_leader, daemon=False,
            args=(send, watch_r, fn, args, kwargs, dict(os.environ), os.getcwd(),
                  limits.initializer, self.group),
        )  # fmt: skip
        try:
            self.process.start()
        except BaseException:
            if self.group is not None:
                self.group.remove()
            raise
        send.close()
        watch_r.close()
        self.started = time.monotonic()
        self.peak_mb = 0.0
        self.cpu = 0.0

    @property
    def deadline(self) -> float | None:
        """When the call runs out of wall time (``time.monotonic``), or None."""
        timeout = self.limits.timeout
        return None if timeout is None else self.started + timeout

    @property
    def overdue(self) -> bool:
        deadline = self.deadline
        return deadline is not None and time.monotonic() >= deadline

    def measure(self, usage: dict[int, tuple[float, float]]) -> str | None:
        """Update the call's peak memory and CPU time (from its cgroup, else from ``usage``,
        the process groups' sample) and say which limit it is past, or None."""
        limits = self.limits
        if self.group is not None:
            self.peak_mb = max(self.peak_mb, self.group.memory_peak_mb())
            self.cpu = self.group.cpu_seconds()
            if self.group.oom_kills():
                return _memory_text(max(self.peak_mb, limits.memory_mb or 0), limits, killed=True)
        elif self.process.pid in usage:
            mb, self.cpu = usage[self.process.pid]
            self.peak_mb = max(self.peak_mb, mb)
            if limits.memory_mb is not None and mb > limits.memory_mb:
                return _memory_text(mb, limits)
        if limits.cpu_seconds is not None and self.cpu > limits.cpu_seconds:
            return (f"used {self.cpu:.1f} s of CPU time, over the per-call CPU limit of "
                    f"{limits.cpu_seconds:g} s")  # fmt: skip
        return None

    def finish(self) -> tuple[bool, Any]:
        """Collect the outcome once the pipe or the process is ready: (ok, value or error)."""
        outcome: tuple[bool, Any] | None = None
        try:
            if self.recv.poll():
                outcome = _decode(self.recv.recv_bytes(maxlength=MAX_ANSWER_BYTES))
        except EOFError:
            outcome = None
        except OSError:  # longer than maxlength
            why = f"the call's answer is over {MAX_ANSWER_BYTES // 2**20} MiB"
            outcome = (False, CallFailed(why))
        # A limit the call went past while it ran (the kernel killed a process of it for
        # memory, say) fails it, whatever it answered.
        over = self.measure({})
        # With the answer in hand, what the call left running (its backends, a process
        # still finalizing) is of no use: end the group now rather than wait for it.
        self.close()
        self.process.join(timeout=10)
        if over is not None:
            return False, CallFailed(over)
        if outcome is None:
            return False, CallFailed(f"the call's process {_signal_text(self.process.exitcode)}")
        return outcome

    def kill(self, why: str) -> tuple[bool, Any]:
        self.close()
        self.process.join(timeout=10)
        return False, CallFailed(why)

    def close(self) -> None:
        """End every process of the call (its cgroup and its group: the backends it left
        behind, and any that left the group) and its guardian."""
        if self.group is not None:
            self.group.remove()
        if self.process.pid is not None:
            _kill_group(self.process.pid)
        for conn in (self.recv, self.watch):
            try:
                conn.close()
            except OSError:
                pass


def _over_limits(running: list[_Running]) -> list[tuple[_Running, str]]:
    """Measure every running call (its peak memory and CPU time are kept) and return those
    past a limit, with the reason."""
    sampled = {r.process.pid for r in running if r.group is None and r.process.pid is not None}
    usage = _group_usage(sampled) if sampled else {}
    over = []
    for run in running:
        why = run.measure(usage)
        if why is not None:
            over.append((run, why))
    return over


def _settle(future: Future, ok: bool, value: Any, peak_mb: float | None = None) -> None:
    if future.done():
        return
    # What the call's group used at most, sampled every _POLL seconds (0 for a shorter call).
    future.peak_mb = peak_mb  # type: ignore[attr-defined]
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def run_in_child(fn: Callable, *args: Any, limits: Limits = Limits(), **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in its own process group under ``limits`` (a
    :class:`LocalExecutor` of one call); returns its value, raises its exception, or
    :class:`CallFailed` when the process ends without one."""
    with LocalExecutor(1, limits) as executor:
        return executor.submit(fn, *args, **kwargs).result()


def _timeout_text(limits: Limits) -> str:
    return f"timed out after {limits.timeout:g} s (the per-call limit)"


def _memory_text(mb: float, limits: Limits, killed: bool = False) -> str:
    if killed:
        return (f"reached the per-call memory limit of {limits.memory_mb:g} MiB (the kernel "
                "killed a process of the call)")  # fmt: skip
    return f"used {mb:.0f} MiB, over the per-call memory limit of {limits.memory_mb:g} MiB"


# --- executors --------------------------------------------------------------------------------


class OptGymExecutor(Executor):
    """The executor interface: ``concurrent.futures.Executor`` plus ``capacity``, the number
    of calls worth having in flight at once (a runner submits no more than that, so that
    results stream back as they finish)."""

    capacity: int = 1

    def __enter__(self) -> OptGymExecutor:
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        # Leaving on an error or an interrupt: queued calls must not start, running ones stop.
        self.shutdown(wait=kind is None, cancel_futures=kind is not None)


class InlineExecutor(OptGymExecutor):
    """Each call runs in the calling process when it is submitted."""

    def __init__(self) -> None:
        self.capacity = 1

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:  # noqa: BLE001  concurrent.futures semantics
            future.set_exception(e)
        return future


class LocalExecutor(OptGymExecutor):
    """Each call in its own process group on this machine, ``workers`` at a time, under
    ``limits`` (timeout, memory, initializer)."""

    def __init__(self, workers: int = 1, limits: Limits = Limits()):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.capacity = workers
        self.limits = limits
        self._queue: deque[tuple[Future, Callable, tuple, dict]] = deque()
        self._running: list[_Running] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self._kill = False
        self._thread = threading.Thread(target=self._loop, name="optgym-local-executor",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._stop:
                raise RuntimeError("cannot submit to an executor that was shut down")
            self._queue.append((future, fn, args, kwargs))
        self._wake()
        return future

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _start_queued(self) -> None:
        while len(self._running) < self.capacity:
            with self._lock:
                if not self._queue:
                    return
                future, fn, args, kwargs = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                self._running.append(_Running(future, fn, args, kwargs, self.limits))
            except Exception as e:  # noqa: BLE001  could not start a process: the call fails
                future.set_exception(CallFailed(f"could not start the call's process: {e}"))

    def _loop(self) -> None:
        next_poll = time.monotonic() + _POLL
        while True:
            if self._kill:
                for run in self._running:
                    _settle(run.future, *run.kill("the executor was shut down"))
                self._running.clear()
            self._start_queued()
            with self._lock:
                idle = not self._queue
            if self._stop and idle and not self._running:
                return
            handles: dict[Any, _Running] = {}
            for run in self._running:
                handles[run.recv] = run
                handles[run.process.sentinel] = run
            # Wake for the next sample, or the first deadline if it comes sooner: a timeout
            # is kept to the moment, however short.
            wake = min([next_poll, *(d for r in self._running if (d := r.deadline) is not None)])
            ready = wait([*handles, self._wake_r], timeout=max(0.0, wake - time.monotonic()))
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            for run in {handles[h] for h in ready if h in handles}:
                self._running.remove(run)
                _settle(run.future, *run.finish(), run.peak_mb)
            for run in [r for r in self._running if r.overdue]:
                self._running.remove(run)
                _settle(run.future, *run.kill(_timeout_text(self.limits)), run.peak_mb)
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + _POLL
                for run, why in _over_limits(self._running):
                    self._running.remove(run)
                    _settle(run.future, *run.kill(why), run.peak_mb)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._stop = True
            if cancel_futures:
                while self._queue:
                    self._queue.popleft()[0].cancel()
        if not wait:
            self._kill = True
        self._wake()
        self._thread.join()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RuntimeError(
            "the ray executor needs Ray: pip install optgym[ray] (or pip install ray)"
        ) from None
    return ray


def _ray_call(
    fn: Callable, args: tuple, kwargs: dict, limits: Limits, modules: list[str]
) -> tuple[str, Any]:
    """A Ray task's body: the call in a child process of the worker (whose fork server
    imports ``modules``, as the driver's does). Its exception (or the child's crash) is
    returned, not raised, so Ray never retries it; Ray retries only when the worker itself
    dies, and the guardian then ends the child's group."""
    preload(modules)
    try:
        return "ok", run_in_child(fn, *args, limits=limits, **kwargs)
    except BaseException as e:  # noqa: BLE001
        return "raised", e


class RayExecutor(OptGymExecutor):
    """Each call a Ray task on the cluster at ``address`` (``ray.init()`` on this machine
    when None), asking for ``resources``, retried up to ``max_retries`` times only when its
    Ray worker dies."""

    def __init__(
        self,
        address: str | None = None,
        limits: Limits = Limits(),
        resources: Resources = DEFAULT_RESOURCES,
        max_retries: int = 3,
        init: Mapping[str, Any] | None = None,
    ):
        ray = _import_ray()
        if not ray.is_initialized():
            if address is not None:
                check_address(address)
            options = {"address": address, "include_dashboard": False,
                       "log_to_driver": False, **(init or {})}  # fmt: skip
            try:
                ray.init(**options)
            except Exception as e:  # noqa: BLE001  Ray's own errors, named
                raise RuntimeError(
                    f"cannot start or join the Ray cluster at {address or 'this machine'}: "
                    f"{_ray_error(e)}"
                ) from None
        self._ray = ray
        self.limits = limits
        self.resources = resources
        self._remote = ray.remote(_ray_call).options(
            max_retries=max_retries, retry_exceptions=False, **resources.ray_options()
        )
        cpus = ray.cluster_resources().get("CPU", 1.0)
        self.capacity = max(1, int(2 * cpus / max(resources.cpus, 0.01)))
        self._refs: dict[Any, Future] = {}

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        future.set_running_or_notify_cancel()
        ref = self._remote.remote(fn, args, kwargs, self.limits, list(_preload))
        self._refs[ref] = future

        def done(inner: Future) -> None:
            self._refs.pop(ref, None)
            try:
                status, value = inner.result()
            except Exception as e:  # noqa: BLE001  the worker died past its retries
                _settle(future, False, CallFailed(f"the Ray task failed: {_ray_error(e)}"))
                return
            _settle(future, status == "ok", value)

        ref.future().add_done_callback(done)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking calls; with ``cancel_futures``, cancel the Ray tasks not finished
        (their futures fail); with ``wait``, return once every call submitted has settled."""
        pending = list(self._refs.values())
        if cancel_futures:
            for ref in list(self._refs):
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001  already finished
                    pass
        if wait:
            wait_all(pending)


def check_address(address: str, timeout: float = 5.0) -> None:
    """``ValueError`` unless ``address`` is ``HOST:PORT`` (or ``ray://HOST:PORT``, or
    ``auto``); ``RuntimeError`` when nothing answers there within ``timeout`` seconds (Ray
    itself would retry for minutes)."""
    if address == "auto":
        return
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise ValueError(
            f"bad Ray address {address!r}: expected HOST:PORT (the head's `ray start --head "
            "--port PORT`), ray://HOST:PORT or auto"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise RuntimeError(
            f"no Ray cluster answers at {address} ({e.strerror or e}); start one with "
            "`ray start --head --port PORT`, or leave out --address for one on this machine"
        ) from None


def _ray_error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()


def make_executor(
    name: str,
    workers: int = 1,
    limits: Limits = Limits(),
    address: str | None = None,
    resources: Resources = DEFAULT_RESOURCES,
) -> OptGymExecutor:
    """The executor called ``name`` (one of :data:`EXECUTORS`)."""
    if name == "local":
        return LocalExecutor(workers, limits)
    if name == "inline":
        if limits != Limits():
            raise ValueError("the inline executor runs calls in this process: "
                             "it cannot enforce a timeout, a memory limit or an initializer; "
                             "use --executor local")  # fmt: skip
        return InlineExecutor()
    if name == "ray":
        return RayExecutor(address, limits, resources)
    raise ValueError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")


def check_executor(name: str, address: str | None = None) -> None:
    """``ValueError`` for an unknown executor name, or an address that is not one (or not
    for Ray); ``RuntimeError`` when Ray is missing or nothing answers at ``address``."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")
    if address is not None and name != "ray":
        raise ValueError(f"an address is for the ray executor, not {name!r}: add --executor ray")
    if name == "ray":
        _import_ray()
        if address is not None:
            check_address(address)


def stream(
    executor: OptGymExecutor, fn: Callable, jobs: list[tuple]
) -> Iterator[tuple[tuple, Future]]:
    """Run ``fn(*job)`` for every job, at most ``executor.capacity`` in flight, and yield
    ``(job, future)`` as each finishes."""
    from concurrent.futures import FIRST_COMPLETED
    from concurrent.futures import wait as wait_futures

    todo = deque(jobs)
    pending: dict[Future, tuple] = {}
    while todo or pending:
        while todo and len(pending) < executor.capacity:
            job = todo.popleft()
            pending[executor.submit(fn, *job)] = job
        done, _ = wait_futures(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield pending.pop(future), future


__all__ = [
    "DEFAULT_TIMEOUT", "EXECUTORS", "CallFailed", "InlineExecutor", "Limits", "LocalExecutor",
    "OptGymExecutor", "RayExecutor", "check_address", "check_executor",
    "make_executor", "preload", "run_in_child", "stream",
]  # fmt: skip
