"""The LP relaxation of the local-branching problem, kept warm across LNS steps (LB-RELAX).

LB-RELAX solves, at every LNS step, ``min/max c x`` subject to the instance's linear rows
(``lhs <= A x <= rhs``), its variable bounds (binaries relaxed to ``[0, 1]``) and the
local-branching row around the incumbent ``x*``::

    sum_{j binary, x*_j = 0} x_j - sum_{j binary, x*_j = 1} x_j <= k - |{j binary: x*_j = 1}|

Only that last row depends on the step: its coefficient of a binary flips sign when the
incumbent's value of that binary flips, and its right-hand side moves with ``k`` and the
number of ones. :class:`LocalBranchingLp` builds the LP once per instance in SCIP's LP
interface (``pyscipopt.LP``, SoPlex underneath) and, per call, changes only the
coefficients that flipped since the last call (``chgCoef``) and the right-hand side
(``chgSide``), then re-solves with the dual simplex from the previous basis (saved with
``getBase`` and restored with ``setBase`` around the coefficient changes: SoPlex drops its
basis on ``chgCoef``): no ``freeTransform``, no presolve, no model rebuilt.

It runs in the SCIP worker process (:mod:`optgym.envs.lns.worker`), which builds it from the
instance's original numbers (``ScipModel.describe()``, read once when the instance loads).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

#: ``SCIP_PRICING_STEEP`` of SCIP's ``lpi.h`` (pyscipopt has no name for it): steepest edge.
PRICING_STEEP = 4
#: Average entries per row above which the LP keeps SoPlex's automatic pricer.
DENSE_ROW = 50.0
#: SoPlex solves in its row representation when rows > ROW_REPRESENTATION x columns (its own
#: default is 1.2).
ROW_REPRESENTATION = 0.5


class LocalBranchingLp:
    """The local-branching LP of one instance, built once and re-solved warm.

    ``description`` holds the instance's numbers as ``ScipModel.describe()`` (or
    ``ScipModel.describe()``) gives them; values at or beyond its ``infinity`` (SCIP's
    1e20) are no bound and become the LP solver's own infinity. ``binary`` marks the
    variables of the local-branching row; every variable is continuous in the LP (binaries
    keep their ``[0, 1]`` bounds).

    The last LP row is the local-branching row. Its coefficients start as if the incumbent
    were ``incumbent`` (all zeros when None); :meth:`solve` changes only those whose
    incumbent value flipped since the previous call (and puts the basis back, which SoPlex
    forgets on a coefficient change)."""

    def __init__(
        self,
        description: dict[str, Any],
        binary: np.ndarray,
        incumbent: np.ndarray | None = None,
    ) -> None:
        import pyscipopt
        from pyscipopt import SCIP_LPPARAM

        obj = np.asarray(description["obj"], dtype=float)
        n = len(obj)
        self.binary = np.asarray(binary, dtype=bool).copy()
        if self.binary.shape != (n,):
            raise ValueError(f"binary has shape {self.binary.shape}, the instance {n} variables")
        self.n = n
        self.maximize = bool(description["maximize"])
        self.lp = pyscipopt.LP("local_branching", "maximize" if self.maximize else "minimize")
        inf = self.lp.infinity()
        scip_inf = float(description.get("infinity", 1e20))

        def finite(values: Any) -> np.ndarray:
            """``values`` with SCIP's (or numpy's) infinities as the LP solver's."""
            out = np.asarray(values, dtype=float).copy()
            out[out >= scip_inf] = inf
            out[out <= -scip_inf] = -inf
            return out

        lb, ub = finite(description["lb"]), finite(description["ub"])
        lhs, rhs = finite(description["lhs"]), finite(description["rhs"])
        m = len(lhs)
        self.row = m  # the local-branching row's index
        self._bin_cols = np.flatnonzero(self.binary)
        x0 = np.zeros(n) if incumbent is None else np.asarray(incumbent, dtype=float)
        self._coef = np.where(x0[self._bin_cols] > 0.5, -1.0, 1.0)  # the row as it stands
        self._rhs: float | None = None
        # Rows first (empty), then the columns with their entries: pyscipopt's addCols adds
        # nothing when the whole matrix is empty, and addRows needs the columns to exist.
        self.lp.addRows([[] for _ in range(m + 1)], lhss=[*lhs.tolist(), -inf],
                        rhss=[*rhs.tolist(), inf])  # fmt: skip
        # the matrix by column (CSC), the local-branching row's entry last in each column
        a_rows = np.asarray(description["rows"], dtype=np.int64)
        a_cols = np.asarray(description["cols"], dtype=np.int64)
        a_vals = np.asarray(description["vals"], dtype=float)
        lb_row = np.full(len(self._bin_cols), m, dtype=np.int64)
        rows = np.concatenate([a_rows, lb_row])
        cols = np.concatenate([a_cols, self._bin_cols])
        vals = np.concatenate([a_vals, self._coef])
        keep = vals != 0.0
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        order = np.argsort(cols, kind="stable")
        rows, vals = rows[order].tolist(), vals[order].tolist()
        starts = np.searchsorted(cols[order], np.arange(n + 1)).tolist()
        spans = zip(starts[:-1], starts[1:], strict=True)
        entries = [list(zip(rows[a:b], vals[a:b], strict=True)) for a, b in spans]
        if rows:
            self.lp.addCols(entries, objs=obj.tolist(), lbs=lb.tolist(), ubs=ub.tolist())
        else:
            for j in range(n):
                self.lp.addCol([], obj=float(obj[j]), lb=float(lb[j]), ub=float(ub[j]))
        # Steepest-edge pricing takes a half to a fifth of the dual simplex iterations of
        # SoPlex's automatic pricer on the local-branching LPs of sparse instances (cold and
        # warm), but each iteration costs more where rows are dense (set cover, ~200 entries a
        # row: a cold solve 5.4 CPU s against 2.5 s): steepest edge unless rows are dense.
        self.steep = len(a_vals) <= DENSE_ROW * max(m, 1)
        if self.steep:
            self.lp.setIntParam(SCIP_LPPARAM.PRICING, PRICING_STEEP)
        # The local-branching row changes at every call. In SoPlex's column representation
        # (its default where rows < 1.2 x columns: auction, 2862 rows, 4000 columns) every
        # re-solve then cost 0.18 CPU s even at 0 simplex iterations, against < 0.01 s in the
        # row representation (and the cold solve 8.0 s against 7.5 s).
        self.lp.setRealParam(SCIP_LPPARAM.ROWREPSWITCH, ROW_REPRESENTATION)
        self.lp.setIntParam(SCIP_LPPARAM.TIMING, 1)  # SoPlex's time limit on the CPU clock
        #: simplex iterations, CPU seconds and coefficient changes of the last :meth:`solve`
        self.iterations = 0
        self.seconds = 0.0
        self.flips = 0
        self.solves = 0

    def _set_row(self, incumbent: np.ndarray, k: int) -> None:
        """Point the local-branching row at ``incumbent`` with radius ``k``: a ``chgCoef``
        per binary whose incumbent value flipped, a ``chgSide`` when the side moved."""
        ones = incumbent[self._bin_cols] > 0.5
        coef = np.where(ones, -1.0, 1.0)
        flipped = np.flatnonzero(coef != self._coef)
        if len(flipped):
            # SoPlex drops its basis when a coefficient changes: keep it and hand it back,
            # so the re-solve starts from the last optimal basis (a few dozen iterations
            # instead of thousands)
            basis = self.lp.getBase() if self.solves else None
            for j in flipped.tolist():
                self.lp.chgCoef(self.row, int(self._bin_cols[j]), float(coef[j]))
            if basis is not None:
                self.lp.setBase(*basis)
        self._coef = coef
        self.flips = len(flipped)
        rhs = float(k - int(ones.sum()))
        if rhs != self._rhs:
            self.lp.chgSide(self.row, -self.lp.infinity(), rhs)
            self._rhs = rhs

    def solve(self, incumbent: np.ndarray, k: int, time_limit: float) -> np.ndarray | None:
        """The LP's optimal x around ``incumbent`` with radius ``k``, solved within
        ``time_limit`` CPU seconds (SoPlex's own limit, ``SCIP_LPPARAM.LPTILIM``, timed on
        the CPU clock); None when it is not solved to optimality (time limit, infeasible,
        unbounded, numerical trouble)."""
        from pyscipopt import SCIP_LPPARAM

        incumbent = np.asarray(incumbent, dtype=float)
        if incumbent.shape != (self.n,):
            raise ValueError(f"incumbent has shape {incumbent.shape}, the LP {self.n} columns")
        begin = time.process_time()
        x = None
        try:
            self._set_row(incumbent, int(k))
            self.lp.setRealParam(SCIP_LPPARAM.LPTILIM, max(float(time_limit), 0.01))
            self.lp.solve(dual=True)
            self.iterations = int(self.lp.getNIterations())
            if self.lp.isOptimal():
                x = np.array(self.lp.getPrimal(), dtype=float)
        except Exception:  # SoPlex's LP error (SCIP_LPERROR): no solution, as a time limit
            self.iterations = 0
        self.solves += 1
        self.seconds = time.process_time() - begin
        return x

    def objective(self) -> float:
        """The objective value of the last solve (without the instance's offset)."""
        return float(self.lp.getObjVal())
