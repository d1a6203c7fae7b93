"""The sandbox for code the leaderboard did not write: a submitted agent, its plug-in module,
its model, runs only here, never in the verifier's own process.

:class:`AgentSandbox` starts ``python -m optgym.agent_host`` under Debian's bubblewrap
(``bwrap``), inside the cgroup of the episode's call (:mod:`optgym.executors` with
``require_cgroup``: memory, processes, CPU time, kill-all):

* new user, mount, PID, network, IPC, UTS and cgroup namespaces; no capabilities,
  ``no_new_privs``, user ``nobody`` (65534), a new session (no terminal to write into),
  killed with its parent;
* a read-only view of the system (``/usr``), Python and OptGym's own code, and nothing
  else: not the cache (its integrity key, round secrets, cached benchmarks), not the board,
  not ``/etc`` beyond the dynamic loader's files, not the working folder; every problem's
  backend (LLVM, SCIP, Halide: ``Problem.backends``) is hidden too, so no unmetered env can
  be built in there;
* one private scratch folder (``/tmp``, counted in the memory limit) and, read-only at
  ``/submission``, the code and weights the submission ships;
* no network at all (an empty network namespace: its loopback reaches only itself).

The agent gets its env through :mod:`optgym.env_proxy`, over one socket; its output goes
through a filter (no escape sequences, a bounded amount) to the harness's standard error.
Where bubblewrap or cgroups cannot run here, :func:`unavailable` says why and callers refuse
to run the agent (never unsandboxed).

>>> with AgentSandbox(code_dir=None) as box:
...     box.send({"op": "describe", "agent": "cem"})
...     box.receive()
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from optgym.agent_channel import PICKLE, read_data, rebuild_error, send_frame

#: Where the submission's code and weights are seen inside the sandbox.
CODE_MOUNT = "/submission"
#: The user the agent runs as, inside its user namespace.
SANDBOX_UID = 65534
#: Processes and threads one sandboxed episode may have at once (its harness, backends and
#: agent together).
MAX_PIDS = 512
#: The most bytes of the agent's output that reach the terminal, per sandbox.
MAX_OUTPUT_BYTES = 64 * 1024
#: Files of ``/etc`` the sandbox sees (the dynamic loader's, the time zone, fonts).
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "fonts")
_ESCAPES = dict.fromkeys(range(0x20), None) | {0x7F: None} | {9: "\t", 10: "\n"}


def bwrap_path() -> str | None:
    """The bubblewrap executable, or None."""
    return shutil.which("bwrap")


def _module_dirs(name: str) -> list[Path]:
    """The folders of the installed package ``name`` (found, not imported)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    if not spec.origin:
        return []
    origin = Path(spec.origin)  # a module file, and its compiled copies
    return [origin, *origin.parent.glob(f"__pycache__/{origin.stem}.*")]


def _site_dirs() -> list[Path]:
    import site

    return [Path(p) for p in {*site.getsitepackages(), *sys.path} if p.endswith("site-packages")]


def hidden_backends() -> list[Path]:
    """Every problem's backend files and folders on this machine (``Problem.backends``:
    ``module:NAME``, ``site:NAME`` under site-packages, or an absolute glob)."""
    from optgym.envs import problems

    found: list[Path] = []
    for problem in problems().values():
        for item in problem.backends:
            if item.startswith("module:"):
                found += _module_dirs(item.removeprefix("module:"))
            elif item.startswith("site:"):
                found += [d / item.removeprefix("site:") for d in _site_dirs()]
            else:
                found += [Path(p) for p in glob.glob(item)]
    return sorted({p for p in found if p.exists()})


def _code_roots() -> list[Path]:
    """The folders OptGym's own code is read from (an editable install maps several)."""
    roots = []
    for package in ("optgym", "optgym.envs", "optgym.agents", "optgym.wrappers",
                    "optgym.datasets", "optgym.leaderboard"):  # fmt: skip
        roots += _module_dirs(package)
    return roots


def _board_dirs() -> list[Path]:
    """The board folders the sandbox hides, :func:`optgym.leaderboard.board_dir` among
    them: ``$OPTGYM_BOARD`` where it is set, and the ``board/`` folder the leaderboard
    package ships (found, not imported: the leaderboard is a layer above the sandbox, see
    docs/architecture.md)."""
    found = [d / "board" for d in _module_dirs("optgym.leaderboard")]
    env = os.environ.get("OPTGYM_BOARD")
    return [Path(env), *found] if env else found


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def bwrap_command(argv: list[str], code_dir: Path | None = None) -> list[str]:
    """The bubblewrap command that runs ``argv`` in the sandbox (see the module docstring),
    with ``code_dir`` read-only at :data:`CODE_MOUNT` when given."""
    from optgym.datasets.cache import cache_dir

    bwrap = bwrap_path()
    if bwrap is None:
        raise RuntimeError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    cmd = [
        bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
        "--new-session", "--cap-drop", "ALL", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
        # the private scratch first: what is bound below lies over it (an install under
        # /tmp stays visible), never under it
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            cmd += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            cmd += ["--ro-bind", str(top), str(top)]
    for name in ETC_FILES:
        if (Path("/etc") / name).exists():
            cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    bound: list[Path] = []
    python = Path(sys.executable)
    for root in {Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix),
                 python.parent, python.resolve().parent, *_code_roots()}:  # fmt: skip
        root = root.resolve() if root.exists() else root
        if root.exists() and not _inside(root, [Path("/usr")]):
            bound.append(root)
    bound = sorted(set(bound), key=lambda p: len(p.parts))
    bound = [r for i, r in enumerate(bound) if not _inside(r, bound[:i])]
    for root in bound:
        cmd += ["--ro-bind", str(root), str(root)]
    hidden = {p.resolve(): None for p in [*_board_dirs(), cache_dir(), *hidden_backends()]}
    for path in hidden:
        if not _inside(path, [*bound, Path("/usr")]):
            continue
        if path.is_dir():
            cmd += ["--tmpfs", str(path)]
        else:
            cmd += ["--ro-bind", "/dev/null", str(path)]
    workdir = "/tmp"
    if code_dir is not None:
        cmd += ["--ro-bind", str(Path(code_dir).resolve()), CODE_MOUNT]
        workdir = CODE_MOUNT
    cmd += ["--chdir", workdir, "--clearenv"]
    environ = {
        "HOME": "/tmp", "TMPDIR": "/tmp", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
        "OPTGYM_CACHE": "/tmp/optgym-cache", "OPTGYM_SANDBOX": "1", "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg",
    }  # fmt: skip
    environ.update(_blas_kernels())
    for key, value in environ.items():
        cmd += ["--setenv", key, value]
    return [*cmd, "--", *argv]


@cache
def _blas_kernels() -> dict[str, str]:
    """The OpenBLAS settings that choose this process's kernels, for the sandbox to compute
    with the same ones: OpenBLAS detects the CPU anew in a cleared environment, and may pick
    other kernels (SkylakeX against a pinned Haswell on an AVX-512 AMD host), whose sums
    round differently, so that a deterministic agent would give other actions there."""
    kernels = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
               if os.environ.get(k, "").isalnum()}  # fmt: skip
    if "OPENBLAS_CORETYPE" not in kernels:
        try:
            from threadpoolctl import threadpool_info

            found = [i.get("architecture") for i in threadpool_info()
                     if i.get("internal_api") == "openblas"]  # fmt: skip
        except Exception:  # no threadpoolctl, or no OpenBLAS loaded: nothing to pin
            found = []
        if found and isinstance(found[0], str) and found[0].isalnum():
            kernels["OPENBLAS_CORETYPE"] = found[0]
    return kernels


@cache
def _probe() -> str | None:
    """Why a sandbox cannot start here, or None (runs ``true`` in one)."""
    try:
        cmd = bwrap_command([sys.executable, "-I", "-c", "pass"])
    except RuntimeError as e:
        return str(e)
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap cannot start ({e})"
    if done.returncode != 0:
        text = done.stderr.decode(errors="replace").strip().splitlines()
        return (f"bubblewrap cannot make a sandbox here (no user namespaces?): "
                f"{text[-1][:200] if text else f'exit status {done.returncode}'}")  # fmt: skip
    return None


def unavailable() -> str | None:
    """Why sandboxed agents cannot run on this machine (bubblewrap or cgroups missing, or
    no user namespaces), or None."""
    from optgym import cgroups

    why = cgroups.unavailable()
    if why is not None:
        return f"no cgroups for the sandbox: {why}"
    return _probe()


def require() -> None:
    """``RuntimeError`` saying why, when sandboxed agents cannot run here."""
    why = unavailable()
    if why is not None:
        raise RuntimeError(
            f"submitted code runs only in the sandbox, and it cannot run here: {why}. "
            "The sandbox needs Debian's bubblewrap (apt-get install bubblewrap), user "
            "namespaces, and write access to cgroups (run as root)"
        )


def printable(text: str) -> str:
    """``text`` without control characters (escape sequences, carriage returns) other than
    tabs and newlines, and without bidirectional overrides: what may reach a terminal."""
    from optgym.text import plain

    return plain(text.translate(_ESCAPES), keep="\n\t")


class AgentSandbox:
    """One sandboxed agent host (``python -m optgym.agent_host``) and its channel."""

    def __init__(self, code_dir: str | Path | None = None, label: str = "agent"):
        from optgym import cgroups

        # what :func:`require` checks, less its trial run: a sandbox that cannot start says
        # why on its output, and its episode ends without an answer
        why = cgroups.unavailable() or (None if bwrap_path() else "bubblewrap is missing")
        if why is not None:
            require()
        self.sock, theirs = socket.socketpair()
        argv = [sys.executable, "-I", "-B", "-m", "optgym.agent_host", str(theirs.fileno())]
        cmd = bwrap_command(argv, Path(code_dir) if code_dir is not None else None)
        self.process = subprocess.Popen(
            cmd, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        theirs.close()
        self.label = label
        self._cpu_read = (0.0, 0.0)
        self._reader = threading.Thread(target=self._relay, daemon=True)
        self._reader.start()

    def _relay(self) -> None:
        """Pass the agent's output to standard error, filtered and bounded."""
        assert self.process.stdout is not None
        shown = 0
        for raw in iter(self.process.stdout.readline, b""):
            if shown >= MAX_OUTPUT_BYTES:
                continue
            shown += len(raw)
            text = printable(raw.decode("utf-8", "replace")).rstrip("\n")
            note = " (output past 64 KiB not shown)" if shown >= MAX_OUTPUT_BYTES else ""
            with contextlib.suppress(OSError, ValueError):
                print(f"[{self.label}] {text}{note}", file=sys.stderr, flush=True)

    def cpu_seconds(self) -> float:
        """CPU seconds the sandbox's processes have spent (bubblewrap and every process under
        it, the ones it reaped included), from /proc."""
        now = time.monotonic()
        if now - self._cpu_read[0] < 0.01:
            return self._cpu_read[1]
        parents: dict[int, int] = {}
        spent: dict[int, float] = {}
        tick = float(os.sysconf("SC_CLK_TCK"))
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parents[int(name)] = int(fields[1])
            spent[int(name)] = sum(int(x) for x in fields[11:15]) / tick
        total, inside = 0.0, {self.process.pid}
        for pid in sorted(parents):  # parents start before their children
            if pid in inside or parents[pid] in inside:
                inside.add(pid)
                total += spent[pid]
        self._cpu_read = (now, max(total, self._cpu_read[1]))
        return self._cpu_read[1]

    def send(self, message: dict[str, Any]) -> None:
        """Send the host a request (a pickle: the host trusts the harness)."""
        send_frame(self.sock, PICKLE, pickle.dumps(message))

    def receive(self) -> Any:
        """The host's next message, read as data only."""
        return read_data(self.sock)

    def close(self) -> None:
        """End the sandbox (its PID namespace dies with bubblewrap)."""
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> AgentSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AgentFailed(RuntimeError):
    """The sandboxed agent raised an error that has no built-in type (its name leads the
    message)."""


def _failure(message: Any) -> BaseException:
    """The exception a sandboxed agent's ``failed`` message stands for."""
    error = message.get("error") if isinstance(message, dict) else None
    if not (isinstance(error, list) and len(error) == 2 and all(isinstance(e, str) for e in error)):
        return AgentFailed("the agent's process sent back something that is not an answer")
    name, text = error
    return rebuild_error(printable(name), printable(text), AgentFailed)


def _expect(box: AgentSandbox, op: str) -> dict[str, Any]:
    """The host's next message, which must be ``op``; its failure raised as the agent's."""
    from optgym.agent_channel import ChannelClosed

    try:
        message = box.receive()
    except ChannelClosed:
        raise AgentFailed("the agent's process ended without an answer") from None
    if isinstance(message, dict) and message.get("op") == "failed":
        raise _failure(message)
    if not (isinstance(message, dict) and message.get("op") == op):
        raise AgentFailed(f"the agent's process sent back something other than {op!r}")
    return message


def describe_agent(spec: str, code_dir: str | Path | None = None) -> dict[str, Any]:
    """What the agent ``spec`` says of itself, asked in a sandbox (its class is imported
    there, never here): ``{"canonical": str, "stochastic": bool, "problems": [str]}``.
    ``ValueError`` when the spec does not resolve there (an unknown name, a module the
    submission does not ship, a bad setting)."""
    with AgentSandbox(code_dir, label="describe") as box:
        box.send({"op": "describe", "agent": spec})
        try:
            answer = _expect(box, "done").get("agent")
        except (ValueError, RuntimeError) as e:  # the agent's error, or a malformed answer
            raise ValueError(f"agent {spec!r} does not resolve in the sandbox: {e}") from None
    if not (
        isinstance(answer, dict) and isinstance(answer.get("canonical"), str)
        and isinstance(answer.get("stochastic"), bool)
        and isinstance(answer.get("problems"), list)
        and all(isinstance(p, str) for p in answer["problems"])
    ):  # fmt: skip
        raise ValueError(f"agent {spec!r}: the sandbox's description is malformed")
    return answer


class SandboxedAgent:
    """The agent of one episode, run in a sandbox (see the module docstring) that sees the
    env only through a metered proxy to this process's env. :meth:`prepare` is the
    ``prepare`` of :func:`optgym.bench.play_episode` (it starts the sandbox and readies the
    agent, outside the budget's clock); :meth:`close` ends every sandbox it started."""

    def __init__(
        self, agent_spec: str, benchmark: str, seed: int, budget: Any,
        code_dir: str | None = None,
    ) -> None:  # fmt: skip
        self.agent_spec, self.benchmark, self.seed = agent_spec, benchmark, seed
        self.budget, self.code_dir = budget, code_dir
        self.boxes: list[AgentSandbox] = []

    def prepare(self, task: Any) -> Callable[[Any], Any]:
        """Start the sandbox and ready the agent on ``task``; the function that runs it on
        the (wrapped) env and returns its final state."""
        from optgym.env_proxy import EnvServer, serve_until_done

        box = AgentSandbox(self.code_dir, label=f"{self.agent_spec} seed {self.seed}")
        self.boxes.append(box)
        box.send({"op": "solve", "agent": self.agent_spec, "task": task.name,
                  "benchmark": self.benchmark, "budget": str(self.budget),
                  "seed": self.seed})  # fmt: skip
        _expect(box, "ready")
        benchmark = self.benchmark

        def solve(env: Any) -> Any:
            base = env.unwrapped
            start = box.cpu_seconds()
            base.attach_agent_clock(lambda: box.cpu_seconds() - start)
            box.send({"op": "go"})
            try:
                answer = serve_until_done(box.sock, EnvServer(env, benchmark))
            except EOFError:
                raise AgentFailed("the agent's process ended without an answer") from None
            finally:
                base.attach_agent_clock(None)
            if answer.get("op") == "failed":
                raise _failure(answer)
            return answer.get("state")

        return solve

    def close(self) -> None:
        """End every sandbox this agent started (again: nothing)."""
        for box in self.boxes:
            box.close()


__all__ = [
    "CODE_MOUNT", "AgentFailed", "AgentSandbox", "bwrap_command", "describe_agent",
    "SandboxedAgent", "hidden_backends", "printable", "require", "unavailable",
]  # fmt: skip
