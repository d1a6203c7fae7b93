"""The SCIP worker process: every SCIP call of the LNS env runs here, so a crash ends only it.

:class:`ScipWorker` (the env's side) starts ``python -m optgym.envs.lns.worker``; requests and
replies are length-prefixed pickles on the child's stdin and on a private copy of its stdout.
Once started, the child points its fds 1 and 2 at ``/dev/null``: SCIP prints reader errors
with tokens of the file it reads, and nothing of a user's file may reach the user's terminal.
A crash in SCIP (an abort, a segfault, a SIGKILL) or a hang past the timeout becomes
:class:`optgym.env.BackendCrash`; the worker is started again only by the env's next reset.

The child holds one instance at a time (:class:`ScipModel`): read once from the bytes the env
sends, re-fixed for each sub-MIP exactly as the in-process model was (same settings, same
seed, same order of calls), so results do not depend on where SCIP runs. Every reply carries
the child's CPU seconds for the request, which the env adds to its episode clock.
"""

from __future__ import annotations

import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

import numpy as np

HEADER = struct.Struct("<Q")
# Wall seconds a request may take beyond its CPU-time limit before the worker counts as hung:
# on a shared 2-core machine a CPU second can take a few wall seconds.
WALL_SLACK_S = 60.0
WALL_FACTOR = 10.0
LOAD_TIMEOUT_S = 600.0


def write_message(fd: int, obj: Any) -> None:
    """Write one length-prefixed pickle to ``fd``."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_message(fd: int, timeout: float | None = None) -> Any:
    """One length-prefixed pickle from ``fd``; ``EOFError`` when closed, ``TimeoutError``
    past ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    (size,) = HEADER.unpack(_read_exactly(fd, HEADER.size, deadline))
    return pickle.loads(_read_exactly(fd, size, deadline))


def wall_timeout(cpu_limit: float) -> float:
    """Wall seconds to wait for a solve limited to ``cpu_limit`` CPU seconds."""
    return WALL_SLACK_S + WALL_FACTOR * cpu_limit


# ---- the child's side -------------------------------------------------------------------------
def _settings(model: Any, seed: int) -> None:
    model.hideOutput()
    model.setParam("randomization/randomseedshift", seed)
    model.setParam("timing/clocktype", 1)  # CPU time: fair on a shared machine
    model.setParam("parallel/maxnthreads", 1)
    model.setParam("lp/threads", 1)


class ReadError(ValueError):
    """SCIP could not read the instance (the message holds nothing of the file)."""


#: Nonzeros of the constraint matrix per unit of work a solve is charged for reading them:
#: SCIP's transform and presolve pass over every row, and a sub-MIP that presolve solves has
#: no LP iteration and no node (most random neighborhoods of 20% are such), yet costs time.
NONZEROS_PER_UNIT = 1000


def _work(model: Any) -> int:
    """The solve's LP iterations plus branch-and-bound nodes so far (0 before the solving
    stage), the part of the LNS work axis that grows during a solve."""
    import pyscipopt

    stage = model.getStage()
    if stage not in (pyscipopt.SCIP_STAGE.SOLVING, pyscipopt.SCIP_STAGE.SOLVED):
        return 0  # SCIP refuses to count before the solve (presolved away: no LP, no node)
    return int(model.getNLPIterations()) + int(model.getNTotalNodes())


def _improvements_handler() -> Any:
    """A new SCIP event handler that records each new best solution of a solve: ``found``
    holds ``(CPU seconds since begin, work so far, objective)``, so that a long solve's
    intermediate incumbents enter the primal integral when SCIP found them. (Made here, not
    at import: the env's side imports this module without SCIP.)"""
    import pyscipopt

    class Improvements(pyscipopt.Eventhdlr):
        begin = 0.0
        matrix_units = 0  # what the solve is charged for its matrix (see _solve)
        found: list[tuple[float, int, float]] = []

        def eventinit(self) -> None:
            self.model.catchEvent(pyscipopt.SCIP_EVENTTYPE.BESTSOLFOUND, self)

        def eventexit(self) -> None:
            self.model.dropEvent(pyscipopt.SCIP_EVENTTYPE.BESTSOLFOUND, self)

        def eventexec(self, event: Any) -> None:
            seconds = time.process_time() - self.begin
            try:  # never let bookkeeping fail a solve: a point missed is only a later one
                objective = float(self.model.getSolObjVal(self.model.getBestSol()))
            except Exception:
                return
            self.found.append((seconds, self.matrix_units + _work(self.model), objective))

    return Improvements()


class ScipModel:
    """One instance in one pyscipopt model, re-fixed for each sub-MIP (never copied)."""

    def __init__(self, path: str, seed: int):
        import pyscipopt

        self.path, self.seed = path, seed
        model = pyscipopt.Model()
        _settings(model, seed)
        try:
            model.readProblem(path)
        except Exception as e:  # pyscipopt raises OSError("SCIP: read error!") and the like
            text = str(e)
            code = text if text.startswith("SCIP: ") and len(text) < 60 else "read error"
            raise ReadError(f"SCIP's reader rejected it ({code})") from None
        # the sub-MIPs' solutions are read before the next step frees the transformed
        # problem: copying them back to the original space there is wasted work
        model.setParam("misc/transsolsorig", False)
        self.model = model
        self.vars = model.getVars()
        self.lb = np.array([v.getLbOriginal() for v in self.vars], dtype=float)
        self.ub = np.array([v.getUbOriginal() for v in self.vars], dtype=float)
        self.integer = np.array([v.vtype() != "CONTINUOUS" for v in self.vars], dtype=bool)
        self._cur_lb, self._cur_ub = self.lb.copy(), self.ub.copy()
        self._lb_model: _LocalBranchingModel | None = None
        self._improvements: Any = None  # the event handler, included at the first solve
        # the work axis charges each solve one unit per NONZEROS_PER_UNIT of the matrix, and
        # the warm local-branching LP is built from the instance's numbers: both set by
        # describe(), which reads them
        self.matrix_units = 1
        self.description: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        """The instance's numbers: variables, objective, constraint matrix (COO) and sides.

        Read from a second, throwaway model: pyscipopt keeps a Python wrapper of every
        constraint it ever handed out and walks them all on each ``freeTransform``, which
        the sub-MIP model does every step (on vertex-cover, 4 of its 6 ms)."""
        import pyscipopt

        model = pyscipopt.Model()
        _settings(model, self.seed)
        model.readProblem(self.path)
        index = {v.name: i for i, v in enumerate(model.getVars())}
        rows, cols, vals, lhs, rhs, others = [], [], [], [], [], []
        conss = model.getConss()
        for r, cons in enumerate(conss):
            kind = cons.getConshdlrName()
            if kind != "linear":
                others.append((r, kind))
                continue
            for name, coef in model.getValsLinear(cons).items():
                rows.append(r)
                cols.append(index[name])
                vals.append(coef)
            lhs.append(model.getLhs(cons))
            rhs.append(model.getRhs(cons))
        self.matrix_units = 1 + len(vals) // NONZEROS_PER_UNIT
        self.description = {
            "n_conss": len(conss),
            "nonlinear": others[:1],  # (index, handler) of the first non-linear constraint
            "names": [v.name for v in self.vars],
            "lb": self.lb,
            "ub": self.ub,
            "integer": self.integer,
            "binary": np.array([v.vtype() == "BINARY" for v in self.vars], dtype=bool),
            "obj": np.array([v.getObj() for v in self.vars], dtype=float),
            "maximize": model.getObjectiveSense() == "maximize",
            "offset": float(model.getObjoffset()),
            "rows": np.array(rows, dtype=np.int64),
            "cols": np.array(cols, dtype=np.int64),
            "vals": np.array(vals, dtype=float),
            "lhs": np.array(lhs, dtype=float),
            "rhs": np.array(rhs, dtype=float),
            "infinity": float(model.infinity()),
        }
        return self.description

    def _set_bounds(self, lb: np.ndarray, ub: np.ndarray) -> None:
        model = self.model
        model.freeTransform()
        # one call per bound that moves, in an order that keeps lb <= ub after each: first
        # the bounds that loosen (lower ones down, upper ones up), then those that tighten
        # (masks and values worked out in numpy; the loops only call SCIP)
        vars_, cur_lb, cur_ub = self.vars, self._cur_lb, self._cur_ub
        for change, bounds, moved in (
            (model.chgVarLb, lb, lb < cur_lb),
            (model.chgVarUb, ub, ub > cur_ub),
            (model.chgVarUb, ub, ub < cur_ub),
            (model.chgVarLb, lb, lb > cur_lb),
        ):
            at = np.flatnonzero(moved)
            for i, value in zip(at.tolist(), bounds[at].tolist(), strict=True):
                change(vars_[i], value)
        self._cur_lb, self._cur_ub = lb.copy(), ub.copy()

    def _solve(self, time_limit: float, start: np.ndarray | None) -> dict[str, Any]:
        model = self.model
        model.setParam("limits/time", max(float(time_limit), 0.01))
        if self._improvements is None:
            self._improvements = _improvements_handler()
            model.includeEventhdlr(self._improvements, "optgym-improvements", "new incumbents")
        if start is not None:
            sol = model.createSol()
            for i in np.flatnonzero(start):  # a new solution is zero everywhere else
                model.setSolVal(sol, self.vars[i], float(start[i]))
            model.addSol(sol, free=True)
        begin = self._improvements.begin = time.process_time()
        self._improvements.found = []
        self._improvements.matrix_units = self.matrix_units
        model.optimize()
        seconds = time.process_time() - begin
        values = None
        if model.getNSols() > 0:
            best = model.getBestSol()
            # variables whose bounds are equal cannot have moved: read only the others
            values = self._cur_lb.copy()
            for i in np.flatnonzero(self._cur_lb != self._cur_ub):
                values[i] = model.getSolVal(best, self.vars[i])
            values[self.integer] = np.round(values[self.integer])
        return {
            "status": model.getStatus(),
            "values": values,
            "solve_seconds": seconds,
            "work": self._improvements.matrix_units + _work(model),
            "improvements": self._improvements.found,
        }

    def initial(self, time_limit: float) -> dict[str, Any]:
        self._set_bounds(self.lb, self.ub)
        return self._solve(time_limit, None)

    def neighborhood(
        self, free: np.ndarray, incumbent: np.ndarray, time_limit: float
    ) -> dict[str, Any]:
        fixed = self.integer & ~free
        self._set_bounds(np.where(fixed, incumbent, self.lb), np.where(fixed, incumbent, self.ub))
        return self._solve(time_limit, incumbent)

    def local_branching(
        self,
        incumbent: np.ndarray,
        k: int,
        relax: bool,
        time_limit: float,
        binary: np.ndarray,
        warm: bool = True,
    ) -> np.ndarray:
        """The local-branching problem around ``incumbent`` (a second model, never the
        env's): its LP relaxation (``relax``) re-solved warm in SCIP's LP interface
        (:class:`~optgym.envs.lns.lb_lp.LocalBranchingLp`), or from scratch by SCIP when
        ``warm`` is False (the old way, kept for comparison); the MIP otherwise."""
        if self._lb_model is None:
            description = self.description or self.describe()  # read at load, in the worker
            self._lb_model = _LocalBranchingModel(
                self.path, self.seed, self.integer, binary, description
            )
        return self._lb_model.solve(incumbent, k, relax, time_limit, warm=warm)


class _LocalBranchingModel:
    """A second model (the expert's, never the env's) for the local-branching problem, and
    the warm LP of its relaxation (built on first use from ``description``, the instance's
    original numbers as ``ScipModel.describe()`` gives them)."""

    def __init__(
        self,
        path: str,
        seed: int,
        integer: np.ndarray,
        binary: np.ndarray,
        description: dict[str, Any],
    ):
        import pyscipopt

        self.integer, self.binary, self.description = integer, binary, description
        self.model = pyscipopt.Model()
        _settings(self.model, seed)
        self.model.readProblem(path)
        self.vars = self.model.getVars()
        self.relaxed = False
        self.cons = None
        self.lp: Any = None  # the warm LocalBranchingLp, built on the first warm solve

    def solve(
        self, incumbent: np.ndarray, k: int, relax: bool, time_limit: float, warm: bool = True
    ) -> np.ndarray:
        """x of the local-branching problem (the incumbent when nothing is solved): the LP
        relaxation re-solved warm (``relax`` and ``warm``), else SCIP from scratch on the
        model with the local-branching constraint (LP relaxation or MIP)."""
        import pyscipopt

        model = self.model
        model.freeTransform()
        if self.cons is not None:
            model.delCons(self.cons)
            self.cons = None
        if relax and warm:
            return self._solve_warm(incumbent, k, time_limit)
        if relax != self.relaxed:
            for v, integer in zip(self.vars, self.integer, strict=True):
                if integer:
                    model.chgVarType(v, "CONTINUOUS" if relax else "BINARY")
            self.relaxed = relax
        triples = list(zip(self.vars, incumbent, self.binary, strict=True))
        ones = [v for v, x, b in triples if b and x > 0.5]
        zeros = [v for v, x, b in triples if b and x <= 0.5]
        expr = pyscipopt.quicksum(zeros) - pyscipopt.quicksum(ones)
        self.cons = model.addCons(expr <= k - len(ones), name="local_branching")
        model.setParam("limits/time", max(float(time_limit), 0.01))
        if not relax:
            sol = model.createSol()
            for v, value in zip(self.vars, incumbent, strict=True):
                model.setSolVal(sol, v, float(value))
            model.addSol(sol, free=True)
        model.optimize()
        if model.getNSols() == 0:
            return incumbent.astype(float).copy()
        best = model.getBestSol()
        return np.array([model.getSolVal(best, v) for v in self.vars])

    def _solve_warm(self, incumbent: np.ndarray, k: int, time_limit: float) -> np.ndarray:
        """The LP relaxation in the warm LP (built here from the instance's original
        numbers, as ``ScipModel.describe()`` read them)."""
        if self.lp is None:
            from optgym.envs.lns.lb_lp import LocalBranchingLp

            self.lp = LocalBranchingLp(self.description, self.binary, incumbent)
        x = self.lp.solve(incumbent, k, time_limit)
        return incumbent.astype(float).copy() if x is None else x


class _Server:
    """The child's state: the instance it holds (one at a time) and its folder (made and
    removed by the env's side, so that a killed child leaves no copy of the instance)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.key: str | None = None
        self.model: ScipModel | None = None

    def load(self, key: str, data: bytes, suffix: str, seed: int) -> dict[str, Any]:
        self.model = self.key = None
        # the suffix picks SCIP's reader; the file stays while the instance is held (local
        # branching reads it again)
        path = os.path.join(self.folder, "instance" + suffix)
        with open(path, "wb") as f:
            f.write(data)
        model = ScipModel(path, seed)
        description = model.describe()
        self.model, self.key = model, key
        return description

    def handle(self, request: tuple) -> Any:
        cmd = request[0]
        if cmd == "load":
            return self.load(*request[1:])
        if self.model is None or request[1] != self.key:
            raise RuntimeError("the SCIP worker holds no instance or another one")
        if cmd == "initial":
            return self.model.initial(*request[2:])
        if cmd == "neighborhood":
            return self.model.neighborhood(*request[2:])
        if cmd == "local_branching":
            return self.model.local_branching(*request[2:])
        raise ValueError(f"unknown command {cmd!r}")


def main() -> None:
    out = os.dup(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the user's process's to handle
    import pyscipopt

    server = _Server(sys.argv[1])
    version = pyscipopt.Model()
    scip = f"{version.getMajorVersion()}.{version.getMinorVersion()}.{version.getTechVersion()}"
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # whatever SCIP prints (a reader quotes the file) is dropped
    os.dup2(devnull, 2)
    write_message(out, {"pid": os.getpid(), "scip": scip})
    while True:
        try:
            request = read_message(0)
        except EOFError:
            break
        begin = time.process_time()
        try:
            reply = {"ok": True, "result": server.handle(request)}
        except ReadError as e:
            reply = {"ok": False, "kind": "read", "error": str(e)}
        except Exception as e:  # reported to the env, which raises it there
            reply = {
                "ok": False,
                "kind": "error",
                "error": type(e).__name__,
                "traceback": traceback.format_exc(limit=3),
            }
        reply["cpu"] = time.process_time() - begin
        write_message(out, reply)


# ---- the env's side ---------------------------------------------------------------------------
def _ended(code: int) -> str:
    """How a child process that returned ``code`` ended, in words."""
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"


class ScipWorker:
    """The env's SCIP worker process. ``start()`` (at reset) starts it when it is not
    running; every request raises :class:`optgym.env.BackendCrash` when the worker dies,
    hangs or is not running, and only ``start()`` brings it back. ``cpu_seconds`` sums the
    child's CPU time over its solves (loads excluded), across restarts."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.loaded: str | None = None  # key of the instance the child holds
        self.cpu_seconds = 0.0
        self.starts = 0
        self.scip_version: str | None = None
        self._folder: str | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        """Start the child unless it is running."""
        if self.pid is not None:
            return
        self.kill()
        self._folder = tempfile.mkdtemp(prefix="optgym-scip-")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "optgym.envs.lns.worker", self._folder],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        self.starts += 1
        self.loaded = None
        hello = self._read(120.0, "starting")
        self.scip_version = hello["scip"]

    def _crash(self, doing: str, why: str) -> Exception:
        from optgym.env import BackendCrash

        self.kill()
        return BackendCrash(f"the SCIP worker {why} while {doing}; the next reset restarts it")

    def _read(self, timeout: float, doing: str) -> Any:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            return read_message(self.proc.stdout.fileno(), timeout)
        except TimeoutError:
            raise self._crash(doing, f"gave no reply in {timeout:.0f} s (killed)") from None
        except (EOFError, OSError, pickle.UnpicklingError):
            raise self._crash(doing, f"crashed ({_ended(self.proc.wait())})") from None

    def request(self, message: tuple, timeout: float, doing: str) -> Any:
        """Send ``message`` and return its result: ``ReadError`` (a ValueError) when SCIP
        rejects an instance, ``BackendCrash`` when the child dies, hangs, is not running or
        fails inside SCIP (it is killed; the env's next reset starts a new one)."""
        if self.pid is None:
            code = None if self.proc is None else self.proc.poll()
            if code is not None:  # it died since the last request: say how
                raise self._crash(doing, f"crashed ({_ended(code)})")
            raise self._crash(doing, "is not running (it crashed or was closed)")
        assert self.proc is not None and self.proc.stdin is not None
        try:
            write_message(self.proc.stdin.fileno(), message)
        except OSError:
            raise self._crash(doing, "died before the request") from None
        reply = self._read(timeout, doing)
        if reply["ok"]:
            if message[0] != "load":
                self.cpu_seconds += reply["cpu"]
            return reply["result"]
        if reply["kind"] == "read":
            raise ReadError(reply["error"])
        raise self._crash(doing, f"failed ({reply['error']} inside SCIP)")

    def kill(self) -> None:
        """Kill the child (if any) and wait for it."""
        proc, self.proc, self.loaded = self.proc, None, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def close(self) -> None:
        """End the child: close its input, then kill it if it does not exit at once."""
        proc = self.proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def __del__(self) -> None:
        try:
            self.kill()
        except Exception:
            pass


if __name__ == "__main__":
    main()
