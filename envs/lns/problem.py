"""One mixed-integer program held in one pyscipopt model, re-fixed for each LNS step.

The model is read once; each sub-MIP changes only the bounds that differ from the last
step (``freeTransform`` then ``chgVarLb``/``chgVarUb``), adds the incumbent as a start
solution (so it is the cutoff) and solves under a CPU-time limit. It is never copied. The
constraint matrix is kept as a scipy CSR matrix: the graph observation is built from it
and every incumbent is checked feasible against it, independently of SCIP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyscipopt
import scipy.sparse as sp

FEASIBILITY_TOL = 1e-6


class InstanceError(ValueError):
    """The instance cannot be used: unreadable, infeasible, unbounded, or unsupported."""


@dataclass
class SubMipResult:
    status: str  # SCIP's status: optimal, timelimit, infeasible, ...
    values: np.ndarray | None  # the best solution found in the sub-MIP, if any
    objective: float | None
    solve_seconds: float  # SCIP's own CPU time


def _settings(model: pyscipopt.Model, seed: int) -> None:
    model.hideOutput()
    model.setParam("randomization/randomseedshift", seed)
    model.setParam("timing/clocktype", 1)  # CPU time: fair on a shared machine
    model.setParam("parallel/maxnthreads", 1)
    model.setParam("lp/threads", 1)


class MipProblem:
    """A MIP read from MPS/LP: its matrix, bounds, objective, and a re-fixable model."""

    def __init__(self, path: str | Path, seed: int = 0):
        path = Path(path)
        self.path = path
        self.seed = seed
        model = pyscipopt.Model()
        _settings(model, seed)
        try:
            model.readProblem(str(path))
        except Exception as e:  # pyscipopt raises a plain Exception for reader errors
            raise InstanceError(f"cannot read {path} as an MPS/LP file: {e}") from None
        self.model = model
        self.vars = model.getVars()
        if not self.vars:
            raise InstanceError(f"{path} has no variables")
        self.names = [v.name for v in self.vars]
        index = {name: i for i, name in enumerate(self.names)}
        self.lb = np.array([v.getLbOriginal() for v in self.vars], dtype=float)
        self.ub = np.array([v.getUbOriginal() for v in self.vars], dtype=float)
        self.integer = np.array([v.vtype() != "CONTINUOUS" for v in self.vars])
        self.binary = np.array([v.vtype() == "BINARY" for v in self.vars]) | (
            self.integer & (self.lb == 0) & (self.ub == 1)
        )
        self.obj = np.array([v.getObj() for v in self.vars], dtype=float)
        self.maximize = model.getObjectiveSense() == "maximize"
        self.obj_offset = float(model.getObjoffset())
        rows, cols, vals, lhs, rhs = [], [], [], [], []
        for r, cons in enumerate(model.getConss()):
            kind = cons.getConshdlrName()
            if kind != "linear":
                raise InstanceError(
                    f"{path}: constraint {cons.name!r} is {kind!r}; only linear constraints "
                    "are supported"
                )
            for name, coef in model.getValsLinear(cons).items():
                rows.append(r)
                cols.append(index[name])
                vals.append(coef)
            lhs.append(model.getLhs(cons))
            rhs.append(model.getRhs(cons))
        self.conss = model.getConss()
        self.A = sp.csr_matrix((vals, (rows, cols)), shape=(len(self.conss), len(self.vars)))
        infinity = model.infinity()  # SCIP's 1e20 stands for no bound
        self.lhs = np.array(lhs, dtype=float)
        self.rhs = np.array(rhs, dtype=float)
        self.lhs[self.lhs <= -infinity] = -np.inf
        self.rhs[self.rhs >= infinity] = np.inf
        self.lb[self.lb <= -infinity] = -np.inf
        self.ub[self.ub >= infinity] = np.inf
        self._cur_lb = self.lb.copy()
        self._cur_ub = self.ub.copy()
        self._lp = None  # the local-branching relaxation, built on first use

    @property
    def n(self) -> int:
        return len(self.vars)

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
        """Why ``x`` is infeasible for the original problem, or None when it is feasible."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.n,):
            return f"solution has {x.shape} values, the problem {self.n} variables"
        if not np.all(np.isfinite(x)):
            return "solution has non-finite values"
        tol = FEASIBILITY_TOL
        bad = np.flatnonzero((x < self.lb - tol) | (x > self.ub + tol))
        if len(bad):
            return f"variable {self.names[bad[0]]} = {x[bad[0]]} is outside its bounds"
        frac = np.flatnonzero(self.integer & (np.abs(x - np.round(x)) > tol))
        if len(frac):
            return f"integer variable {self.names[frac[0]]} = {x[frac[0]]} is fractional"
        ax = self.A @ x
        over = ax > self.rhs + tol * (1.0 + np.abs(self.rhs))
        under = ax < self.lhs - tol * (1.0 + np.abs(self.lhs))
        bad = np.flatnonzero(over | under)
        if len(bad):
            c = bad[0]
            return (
                f"constraint {self.conss[c].name} is violated: {self.lhs[c]} <= {ax[c]} "
                f"<= {self.rhs[c]} fails"
            )
        return None

    # ---- solving ------------------------------------------------------------------------------
    def _set_bounds(self, lb: np.ndarray, ub: np.ndarray) -> None:
        model = self.model
        model.freeTransform()
        for i in np.flatnonzero((lb != self._cur_lb) | (ub != self._cur_ub)):
            v = self.vars[i]
            # one call per bound that moves, ordered so that lb <= ub holds after each
            if lb[i] > self._cur_ub[i]:
                model.chgVarUb(v, ub[i])
                model.chgVarLb(v, lb[i])
            else:
                if lb[i] != self._cur_lb[i]:
                    model.chgVarLb(v, lb[i])
                if ub[i] != self._cur_ub[i]:
                    model.chgVarUb(v, ub[i])
        self._cur_lb, self._cur_ub = lb.copy(), ub.copy()

    def _solve(self, time_limit: float, start: np.ndarray | None) -> SubMipResult:
        model = self.model
        model.setParam("limits/time", max(float(time_limit), 0.01))
        if start is not None:
            sol = model.createSol()
            for i in np.flatnonzero(start):  # a new solution is zero everywhere else
                model.setSolVal(sol, self.vars[i], float(start[i]))
            model.addSol(sol, free=True)
        begin = time.process_time()
        model.optimize()
        seconds = time.process_time() - begin
        status = model.getStatus()
        values = objective = None
        if model.getNSols() > 0:
            best = model.getBestSol()
            # variables whose bounds are equal cannot have moved: read only the others
            values = self._cur_lb.copy()
            for i in np.flatnonzero(self._cur_lb != self._cur_ub):
                values[i] = model.getSolVal(best, self.vars[i])
            values[self.integer] = np.round(values[self.integer])
            objective = self.objective(values)
        return SubMipResult(status, values, objective, seconds)

    def solve_initial(self, time_limit: float) -> SubMipResult:
        """SCIP on the whole problem until ``time_limit`` CPU seconds or its first solutions."""
        self._set_bounds(self.lb, self.ub)
        result = self._solve(time_limit, None)
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
        fixed = self.integer & ~free
        lb = np.where(fixed, incumbent, self.lb)
        ub = np.where(fixed, incumbent, self.ub)
        self._set_bounds(lb, ub)
        return self._solve(time_limit, incumbent)

    # ---- local branching (for the LB-LNS and LB-RELAX agents) --------------------------------
    def local_branching(
        self, incumbent: np.ndarray, k: int, relax: bool, time_limit: float = 10.0
    ) -> np.ndarray:
        """Solve min/max c x s.t. the constraints and sum |x - incumbent| <= k over the
        binary variables, as an LP (``relax``, LB-RELAX) or a MIP (LB-LNS); return x."""
        if not self.binary[self.integer].all():
            raise InstanceError("local branching needs every integer variable to be binary")
        if self._lp is None:
            self._lp = _LocalBranchingModel(self)
        return self._lp.solve(incumbent, k, relax, time_limit)


class _LocalBranchingModel:
    """A second model (the expert's, never the env's) for the local-branching problem."""

    def __init__(self, problem: MipProblem):
        self.problem = problem
        self.model = pyscipopt.Model()
        _settings(self.model, problem.seed)
        self.model.readProblem(str(problem.path))
        self.vars = self.model.getVars()
        self.relaxed = False
        self.cons = None

    def solve(self, incumbent: np.ndarray, k: int, relax: bool, time_limit: float) -> np.ndarray:
        model, p = self.model, self.problem
        model.freeTransform()
        if self.cons is not None:
            model.delCons(self.cons)
            self.cons = None
        if relax != self.relaxed:
            for v, integer in zip(self.vars, p.integer, strict=True):
                if integer:
                    model.chgVarType(v, "CONTINUOUS" if relax else "BINARY")
            self.relaxed = relax
        ones = [v for v, x, b in zip(self.vars, incumbent, p.binary, strict=True) if b and x > 0.5]
        zeros = [
            v for v, x, b in zip(self.vars, incumbent, p.binary, strict=True) if b and x <= 0.5
        ]
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
