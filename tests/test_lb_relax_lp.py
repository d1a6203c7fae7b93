"""LB-RELAX's warm local-branching LP (optgym.envs.lns.lb_lp): the same optimum as SCIP's
from-scratch LP relaxation, feasible x, warm re-solves, its time limit, and LB-RELAX's
episodes on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyscipopt
import pytest

import optgym
from optgym.agents import resolve_agent
from optgym.budget import Budget
from optgym.envs.lns.lb_lp import LocalBranchingLp
from optgym.envs.lns.worker import ScipModel

URI = "generator://vertex-cover-s-v0/0"  # 1000 binaries, 65100 rows; minimization
TOL = 1e-6


@pytest.fixture(scope="module")
def env():
    e = optgym.make("optgym/ILPNeighborhood-v0", subproblem_time=0.5, initial_time=2.0)
    e.reset(options={"benchmark": URI})
    try:
        yield e.unwrapped
    finally:
        e.close()


def _check_x(problem, x: np.ndarray, incumbent: np.ndarray, k: int) -> None:
    """``x`` satisfies the rows, the bounds and the local-branching row around ``incumbent``."""
    assert x.shape == (problem.n,) and np.all(np.isfinite(x))
    assert np.all(x >= problem.lb - TOL) and np.all(x <= problem.ub + TOL)
    ax = problem.A @ x
    assert np.all(ax <= problem.rhs + TOL * (1 + np.abs(problem.rhs)))
    assert np.all(ax >= problem.lhs - TOL * (1 + np.abs(problem.lhs)))
    b = problem.binary
    ones = b & (incumbent > 0.5)
    zeros = b & ~ones
    assert x[zeros].sum() - x[ones].sum() <= k - ones.sum() + TOL * k


def _incumbents(problem, start: np.ndarray) -> list[np.ndarray]:
    """Feasible vertex covers near ``start``: covers stay covers when a node is added."""
    rng = np.random.default_rng(0)
    out = [start]
    for size in (3, 40):
        x = out[-1].copy()
        x[rng.choice(np.flatnonzero(x < 0.5), size, replace=False)] = 1.0
        assert problem.violation(x) is None
        out.append(x)
    return out


def test_warm_lp_matches_scip_from_scratch(env):
    problem = env.problem
    model = ScipModel(str(problem.path), 0)  # the worker's code, in this process
    first, second, third = _incumbents(problem, env.incumbent.copy())
    k = env.k
    # incumbent and k change in turn, and the incumbent comes back to an earlier one
    calls = [(first, k), (first, k // 2), (second, k), (third, k), (first, k)]
    previous = None
    for incumbent, radius in calls:
        args = (incumbent, radius, True, 60.0, problem.binary)
        warm = model.local_branching(*args)
        lp = model._lb_model.lp
        old = model.local_branching(*args, warm=False)  # SCIP from scratch, as before
        assert problem.objective(warm) == pytest.approx(problem.objective(old), rel=TOL)
        assert not np.array_equal(warm, incumbent)  # it was solved, not the fallback
        _check_x(problem, warm, incumbent, radius)
        # only the binaries whose incumbent value flipped changed in the row
        flipped = 0 if previous is None else int((previous != incumbent)[problem.binary].sum())
        assert lp.flips == flipped
        previous = incumbent
    # the same problem again: the basis is still optimal, no simplex iteration
    again = model.local_branching(first, k, True, 60.0, problem.binary)
    assert lp.iterations == 0 and np.allclose(again, warm)
    # the worker's reply (LB-RELAX's call) is the same optimum
    x = problem.local_branching(first, k, relax=True)
    assert problem.objective(x) == pytest.approx(problem.objective(warm), rel=TOL)
    _check_x(problem, x, first, k)


def test_time_limit_returns_the_incumbent_then_resumes(env):
    problem = env.problem
    model = ScipModel(str(problem.path), 0)
    incumbent, k = env.incumbent.copy(), env.k
    # a cold solve takes ~0.5 CPU s and thousands of iterations: 0.01 s stops it
    x = model.local_branching(incumbent, k, True, 0.01, problem.binary)
    assert np.array_equal(x, incumbent)
    x = model.local_branching(incumbent, k, True, 60.0, problem.binary)
    assert not np.array_equal(x, incumbent)
    _check_x(problem, x, incumbent, k)


def _mixed_instance(path: Path) -> str:
    """A small maximization with a continuous variable unbounded above, ranged and
    equality rows and a row with no left side: the infinities and the sense."""
    rng = np.random.default_rng(1)
    m = pyscipopt.Model()
    m.hideOutput()
    x = [m.addVar(f"x{i}", vtype="B", obj=float(rng.integers(1, 20))) for i in range(30)]
    y = m.addVar("y", lb=0.0, ub=None, obj=-0.5)
    z = m.addVar("z", lb=-5.0, ub=5.0, obj=1.0)
    for _ in range(20):
        a, b, c = (int(i) for i in rng.choice(30, 3, replace=False))
        m.addCons(x[a] + x[b] + x[c] <= 2)
    m.addCons(pyscipopt.quicksum(x[:10]) - y <= 3)
    m.addCons(1 <= (pyscipopt.quicksum(x[10:20]) + z <= 6))
    m.addCons(x[20] + x[21] - z == 1)
    m.setMaximize()
    m.writeProblem(str(path), verbose=False)
    return str(path)


def _feasible_points(path: str, count: int) -> list[np.ndarray]:
    """``count`` feasible solutions of the instance at ``path`` (SCIP minimizing random
    objectives, with ``y``, unbounded above, at a positive cost)."""
    rng = np.random.default_rng(3)
    out = []
    for _ in range(count):
        m = pyscipopt.Model()
        m.hideOutput()
        m.readProblem(path)
        variables = m.getVars()
        costs = [1.0 if v.name == "y" else float(rng.normal()) for v in variables]
        m.setObjective(pyscipopt.quicksum(c * v for c, v in zip(costs, variables, strict=True)))
        m.optimize()
        out.append(np.array([m.getVal(v) for v in variables]))
    return out


def test_maximization_and_infinite_sides(tmp_path):
    path = _mixed_instance(tmp_path / "mixed.lp")
    model = ScipModel(path, 0)
    d = model.describe()
    names = [v.name for v in model.vars]
    assert d["maximize"] and d["ub"][names.index("y")] >= 1e20
    assert d["lhs"].min() <= -1e20 and d["rhs"].max() >= 1e20  # rows with one side
    binary = np.array([v.vtype() == "BINARY" for v in model.vars])
    obj = d["obj"]
    points = _feasible_points(path, 3)
    moved = False
    for incumbent, k in zip([*points, points[0]], (2, 5, 1, 8), strict=True):
        args = (incumbent, k, True, 10.0, binary)
        warm = model.local_branching(*args)
        old = model.local_branching(*args, warm=False)
        assert obj @ warm == pytest.approx(obj @ old, rel=TOL)
        assert obj @ warm >= obj @ incumbent - TOL  # maximized: never below the incumbent
        ones = binary & (incumbent > 0.5)
        assert warm[binary & ~ones].sum() - warm[ones].sum() <= k - ones.sum() + TOL
        moved |= obj @ warm > obj @ incumbent + 1e-3
    assert moved


def test_empty_row_list_and_bad_shapes():
    d = {"obj": np.array([1.0, -1.0]), "lb": np.zeros(2), "ub": np.ones(2),
         "maximize": False, "rows": np.array([], dtype=np.int64),
         "cols": np.array([], dtype=np.int64), "vals": np.array([]),
         "lhs": np.array([]), "rhs": np.array([]), "infinity": 1e20}  # fmt: skip
    lp = LocalBranchingLp(d, np.array([False, False]))  # no row has an entry
    assert lp.solve(np.zeros(2), 1, 1.0) == pytest.approx([0.0, 1.0])
    with pytest.raises(ValueError, match="incumbent has shape"):
        lp.solve(np.zeros(3), 1, 1.0)
    with pytest.raises(ValueError, match="binary has shape"):
        LocalBranchingLp(d, np.array([True]))


def test_lb_relax_runs_an_episode(env):
    for spec, seconds in (("lb-relax", 6), ("lb-relax-s", 3)):
        budget = Budget.parse(f"seconds={seconds}")
        result = resolve_agent(spec).make().solve(env, URI, budget, seed=0)
        extras = result.state.extras
        assert extras["objective"] <= extras["initial_objective"]
        assert len(result.state.actions) >= 3  # several LNS steps in 6 s
        assert env.problem.violation(env.incumbent) is None


def test_lb_relax_starts_from_its_own_neighborhood_share(env):
    """``k_start`` (or the family's in ``K_START``) sizes LB-RELAX's first neighborhood;
    it then grows after steps without improvement, as the env's k does, and the env's own
    control is as it was after the episode. Bad shares are refused by name."""
    from optgym.agents.lns.local_branching import LbRelax, family_k_start

    n_int = len(env.problem.int_indices)
    result = LbRelax(k_start=0.5).solve(env, URI, Budget.parse("seconds=4"), seed=0)
    sizes = result.state.actions
    assert sizes[0] == round(0.5 * n_int) and len(sizes) >= 2
    assert all(b >= a for a, b in zip(sizes, sizes[1:], strict=False))  # grows or stays
    assert env.neighborhood_size is None
    assert family_k_start("generator://independent-set-s-v0/3") == 0.4
    assert family_k_start(URI) is None and family_k_start("file:///x.mps") is None
    for bad in (0, 1.5, True, "0.3"):
        with pytest.raises(ValueError, match="k_start must be a share in"):
            LbRelax(k_start=bad)
