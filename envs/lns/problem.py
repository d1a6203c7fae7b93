"""One mixed-integer program: its numbers here, its SCIP model in the env's worker process.

SCIP runs only in :mod:`optgym.envs.lns.worker`: the worker reads the instance once (from
bytes checked against the benchmark's sha256), and each LNS step there changes only the
bounds that differ from the last step (``freeTransform`` then ``chgVarLb``/``chgVarUb``), adds
the incumbent as a start solution (so it is the cutoff) and solves under a CPU-time limit.
This side keeps the constraint matrix as a scipy CSR matrix: the graph observation is built
from it and every incumbent is checked feasible against it, independently of SCIP.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from optgym.envs.lns.worker import LOAD_TIMEOUT_S, ReadError, ScipWorker, wall_timeout

FEASIBILITY_TOL = 1e-6
#: Instance formats SCIP reads here (by the file's suffix), all text.
SUFFIXES = (".mps", ".lp")
#: The largest instance file read, in bytes.
MAX_INSTANCE_BYTES = 256 * 2**20
_TEXT_CONTROLS = bytes(set(range(32)) - {9, 10, 11, 12, 13})  # bytes no MPS/LP text holds


class InstanceError(ValueError):
    """The instance cannot be used: unreadable, infeasible, unbounded, or unsupported."""


@dataclass
class SubMipResult:
    status: str  # SCIP's status: optimal, timelimit, infeasible, ...
    values: np.ndarray | None  # the best solution found in the sub-MIP, if any
    objective: float | None
    solve_seconds: float  # SCIP's own CPU time
    work: int = 0  # LP iterations plus branch-and-bound nodes of the solve
    # each new best solution SCIP found: (CPU seconds into the solve, work so far, objective)
    improvements: tuple[tuple[float, int, float], ...] = ()


def instance_suffix(path: Path) -> str:
    """The format of the instance file ``path`` (``.mps`` or ``.lp``); ``InstanceError``
    naming the path and the formats allowed otherwise."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InstanceError(
            f"{path} is not an MPS or LP file (its suffix is {path.suffix or 'missing'!r}); "
            f"allowed: {', '.join(SUFFIXES)} (uncompressed text)"
        )
    return suffix


def check_instance_bytes(path: Path, data: bytes) -> None:
    """``InstanceError`` (naming ``path``, never quoting it) unless ``data`` can be an MPS or
    LP text: not empty, not compressed, no NUL or other control bytes."""
    allowed = f"allowed: {', '.join(SUFFIXES)} (uncompressed text)"
    if not data.strip():
        raise InstanceError(f"{path} is empty; an MPS or LP instance is needed")
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:4] == b"\x28\xb5\x2f\xfd":
        raise InstanceError(f"{path} is compressed; decompress it first ({allowed})")
    head = data[: 1 << 20]
    if head.translate(None, _TEXT_CONTROLS) != head:
        raise InstanceError(
            f"{path} is not an MPS or LP file: it holds binary (control) bytes; {allowed}"
        )


class MipProblem:
    """A MIP read from MPS/LP bytes: its matrix, bounds and objective here, its SCIP model
    in ``worker`` (reloaded there whenever the worker holds another instance)."""

    def __init__(
        self, data: bytes, path: str | Path, worker: ScipWorker, seed: int = 0, suffix: str = ""
    ):
        path = Path(path)
        self.path = path
        self.seed = seed
        self.suffix = suffix or instance_suffix(path)
        check_instance_bytes(path, data)
        self.data = data
        self.worker = worker
        self.key = f"{hashlib.sha256(data).hexdigest()}-{self.suffix}-s{seed}"
        d = self._load()
        n = len(d["names"])
        if n == 0:
            raise InstanceError(f"{path} has no variables")
        if d["nonlinear"]:
            index, kind = d["nonlinear"][0]
            raise InstanceError(
                f"{path}: constraint {index} is {kind!r}; only linear constraints are supported"
            )
        self.names: list[str] = d["names"]
        self.lb, self.ub = d["lb"], d["ub"]
        self.integer = d["integer"]
        self.binary = d["binary"] | (self.integer & (self.lb == 0) & (self.ub == 1))
        self.obj = d["obj"]
        self.maximize = bool(d["maximize"])
        self.obj_offset = float(d["offset"])
        m = int(d["n_conss"])
        self.A = sp.csr_matrix((d["vals"], (d["rows"], d["cols"])), shape=(m, n))
        infinity = d["infinity"]  # SCIP's 1e20 stands for no bound
        self.lhs, self.rhs = d["lhs"].copy(), d["rhs"].copy()
        self.lhs[self.lhs <= -infinity] = -np.inf
        self.rhs[self.rhs >= infinity] = np.inf
        self.lb[self.lb <= -infinity] = -np.inf
        self.ub[self.ub >= infinity] = np.inf

    def _load(self) -> dict:
        self.worker.loaded = None  # the worker drops what it held, even if this read fails
        try:
            description = self.worker.request(
                ("load", self.key, self.data, self.suffix, self.seed),
                LOAD_TIMEOUT_S,
                f"reading {self.path}",
            )
        except ReadError as e:
            raise InstanceError(f"cannot read {self.path} as an MPS/LP file: {e}") from None
        self.worker.loaded = self.key
        return description

    def _request(self, command: str, *args: object, timeout: float, doing: str) -> object:
        """Run ``command`` on this instance in the worker (loading it there first if the
        worker holds another one, e.g. after a fork reset to another benchmark)."""
        if self.worker.pid is not None and self.worker.loaded != self.key:
            self._load()
        return self.worker.request((command, self.key, *args), timeout, doing)

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def int_indices(self) -> np.ndarray:
        return np.flatnonzero(self.integer)

    def objective(self, x: np.ndarray) -> float:
        return float(self.obj @ x + self.obj_offset)

    def better(self, a: float, b: float | None) -> bool:
        """Whether objective ``a`` strictly improves on ``b``."""
        if b is None:
            return True
        return a > b + 1e-9 if self.maximize else a < b - 1e-9

    def violation(self, x: np.ndarray) -> str | None:
        """Why ``x`` is infeasible for the original problem, or None when it is feasible.
        Variables and constraints are named by index (a name is part of the file)."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.n,):
            return f"solution has {x.shape} values, the problem {self.n} variables"
        if not np.all(np.isfinite(x)):
            return "solution has non-finite values"
        tol = FEASIBILITY_TOL
        bad = np.flatnonzero((x < self.lb - tol) | (x > self.ub + tol))
        if len(bad):
            return f"variable {bad[0]} = {x[bad[0]]} is outside its bounds"
        frac = np.flatnonzero(self.integer & (np.abs(x - np.round(x)) > tol))
        if len(frac):
            return f"integer variable {frac[0]} = {x[frac[0]]} is fractional"
        ax = self.A @ x
        over = ax > self.rhs + tol * (1.0 + np.abs(self.rhs))
        under = ax < self.lhs - tol * (1.0 + np.abs(self.lhs))
        bad = np.flatnonzero(over | under)
        if len(bad):
            c = bad[0]
            return f"constraint {c} is violated: {self.lhs[c]} <= {ax[c]} <= {self.rhs[c]} fails"
        return None

    # ---- solving (in the worker) ----------------------------------------------------------
    def _result(self, reply: dict) -> SubMipResult:
        values = reply["values"]
        objective = None if values is None else self.objective(values)
        return SubMipResult(
            reply["status"], values, objective, reply["solve_seconds"], int(reply["work"]),
            tuple((float(t), int(w), float(o)) for t, w, o in reply["improvements"]),
        )  # fmt: skip

    def solve_initial(self, time_limit: float) -> SubMipResult:
        """SCIP on the whole problem until ``time_limit`` CPU seconds or its first solutions."""
        reply = self._request(
            "initial", float(time_limit), timeout=wall_timeout(time_limit),
            doing=f"finding an initial solution of {self.path}",
        )  # fmt: skip
        result = self._result(reply)
        if result.status == "infeasible":
            raise InstanceError(f"{self.path} is infeasible (SCIP proved it)")
        if result.status in ("unbounded", "inforunbd"):
            raise InstanceError(f"{self.path} is unbounded or infeasible ({result.status})")
        return result

    def solve_neighborhood(
        self, free: np.ndarray, incumbent: np.ndarray, time_limit: float
    ) -> SubMipResult:
        """Fix every integer variable outside ``free`` (a boolean mask) to the incumbent and
        solve the rest under ``time_limit`` CPU seconds, starting from the incumbent."""
        reply = self._request(
            "neighborhood", np.asarray(free, dtype=bool), np.asarray(incumbent, dtype=float),
            float(time_limit), timeout=wall_timeout(time_limit), doing="solving a sub-MIP",
        )  # fmt: skip
        return self._result(reply)

    # ---- local branching (for the LB-LNS and LB-RELAX agents) --------------------------------
    def local_branching(
        self, incumbent: np.ndarray, k: int, relax: bool, time_limit: float = 10.0
    ) -> np.ndarray:
        """Solve min/max c x s.t. the constraints and sum |x - incumbent| <= k over the
        binary variables, as an LP (``relax``, LB-RELAX) or a MIP (LB-LNS); return x. It runs
        in the worker (a second model there); its CPU time counts in the env's clock."""
        if not self.binary[self.integer].all():
            raise InstanceError("local branching needs every integer variable to be binary")
        return self._request(
            "local_branching", np.asarray(incumbent, dtype=float), int(k), bool(relax),
            float(time_limit), self.binary, timeout=wall_timeout(time_limit),
            doing="solving the local-branching problem",
        )  # fmt: skip


#: A reference run stored beside a user's instance: ``<instance file>`` + this suffix.
REFERENCE_SUFFIX = ".reference.json"
MAX_REFERENCE_BYTES = 64 * 1024


def reference_path(instance: Path) -> Path:
    """Where the reference run of the instance file ``instance`` is stored."""
    return instance.with_name(instance.name + REFERENCE_SUFFIX)


def read_reference(instance: Path, sha256: str) -> float | None:
    """The reference objective stored beside the instance file ``instance`` (see
    :func:`reference_path`), or None when there is none. ``InstanceError`` naming the file
    (never quoting it) and what is allowed when it is there but not a JSON object of
    ``objective`` (a finite number), ``sha256`` (the instance file's, ``sha256``) and
    ``source`` (a non-empty string: how the objective was found)."""
    import json
    import math

    path = reference_path(Path(instance))
    allowed = (
        "allowed: a JSON object with 'objective' (a finite number), 'sha256' (the instance "
        "file's) and 'source' (how the objective was found)"
    )
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InstanceError(f"cannot read the reference run {path}: {e.strerror}") from None
    if size > MAX_REFERENCE_BYTES:
        raise InstanceError(
            f"the reference run {path} is {size} bytes, over {MAX_REFERENCE_BYTES}; {allowed}"
        )
    try:
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise InstanceError(f"cannot read the reference run {path}: {e.strerror}") from None
    except (ValueError, RecursionError):
        raise InstanceError(f"the reference run {path} is not JSON; {allowed}") from None
    if not isinstance(data, dict):
        raise InstanceError(f"the reference run {path} is not a JSON object; {allowed}")
    objective = data.get("objective")
    if (
        isinstance(objective, bool)
        or not isinstance(objective, (int, float))
        or not (math.isfinite(objective))
    ):
        raise InstanceError(f"the reference run {path} has no finite 'objective'; {allowed}")
    if data.get("sha256") != sha256:
        raise InstanceError(
            f"the reference run {path} is for another file: its 'sha256' is not the "
            f"instance's ({sha256}); {allowed}"
        )
    source = data.get("source")
    if not isinstance(source, str) or not source.strip():
        raise InstanceError(f"the reference run {path} does not say its 'source'; {allowed}")
    return float(objective)
