"""Control groups for episodes: a memory limit the kernel enforces, a cap on processes, the
CPU time spent, and kill-all, for a process and every descendant it starts, whatever
session or process group it moves to.

One :class:`Cgroup` is made per call (an episode, a sandboxed agent) under the cgroup of
this process, on cgroup v2 (the unified hierarchy) or v1 (one hierarchy per controller:
``memory``, ``pids``, ``cpuacct``, ``freezer``), whichever the machine has. Making one needs
write access to this process's own cgroup (root, or a delegated subtree);
:func:`unavailable` says why not, and callers then fall back to process groups (the
runner) or refuse (the leaderboard's sandbox).

>>> with Cgroup.create("episode", memory_mb=512, pids=256) as group:
...     group.add(pid)            # the process and all it starts from now on
...     group.cpu_seconds()       # CPU time of every process that ran in it
...     group.kill_all()          # SIGKILL to each, frozen first so none can fork away
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
#: The v1 controllers a group needs (``cpuacct`` and ``freezer`` where the machine has them).
V1_REQUIRED = ("memory", "pids")
V1_OPTIONAL = ("cpuacct", "freezer")
_COUNTER = itertools.count()


def _read(path: Path) -> str:
    """The file's text, ``""`` when it cannot be read."""
    try:
        return path.read_text()
    except OSError:
        return ""


def _own_paths() -> dict[str, str]:
    """``controller -> path`` of this process's cgroups (``""`` for v2's unified one)."""
    out: dict[str, str] = {}
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def _mounts() -> dict[str, Path]:
    """``controller -> mount point`` of the cgroup hierarchies (``""``: the v2 one)."""
    out: dict[str, Path] = {}
    for line in _read(Path("/proc/self/mounts")).splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        where, kind, options = Path(parts[1]), parts[2], parts[3].split(",")
        if kind == "cgroup2":
            out.setdefault("", where)
        elif kind == "cgroup":
            for option in options:
                out.setdefault(option, where)
    return out


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _stat_value(path: Path, key: str) -> int:
    """The number after ``key`` in a ``key value`` file (``memory.events``, ``cpu.stat``)."""
    for line in _read(path).splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


@dataclass(frozen=True)
class _Layout:
    """Where new groups go: the v2 parent folder, or the v1 parent folder per controller."""

    version: int
    parents: dict[str, Path]


@cache
def _layout() -> _Layout | str:
    """Where groups can be made here, or why none can."""
    mounts, own = _mounts(), _own_paths()
    v1 = [c for c in V1_REQUIRED if c in mounts and c in own]
    if len(v1) == len(V1_REQUIRED):
        parents = {
            c: mounts[c] / own[c].lstrip("/")
            for c in (*V1_REQUIRED, *V1_OPTIONAL)
            if c in mounts and c in own
        }
        if all(os.access(p, os.W_OK) for p in parents.values()):
            return _Layout(1, parents)
        return "this user cannot make cgroups (no write access to its own cgroup; run as root)"
    if "" in mounts and "" in own:
        parent = mounts[""] / own[""].lstrip("/")
        wanted = {"memory", "pids"}
        enabled = set(_read(parent / "cgroup.subtree_control").split())
        if not wanted <= enabled:
            available = set(_read(parent / "cgroup.controllers").split())
            if not wanted <= available:
                return (
                    "the cgroup v2 controllers memory and pids are not delegated to this "
                    "process's cgroup"
                )
            try:
                _write(parent / "cgroup.subtree_control", "+memory +pids")
            except OSError as e:
                return f"cannot enable the memory and pids controllers here ({e.strerror})"
        if not os.access(parent, os.W_OK):
            return "this user cannot make cgroups (no write access to its own cgroup)"
        return _Layout(2, {"": parent})
    return "this machine has no cgroup hierarchy with the memory and pids controllers"


def unavailable() -> str | None:
    """Why episodes cannot get a cgroup on this machine, or None when they can."""
    layout = _layout()
    return layout if isinstance(layout, str) else None


@dataclass
class Cgroup:
    """One control group (a folder per v1 controller, or one v2 folder), removed on exit."""

    version: int
    paths: dict[str, Path]
    memory_mb: float | None = None
    removed: bool = field(default=False, repr=False)

    @classmethod
    def create(
        cls, label: str, memory_mb: float | None = None, pids: int | None = None
    ) -> Cgroup:
        """A new group named after ``label`` with at most ``memory_mb`` MiB of memory (swap
        included where the kernel counts it) and ``pids`` processes and threads; None: no
        limit. ``RuntimeError`` saying why when groups cannot be made here."""
        layout = _layout()
        if isinstance(layout, str):
            raise RuntimeError(f"cannot give the call a cgroup: {layout}")
        name = f"optgym-{os.getpid()}-{next(_COUNTER)}-{label}"
        paths: dict[str, Path] = {}
        try:
            for controller, parent in layout.parents.items():
                path = parent / name
                path.mkdir()
                paths[controller] = path
        except OSError as e:
            cls(layout.version, paths).remove()
            raise RuntimeError(f"cannot make a cgroup under {parent}: {e.strerror}") from None
        group = cls(layout.version, paths, memory_mb)
        try:
            group._limit(memory_mb, pids)
        except OSError as e:
            group.remove()
            raise RuntimeError(f"cannot set the cgroup's limits: {e.strerror}") from None
        return group

    def _file(self, controller: str, name: str) -> Path | None:
        base = self.paths.get("" if self.version == 2 else controller)
        return None if base is None else base / name

    def _limit(self, memory_mb: float | None, pids: int | None) -> None:
        if memory_mb is not None:
            limit = str(max(int(memory_mb * 2**20), 2**20))
            if self.version == 2:
                _write(self.paths[""] / "memory.max", limit)
                with contextlib.suppress(OSError):  # no swap accounting: nothing to cap
                    _write(self.paths[""] / "memory.swap.max", "0")
            else:
                memory = self.paths["memory"]
                _write(memory / "memory.limit_in_bytes", limit)
                with contextlib.suppress(OSError):
                    _write(memory / "memory.memsw.limit_in_bytes", limit)
        if pids is not None:
            target = self._file("pids", "pids.max")
            assert target is not None
            _write(target, str(int(pids)))

    def add(self, pid: int) -> None:
        """Move process ``pid`` into the group (the processes it starts later follow)."""
        for path in self.paths.values():
            _write(path / "cgroup.procs", str(pid))

    def join(self) -> None:
        """Move the calling process into the group."""
        self.add(os.getpid())

    def pids(self) -> list[int]:
        """The processes in the group now."""
        path = self._file("pids", "cgroup.procs")
        text = _read(path) if path is not None else ""
        return [int(p) for p in text.split() if p.isdigit()]

    def cpu_seconds(self) -> float:
        """CPU time, user and system, of every process that ran in the group, in seconds."""
        if self.version == 2:
            return _stat_value(self.paths[""] / "cpu.stat", "usage_usec") / 1e6
        path = self._file("cpuacct", "cpuacct.usage")
        text = _read(path).strip() if path is not None else ""
        return int(text) / 1e9 if text.isdigit() else 0.0

    def memory_peak_mb(self) -> float:
        """The most memory the group held at once, in MiB (0 where the kernel does not say)."""
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        path = self._file("memory", name)
        text = _read(path).strip() if path is not None else ""
        return int(text) / 2**20 if text.isdigit() else 0.0

    def oom_kills(self) -> int:
        """How many processes of the group the kernel killed for its memory limit."""
        if self.version == 2:
            return _stat_value(self.paths[""] / "memory.events", "oom_kill")
        path = self._file("memory", "memory.oom_control")
        return _stat_value(path, "oom_kill") if path is not None else 0

    def kill_all(self, wait: float = 5.0) -> bool:
        """SIGKILL every process in the group (frozen first where the kernel can, so that
        none forks away meanwhile); True when the group is empty within ``wait`` seconds."""
        if self.version == 2:
            with contextlib.suppress(OSError):
                _write(self.paths[""] / "cgroup.kill", "1")
        freezer = self._file("freezer", "freezer.state") if self.version == 1 else None
        frozen = False
        if freezer is not None:
            try:
                _write(freezer, "FROZEN")
                frozen = True
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while True:
            members = self.pids()
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if frozen:  # killed processes die only once thawed
                with contextlib.suppress(OSError):
                    _write(freezer, "THAWED")  # type: ignore[arg-type]
                frozen = False
            if not members:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left in the group and remove its folders."""
        if self.removed:
            return
        if self.paths:
            self.kill_all()
        for path in self.paths.values():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        break
                    time.sleep(0.01)
        self.removed = True

    def kill_command(self) -> str:
        """A shell command that kills every process of the group (for a guardian that
        outlives the caller)."""
        if self.version == 2:
            return f"echo 1 > {self.paths['']}/cgroup.kill"
        procs = self.paths["pids"] / "cgroup.procs"
        freeze = self.paths.get("freezer")
        kill = f"for p in $(cat {procs}); do kill -KILL $p; done"
        if freeze is None:
            return f"{kill}; {kill}"
        state = freeze / "freezer.state"
        return f"echo FROZEN > {state}; {kill}; echo THAWED > {state}"

    def __enter__(self) -> Cgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


__all__ = ["Cgroup", "unavailable"]
