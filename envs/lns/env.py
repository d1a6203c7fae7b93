"""Large Neighborhood Search for integer programs on SCIP: choose which variables to free."""

from __future__ import annotations

import copy
import json
import math
import warnings
from functools import cache
from typing import Any

import numpy as np
from gymnasium import spaces

from optgym.datasets.cache import cache_dir
from optgym.datasets.dataset import Benchmark
from optgym.env import NamedSpace, OptGymEnv, RewardTolerance, StepResult, as_numbers
from optgym.envs.lns import PROBLEM
from optgym.envs.lns import problem as problem_module
from optgym.envs.lns.gap import primal_gap, primal_integral
from optgym.envs.lns.graph import GRAPH_SPACE, StaticGraph
from optgym.envs.lns.problem import InstanceError, MipProblem, instance_suffix, read_reference
from optgym.envs.lns.worker import ScipWorker
from optgym.integrity import read_tagged, write_tagged
from optgym.state import EpisodeState

ENV_ID = "optgym/ILPNeighborhood-v0"
DEFAULT_BENCHMARK = "generator://vertex-cover-s-v0/0"
INITIAL_CACHE_PURPOSE = "lns-initial"
MAX_SCIP_SEED = 2**31 - 1  # SCIP's randomization/randomseedshift is a C int


@cache
def scip_version() -> str:
    """``major.minor.tech`` of the SCIP library pyscipopt is linked to."""
    import pyscipopt

    model = pyscipopt.Model()
    return f"{model.getMajorVersion()}.{model.getMinorVersion()}.{model.getTechVersion()}"


class ILPNeighborhoodEnv(OptGymEnv[dict, np.ndarray]):
    """
    ## Description

    Large Neighborhood Search (LNS) for mixed-integer programs, after the LB-RELAX and CL-LNS
    papers. SCIP finds an initial incumbent; then each step the agent scores the variables,
    the env frees the ``k`` best-scored integer variables, fixes every other one to the
    incumbent, solves that sub-MIP with SCIP under a CPU-time limit (the incumbent given as
    start solution, hence cutoff) and keeps the better solution. A feasible incumbent is
    never lost, and every incumbent is checked against the original constraints.

    ``env.unwrapped.fork()`` gives an independent copy at the same point of the episode: its
    own incumbent, objective, history, k fraction, primal integral, trace, neighborhood
    sizes and clock offsets, and the budget meter shared. The SCIP model (``MipProblem``) is
    shared too: every sub-MIP solve re-fixes every bound it needs, so solves on the fork and
    the parent may interleave, one at a time (not from two threads at once), in the one SCIP
    worker process they share. The CPU clock is the process's and the worker's: work on
    either counts in both episodes' ``elapsed``.

    ## Action Space

    ``Box(-inf, inf, (n,))``: one score per variable of the current instance (the shape is
    set at reset): finite real numbers, or ``-inf`` for a variable never to free (only the
    order of the scores counts, so they have no natural bound). NaN,
    ``+inf``, strings, booleans and any other shape are a ``ValueError`` naming the problem.
    The neighborhood size ``k`` follows the papers' adaptive rule (start at
    ``k_start * n_int``, times ``k_growth`` after a step without improvement, at most
    ``k_max * n_int``).

    Two attributes are the agent's own controls, kept across resets and not part of
    ``config`` (they change the search, not what a state checks): ``neighborhood_size``
    (an int fixes ``k``, clipped to [1, n_int]; None: the adaptive rule) and
    ``subproblem_time`` (CPU seconds per sub-MIP, initially the constructor's).

    ## Observation Space

    ``BipartiteGraph``, the env's one named observation space
    (``env.unwrapped.observation["BipartiteGraph"]`` computes it on request), a dict:
    ``graph`` (gymnasium ``Graph``: variable nodes then constraint nodes, 8 features each,
    see ``graph.py``; one edge per nonzero with its coefficient scaled into
    ``[-1, 1]``; the node type and degree-fraction columns in ``[0, 1]``, the columns that
    hold the instance's values unbounded), ``k_fraction`` (``Box(0, 1)``: the fraction of
    the integer variables the next step frees), ``budget_left`` (``Box(0, time_budget)``:
    CPU seconds of ``time_budget`` left), ``objective`` (``Box(-inf, inf)``: the
    incumbent's objective, as unbounded as the instance's).
    ``optgym.envs.lns.graph.to_hetero_data(obs)`` gives a torch-geometric ``HeteroData``.

    ## Rewards

    ``PrimalIntegral``: the decrease of the primal integral (the area under the primal gap
    against the reference objective, over CPU seconds since reset, up to ``time_budget``;
    :mod:`optgym.envs.lns.gap` defines it for the env, the bench report and the leaderboard)
    during the step, so an episode's return is minus its primal integral (the initial
    solve's area is booked at reset). Every new best solution SCIP finds inside a sub-MIP
    enters the trace at the CPU second it was found (so one long solve, the ``scip`` agent's,
    is measured as fairly as many short ones), and an episode that terminates early (a full
    solve proved optimality) is charged its final gap up to ``time_budget``. Measured times
    make it nondeterministic: ``validate`` checks the incumbent a state records (feasible,
    with the claimed objective), not the reward.

    The reference objective is, first found: the ``reference_objective`` argument; for a
    ``file://`` instance ``x.mps``, a reference run stored beside it as
    ``x.mps.reference.json`` (a JSON object: ``objective``, a finite number; ``sha256``, the
    instance file's; ``source``, how the objective was found); the packaged best-known
    objective (``optgym.datasets.lns.best_known``). Without any, every gap is 1 while the
    episode runs, and ``optgym bench``'s report measures gaps after the fact against the
    best objective any compared episode found.

    A hardware-independent work axis runs beside the clock: ``info["work"]`` and the state's
    ``trace_work``/``work_end`` count, for every SCIP solve of the episode (the initial one
    and each sub-MIP), its LP iterations and branch-and-bound nodes plus one unit per 1,000
    nonzeros of the constraint matrix (``worker.NONZEROS_PER_UNIT``: SCIP's transform and
    presolve read every row, and a sub-MIP that presolve solves has no LP iteration and no
    node). An agent's own computation (a network's forward pass, a local-branching LP) is
    not in it. It is a proxy, not calibrated to seconds: it ranks runs across machines.

    ## Starting State

    ``reset(options={"benchmark": uri})`` (or a reset after ``env.unwrapped.benchmark =
    uri``) loads a ``generator://<family>-<s|l>-v0/<seed>`` instance (the datasets are
    ``env.unwrapped.datasets``, indexed by name or URI: ``datasets["set-cover-s-v0"]``)
    or ``file:///path/x.mps`` (or ``.lp``) and runs SCIP for ``initial_time`` CPU
    seconds for the initial incumbent (cached per instance, so every agent starts from the
    same one; its time counts in ``time_budget``; a cached incumbent is used only if its
    integrity tag matches and it is feasible with the recorded objective). Instance files are
    ``.mps`` or ``.lp`` text of at most ``MAX_INSTANCE_BYTES`` (256 MiB), read from the bytes
    whose sha256 the benchmark recorded. An instance that cannot be used (not MPS/LP,
    too large, unreadable, infeasible, unbounded) raises ``ValueError`` naming the file
    (never quoting it) and leaves the env usable on its previous one.

    ## Episode End

    Truncated when ``time_budget`` CPU seconds are spent; terminates when a sub-MIP freeing
    every variable is solved to optimality. The CPU clock is this process's plus the SCIP
    worker's for each of its solves, so it also counts the agent's own work (scoring,
    local-branching solves). SCIP runs in a worker process the env owns
    (``optgym.envs.lns.worker``): a crash or kill of it truncates the episode with
    ``info["error"]``, and the next reset starts a new worker. Every ``info`` counts the
    step's ``sub_mip_solves`` (the work unit: one per step).

    ## Arguments

    ``benchmark``, ``subproblem_time`` (CPU seconds per sub-MIP, 2), ``initial_time`` (5),
    ``time_budget`` (60), ``k_start``/``k_growth``/``k_max`` (0.2/1.02/0.5), ``scip_seed``,
    ``reference_objective`` (None: see Rewards),
    ``reward_space`` (``PrimalIntegral``), ``render_mode`` (``"rgb_array"``: ``render()``
    returns a (320, 480, 3) uint8 plot of the primal gap, whose area is the primal
    integral, and of the incumbent's objective over CPU seconds since reset).

    ## Version History

    * v0: SCIP through pyscipopt, four generated families at S and L sizes; ``rgb_array``
      rendering and bounded ``budget_left`` and graph columns added without changing what a
      state replays to.

    ## Example

    >>> env = gym.make("optgym/ILPNeighborhood-v0")
    >>> obs, info = env.reset(options={"benchmark": "generator://vertex-cover-s-v0/0"})
    >>> scores = np.random.default_rng(0).random(env.action_space.shape)
    >>> obs, reward, terminated, truncated, info = env.step(scores)
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    record = PROBLEM
    env_id = ENV_ID
    default_benchmark = DEFAULT_BENCHMARK
    work_unit = "sub_mip_solves"
    # The reward (minus the primal integral) is recomputed from the state's trace of
    # improving incumbents over CPU seconds: a consistency check, since measured CPU times
    # cannot be measured again.
    reward_tolerance = RewardTolerance("relative", 1e-9)
    reward_spaces = ("PrimalIntegral",)
    observation_spaces = ("BipartiteGraph",)
    # Measured CPU times (and what they give): a replay cannot repeat them. ``_replay``
    # checks that they hold together: a trace that climbs in time and improves in objective,
    # gaps and the integral its points give, the clock at or past the trace's end.
    measured_extras = frozenset(
        {"cpu_seconds", "trace", "end_seconds", "primal_integral", "horizon", "trace_work",
         "work_end"}
    )  # fmt: skip
    config_added = ("reference_objective",)
    extras_added = frozenset({"horizon", "trace_work", "work_end"})

    def __init__(
        self,
        benchmark: str | None = None,
        subproblem_time: float = 2.0,
        initial_time: float = 5.0,
        time_budget: float = 60.0,
        k_start: float = 0.2,
        k_growth: float = 1.02,
        k_max: float = 0.5,
        scip_seed: int = 0,
        reward_space: str = "PrimalIntegral",
        render_mode: str | None = None,
        reference_objective: float | None = None,
    ):
        for name, value in (
            ("subproblem_time", subproblem_time),
            ("initial_time", initial_time),
            ("time_budget", time_budget),
        ):
            _check_seconds(name, value)
        for name, value in (("k_start", k_start), ("k_growth", k_growth), ("k_max", k_max)):
            if not _is_real(value) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not 0 < k_start <= k_max <= 1:
            raise ValueError(f"need 0 < k_start <= k_max <= 1, got {k_start}, {k_max}")
        if not k_growth >= 1:
            raise ValueError(f"k_growth must be >= 1, got {k_growth!r}")
        if isinstance(scip_seed, bool) or not isinstance(scip_seed, (int, np.integer)):
            raise ValueError(f"scip_seed must be an integer, got {scip_seed!r}")
        if not 0 <= scip_seed <= MAX_SCIP_SEED:
            raise ValueError(f"scip_seed must be in [0, {MAX_SCIP_SEED}] (SCIP's), got {scip_seed}")
        if reference_objective is not None and not (
            _is_real(reference_objective) and math.isfinite(reference_objective)
        ):
            raise ValueError(
                f"reference_objective must be None or a finite number (the objective gaps are "
                f"measured against), got {reference_objective!r}"
            )
        self.reference_objective = (
            None if reference_objective is None else float(reference_objective)
        )
        super().__init__(benchmark=benchmark, reward_space=reward_space, render_mode=render_mode)
        self.subproblem_time = subproblem_time
        self.initial_time = initial_time
        self.time_budget = time_budget
        self.k_start, self.k_growth, self.k_max = k_start, k_growth, k_max
        self.scip_seed = int(scip_seed)
        self.neighborhood_size = None
        # SCIP runs in this worker process, started at the first reset; forks share it
        self._worker = ScipWorker()
        self._owns_worker = True
        # the loaded instance (one kept), shared with forks: see fork()
        self._problems: dict[str, tuple[MipProblem, StaticGraph]] = {}
        self.problem: MipProblem | None = None
        self.graph: StaticGraph | None = None
        self.best_known: float | None = None
        self.observation_space = spaces.Dict(
            {
                "graph": GRAPH_SPACE,
                "k_fraction": spaces.Box(0.0, 1.0, (1,), np.float64),
                "budget_left": spaces.Box(0.0, float(time_budget), (1,), np.float64),
                "objective": spaces.Box(-np.inf, np.inf, (1,), np.float64),
            }
        )
        self.action_space = spaces.Box(-np.inf, np.inf, (1,), np.float64)  # shaped at reset

    # ---- the agent's controls, checked when set -----------------------------------------------
    @property
    def subproblem_time(self) -> float:
        """CPU seconds per sub-MIP (an agent control; positive and finite)."""
        return self._subproblem_time

    @subproblem_time.setter
    def subproblem_time(self, value: float) -> None:
        _check_seconds("subproblem_time", value)
        self._subproblem_time = float(value)

    @property
    def neighborhood_size(self) -> int | None:
        """A fixed number of variables to free per step, or None for the adaptive rule."""
        return self._neighborhood_size

    @neighborhood_size.setter
    def neighborhood_size(self, value: int | None) -> None:
        if value is not None and (
            isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
        ):
            raise ValueError(
                f"neighborhood_size must be None (adaptive) or an integer >= 1, got {value!r}"
            )
        if value is not None and value < 1:
            raise ValueError(f"neighborhood_size must be >= 1, got {value!r}")
        self._neighborhood_size = None if value is None else int(value)

    # ---- instances ----------------------------------------------------------------------------
    def _read_instance(self, benchmark: Benchmark) -> MipProblem:
        """The benchmark's instance from its verified bytes; ``InstanceError`` (a
        ValueError naming the file, never quoting it) when it cannot be one."""
        path = benchmark.path
        suffix = instance_suffix(path)
        limit = problem_module.MAX_INSTANCE_BYTES
        try:
            size = path.stat().st_size
        except OSError as e:
            raise InstanceError(f"cannot read {path}: {e.strerror}") from None
        if size > limit:
            raise InstanceError(
                f"{path} is {size} bytes; instance files are limited to {limit} bytes "
                "(optgym.envs.lns.problem.MAX_INSTANCE_BYTES)"
            )
        try:
            data = benchmark.read_bytes()  # checked against the sha256 recorded at resolve
        except OSError as e:
            raise InstanceError(f"cannot read {path}: {e.strerror}") from None
        if len(data) > limit:  # it grew after the stat
            raise InstanceError(f"{path} is over the limit of {limit} bytes")
        return MipProblem(data, path, self._worker, seed=self.scip_seed, suffix=suffix)

    def _load(self, benchmark: Benchmark) -> None:
        self._worker.start()  # a no-op while it runs; a new one after a crash
        if benchmark.sha256 not in self._problems:
            problem = self._read_instance(benchmark)
            self._problems = {benchmark.sha256: (problem, StaticGraph(problem))}  # keep one
        self.problem, self.graph = self._problems[benchmark.sha256]
        self.action_space = spaces.Box(-np.inf, np.inf, (self.problem.n,), np.float64)
        self.best_known = self._find_reference(benchmark)

    def _find_reference(self, benchmark: Benchmark) -> float | None:
        """The objective gaps are measured against (see Rewards), or None."""
        if self.reference_objective is not None:
            return self.reference_objective
        if benchmark.uri.startswith("file://"):
            found = read_reference(benchmark.path, benchmark.sha256)
            if found is not None:
                return found
        from optgym.datasets.lns import best_known_objective

        return best_known_objective(self.benchmark)

    def _cached_initial(self, path: Any) -> tuple[np.ndarray, float, float, int] | None:
        """The cached initial incumbent at ``path`` if its tag matches and it holds a
        feasible solution with its recorded objective; None (with a warning when a file was
        there but is not usable) otherwise."""
        raw = read_tagged(path, INITIAL_CACHE_PURPOSE)  # warns itself on a bad tag
        if raw is None:
            return None
        why = None
        try:
            data = json.loads(raw)
            solution = np.array(data["solution"], dtype=float)
            objective, seconds = float(data["objective"]), float(data["seconds"])
            work = data["work"]
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
            why = "it is not a record of solution, objective, seconds and work"
        else:
            if not (math.isfinite(seconds) and seconds >= 0):
                why = f"its CPU seconds {seconds!r} are not a finite number >= 0"
            elif isinstance(work, bool) or not isinstance(work, int) or work < 0:
                why = f"its work {work!r} is not an integer >= 0"
            else:
                why = self.problem.violation(solution)
            if why is None:
                actual = self.problem.objective(solution)
                if not abs(actual - objective) <= 1e-6 * max(1.0, abs(objective)):
                    why = f"its objective {objective!r} is not its solution's ({actual!r})"
        if why is not None:
            warnings.warn(
                f"cached initial incumbent {path} is not used ({why}): recomputing it",
                stacklevel=3,
            )
            return None
        return solution, objective, seconds, work

    def _initial_path(self) -> Any:
        """Where the initial incumbent of this instance and settings is cached."""
        # w: records that hold the solve's work (LP iterations plus nodes)
        key = f"{self.benchmark_sha256}-t{self.initial_time:g}-s{self.scip_seed}-w"
        return cache_dir() / "lns-initial" / f"{key}.json"

    def _initial(self) -> tuple[np.ndarray, float, float, int]:
        """(solution, objective, CPU seconds, work) of SCIP's initial run, cached per
        instance (tagged, and checked feasible with its objective when read)."""
        assert self.problem is not None
        path = self._initial_path()
        cached = self._cached_initial(path)
        if cached is not None:
            return cached
        result = self.problem.solve_initial(self.initial_time)
        if result.values is None:
            raise InstanceError(
                f"SCIP found no feasible solution of {self.benchmark} in "
                f"{self.initial_time} s (status {result.status}); raise initial_time"
            )
        why = self.problem.violation(result.values)
        if why is not None:
            raise InstanceError(f"SCIP's initial solution of {self.benchmark} fails: {why}")
        data = {"solution": result.values.tolist(), "objective": result.objective,
                "seconds": result.solve_seconds, "work": result.work}  # fmt: skip
        write_tagged(path, json.dumps(data).encode(), INITIAL_CACHE_PURPOSE)
        return result.values, result.objective, result.solve_seconds, result.work

    # ---- time and gap bookkeeping ------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        """CPU seconds of this episode so far: the initial solve, this process's time (a
        sandboxed agent's included: ``cpu_clock``) and the SCIP worker's time for its solves
        since reset."""
        worker = self._worker.cpu_seconds - self._worker_clock0
        return self._offset + self.cpu_clock() - self._clock0 + worker

    def _gap(self, objective: float | None) -> float:
        best = self.best_known
        if best is not None and objective is not None and self.problem.better(objective, best):
            return 0.0  # better than the best known: no gap
        return primal_gap(objective, best)

    def _advance(self, now: float) -> float:
        """Add gap * dt up to ``now`` (at most ``time_budget``: the integral's horizon) to
        the primal integral; return the added area."""
        until = min(now, self.time_budget)
        area = self._gap(self.objective) * max(0.0, until - self._t_last)
        self.primal_integral += area
        self._t_last = max(self._t_last, until)
        return area

    @property
    def k(self) -> int:
        """The neighborhood size the next step uses."""
        return self._k()

    def _k(self) -> int:
        n_int = len(self._int_idx)
        if self.neighborhood_size is not None:
            return int(min(max(self.neighborhood_size, 1), n_int))
        return int(min(max(round(self._k_frac * n_int), 1), n_int))

    def _named_observations(self) -> dict[str, NamedSpace]:
        return {"BipartiteGraph": NamedSpace(self.observation_space, self._obs)}

    def _obs(self) -> dict[str, Any]:
        lp = self._lp_values if self._lp_values is not None else np.zeros(self.problem.n)
        return {
            "graph": self.graph.instance(self._history, lp),
            "k_fraction": np.array([self._k() / max(len(self._int_idx), 1)]),
            "budget_left": np.array([max(0.0, self.time_budget - self.elapsed)]),
            "objective": np.array([self.objective]),
        }

    def _start_episode(
        self, solution: np.ndarray, objective: float, seconds: float, work: int = 0
    ) -> None:
        """Start from ``solution`` found after ``seconds`` CPU seconds and ``work`` units of
        work (its area is booked)."""
        self._int_idx = self.problem.int_indices
        self.incumbent = solution.copy()
        self.objective = float(objective)
        self.initial_objective = self.objective
        self._history = [solution.copy()] * 3
        self._lp_values: np.ndarray | None = None
        self._k_frac = self.k_start
        self._offset, self._clock0 = seconds, self.cpu_clock()
        self._worker_clock0 = self._worker.cpu_seconds
        self._t_last = 0.0
        self.primal_integral = 0.0
        self._advance(seconds)
        self._trace = [[seconds, self.objective, self._gap(self.objective)]]
        self.work = int(work)
        self._trace_work = [self.work]
        self._end = seconds  # the clock at the last step's end
        self._step_end = self.cpu_clock()
        self._total = -self.primal_integral

    def _info(self, **extra: Any) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "primal_gap": self._gap(self.objective),
            "primal_integral": self.primal_integral,
            "elapsed": self.elapsed,
            "work": self.work,
            **extra,
        }

    def neighborhood(self, scores: np.ndarray) -> np.ndarray:
        """The boolean mask of the integer variables a step with ``scores`` frees."""
        k = self._k()
        idx = self._int_idx
        s = scores[idx]
        keep = s > -np.inf  # -inf never frees
        candidates, s = idx[keep], s[keep]
        free = np.zeros(self.problem.n, dtype=bool)
        if k >= len(candidates):
            free[candidates] = True
            return free
        # the k highest scores, ties at the k-th broken towards the lower index (what a
        # stable sort of the scores would keep), without sorting them all
        kth = np.partition(s, len(s) - k)[len(s) - k]
        above = s > kth
        tied = np.flatnonzero(s == kth)[: k - int(above.sum())]
        free[candidates[above]] = True
        free[candidates[tied]] = True
        return free

    def lp_features(self) -> np.ndarray:
        """Values of the root LP relaxation (fills the observation's LP column). Its CPU
        time counts in the episode's clock, as the agent's work; it is no sub-MIP solve."""
        self._need_reset("lp_features()")
        self._lp_values = self.problem.local_branching(
            self.incumbent, len(self._int_idx), relax=True
        )
        return self._lp_values

    def score_vs_best_known(self) -> float:
        """Objective relative to the reference one (see Rewards), 1.0 = equal, < 1 worse
        (both senses). On an instance without a reference, relative to the episode's initial
        incumbent, SCIP's start that every agent shares (> 1: improved on it); the bench
        report's gaps and integrals then compare agents after the fact."""
        best = self.best_known if self.best_known is not None else self.initial_objective
        if best is None or self.objective == 0:
            return float("nan")
        ratio = best / self.objective
        return 1.0 / ratio if self.problem.maximize else ratio

    # ---- hooks of OptGymEnv -------------------------------------------------------------------
    def _reset(self, benchmark: Benchmark) -> tuple[dict[str, Any], dict[str, Any]]:
        saved = (self._problems, self.problem, self.graph, self.best_known, self.action_space)
        try:
            self._load(benchmark)
            solution, objective, seconds, work = self._initial()
        except BaseException:
            # the env stays usable on its last instance (the base restores the benchmark)
            self._problems, self.problem, self.graph, self.best_known, self.action_space = saved
            raise
        self._start_episode(solution, objective, seconds, work)
        return self._obs(), self._info(status="initial")

    def _check_action(self, action: Any) -> np.ndarray:
        n = self.problem.n
        allowed = (
            f"allowed: an array of shape ({n},) of real scores, one per variable (finite, or "
            "-inf for a variable never to free)"
        )
        scores = as_numbers(action, "an action", allowed, booleans="booleans (a mask)")
        if scores.shape != (n,):
            raise ValueError(
                f"action must hold one score per variable, shape ({n},); got shape "
                f"{scores.shape}; {allowed}"
            )
        for bad, name in ((np.isnan(scores), "NaN"), (scores == np.inf, "+inf")):
            if bad.any():
                at = np.flatnonzero(bad)
                raise ValueError(
                    f"action has {len(at)} {name} score(s) (at indices {at[:5].tolist()}); "
                    f"{allowed}"
                )
        return scores

    def _step(self, scores: np.ndarray) -> StepResult:
        t0, w0 = self.cpu_clock(), self._worker.cpu_seconds
        policy_seconds = t0 - self._step_end
        free = self.neighborhood(scores)
        start = self.elapsed
        left = self.time_budget - start
        self._spend(1)
        result = self.problem.solve_neighborhood(
            free, self.incumbent, min(self.subproblem_time, max(left, 0.01))
        )
        improved = False
        if result.values is not None and self.problem.better(result.objective, self.objective):
            why = self.problem.violation(result.values)
            if why is not None:  # never trust a sub-MIP blindly: keep the old incumbent
                result.status = f"rejected: {why}"
            else:
                improved = True
        before = self.primal_integral
        now = self.elapsed
        work0 = self.work
        self.work += result.work
        if improved:
            # SCIP's new incumbents at the CPU second and work it found each (the last one
            # is the checked solution), in order, each better than the one before
            points = [(start + t, work0 + w, o) for t, w, o in result.improvements
                      if self.problem.better(o, self.objective)]  # fmt: skip
            kept: list[tuple[float, int, float]] = []
            for t, w, o in points[:-1]:
                if self.problem.better(result.objective, o) and (
                    not kept or self.problem.better(o, kept[-1][2])
                ):
                    kept.append((min(t, now), min(w, self.work), o))
            found_t, found_w = (points[-1][0], points[-1][1]) if points else (now, self.work)
            kept.append((min(found_t, now), min(found_w, self.work), float(result.objective)))
            for t, w, o in kept:
                t = max(t, self._trace[-1][0])
                self._advance(t)
                self.objective = o
                self._trace.append([t, o, self._gap(o)])
                self._trace_work.append(max(w, self._trace_work[-1]))
            self.incumbent = result.values
        self._advance(now)
        self._end = now
        n_free = int(free.sum())
        if not improved and self.neighborhood_size is None:
            self._k_frac = min(self._k_frac * self.k_growth, self.k_max)
        self._history = [self.incumbent.copy(), *self._history[:2]]
        reward = -(self.primal_integral - before)
        terminated = n_free == len(self._int_idx) and result.status == "optimal"
        # the clock read now may pass the budget that ``now`` fell short of
        truncated = self.elapsed >= self.time_budget
        if terminated or truncated:  # the episode ends: its final gap holds to the budget
            self._advance(self.time_budget)
            reward = -(self.primal_integral - before)
        # this process's CPU for the step plus the worker's for the request, less SCIP's solve
        worker_seconds = self._worker.cpu_seconds - w0
        overhead = self.cpu_clock() - t0 + worker_seconds - result.solve_seconds
        self._step_end = self.cpu_clock()
        info = self._info(
            status=result.status,
            improved=improved,
            k=n_free,
            times={"policy": policy_seconds, "solve": result.solve_seconds, "overhead": overhead},
        )
        return self._obs(), reward, terminated, truncated, info

    def _record_action(self, action: np.ndarray, info: dict[str, Any]) -> int:
        """A state records each step's neighborhood size (the scores are not replayed)."""
        return int(info["k"])

    def _replay(self, state: EpisodeState) -> None:
        """Install the state's incumbent after checking it: feasible for the original model
        and with the claimed objective. The episode's reward is recomputed from the state's
        trace of improving incumbents (measured CPU times cannot be measured again), and the
        extras it claims are installed as checked (trace, its integral, its end); the
        episode goes on from the incumbent, its clock from the trace's end."""
        extras = state.extras or {}
        if "solution" not in extras or "objective" not in extras:
            raise ValueError("an LNS state needs extras 'solution' and 'objective'")
        n = self.problem.n
        x = np.zeros(n)
        try:
            for i, v in dict(extras["solution"]).items():
                if not 0 <= int(i) < n:
                    raise ValueError(f"solution index {i} is out of range (n = {n})")
                x[int(i)] = float(v)
            claimed = float(extras["objective"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"bad solution in the state: {e}") from None
        why = self.problem.violation(x)
        if why is not None:
            raise ValueError(f"the state's solution is infeasible: {why}")
        objective = self.problem.objective(x)
        if abs(objective - claimed) > 1e-6 * max(1.0, abs(claimed)):
            raise ValueError(f"claimed objective {claimed!r}, the solution's is {objective!r}")
        n_int = len(self.problem.int_indices)
        for size in state.actions:
            if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= n_int:
                raise ValueError(
                    f"state action {size!r} is no neighborhood size; allowed: an integer in "
                    f"[0, {n_int}] (the instance's integer variables)"
                )
        if not state.reward <= 0:
            raise ValueError(
                f"claimed reward {state.reward!r} is impossible: it is minus a primal integral "
                "(<= 0)"
            )
        integral, horizon = self._trace_integral(extras, objective)
        end = float(extras["end_seconds"])
        work, trace_work = self._trace_work_of(extras)
        cpu = extras.get("cpu_seconds", end)
        if isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or not cpu >= end:
            raise ValueError(
                f"cpu_seconds {cpu!r} must be a number >= end_seconds ({end!r}): the clock read "
                "when the state was taken"
            )
        self._start_episode(x, objective, 0.0, work)
        # the extras the state claims, as checked: its trace and what the trace gives
        self._trace = [[float(t), float(o), float(g)] for t, o, g in extras["trace"]]
        self._trace_work = trace_work or [0] * len(self._trace)
        self.initial_objective = self._trace[0][1]
        self.primal_integral = integral
        # the episode goes on from the trace's end
        self._offset, self._t_last, self._end = end, horizon, end
        self._actions = list(state.actions)
        self._total = -integral

    def _trace_integral(self, extras: dict[str, Any], objective: float) -> tuple[float, float]:
        """The primal integral that the state's trace (``[CPU seconds, objective, gap]`` at
        the initial incumbent and at each improvement) gives up to its ``horizon`` (the
        clock at the last step's end, ``end_seconds``, capped at ``time_budget``; the budget
        itself after an early proof of optimality; ``end_seconds`` in states made before
        the horizon was recorded), and that horizon; ``ValueError`` when the trace does not
        hold together: times that go back, objectives that do not improve, gaps or a final
        objective or integral that differ from what the objectives give."""
        trace, end = extras.get("trace"), extras.get("end_seconds")
        if not isinstance(trace, list) or not trace or not _is_real(end):
            raise ValueError("an LNS state needs extras 'trace' (non-empty) and 'end_seconds'")
        try:
            points = [(float(t), float(o), float(g)) for t, o, g in trace]
        except (TypeError, ValueError):
            raise ValueError("the trace must hold [seconds, objective, gap] triples") from None
        last_t, last_o = 0.0, None
        for t, o, g in points:
            if not (math.isfinite(t) and t >= last_t and math.isfinite(o)):
                raise ValueError("the trace's times must be finite and never go back")
            if last_o is not None and not self.problem.better(o, last_o):
                raise ValueError("each point of the trace must improve on the one before")
            if not abs(g - self._gap(o)) <= 1e-9:  # NaN fails too
                raise ValueError(f"the trace's gap {g!r} is not its objective's ({self._gap(o)!r})")
            last_t, last_o = t, o
        if not (math.isfinite(end) and end >= last_t):
            raise ValueError("end_seconds must be finite and not before the trace's last point")
        horizon = extras.get("horizon", end)
        allowed = (min(end, self.time_budget), self.time_budget)
        if not _is_real(horizon) or ("horizon" in extras and horizon not in allowed):
            raise ValueError(
                f"horizon {horizon!r} must be end_seconds capped at time_budget "
                f"({allowed[0]!r}), or time_budget ({allowed[1]!r}) after a proof of optimality"
            )
        if abs(last_o - objective) > 1e-6 * max(1.0, abs(objective)):
            raise ValueError(
                f"the trace ends at objective {last_o!r}, the solution's is {objective!r}"
            )
        area = primal_integral([(t, o) for t, o, _ in points], float(horizon), self._gap)
        claimed = extras.get("primal_integral")
        number = isinstance(claimed, (int, float)) and not isinstance(claimed, bool)
        if not (number and abs(claimed - area) <= 1e-9 * max(1.0, area)):  # NaN fails too
            raise ValueError(f"claimed primal integral {claimed!r}, the trace gives {area!r}")
        return area, float(horizon)

    def _trace_work_of(self, extras: dict[str, Any]) -> tuple[int, list[int] | None]:
        """The state's work so far and its work at each trace point (``work_end``,
        ``trace_work``: integers that never go back, one per trace point), or (0, None) for
        a state made before the work axis; ``ValueError`` when they do not hold together."""
        if "trace_work" not in extras and "work_end" not in extras:
            return 0, None
        work, trace_work = extras.get("work_end"), extras.get("trace_work")
        allowed = (
            "allowed: 'trace_work', one integer >= 0 per trace point that never goes back, "
            "and 'work_end' >= its last"
        )
        if isinstance(work, bool) or not isinstance(work, int) or work < 0:
            raise ValueError(f"work_end {work!r} is not an integer >= 0; {allowed}")
        if not isinstance(trace_work, list) or len(trace_work) != len(extras["trace"]):
            raise ValueError(f"trace_work is not a list as long as the trace; {allowed}")
        last = 0
        for w in trace_work:
            if isinstance(w, bool) or not isinstance(w, int) or not last <= w <= work:
                raise ValueError(f"trace_work holds {w!r}; {allowed}")
            last = w
        return work, list(trace_work)

    def _extras(self) -> dict[str, Any]:
        nonzero = {int(i): float(self.incumbent[i]) for i in np.flatnonzero(self.incumbent)}
        return {
            "objective": self.objective,
            "initial_objective": self.initial_objective,
            "primal_gap": self._gap(self.objective),
            "primal_integral": self.primal_integral,
            "solution": nonzero,
            "trace": self._trace,
            "end_seconds": self._end,
            "horizon": self._t_last,
            "trace_work": self._trace_work,
            "work_end": self.work,
            "cpu_seconds": self.elapsed,
        }

    def _versions(self) -> dict[str, str]:
        return {"scip": scip_version()}

    def _fork_into(self, new: OptGymEnv) -> None:
        for name in ("incumbent", "_history", "_trace", "_trace_work", "_lp_values"):
            setattr(new, name, copy.deepcopy(getattr(self, name)))
        new._owns_worker = False  # the parent's close() ends the shared worker

    def _on_crash(self) -> None:
        self._worker.kill()  # dead or hung: the next reset starts a new one

    # ---- gymnasium API -----------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        """With ``render_mode="rgb_array"``: a (320, 480, 3) uint8 picture of the episode so
        far: the incumbent's primal gap against the best-known objective over CPU seconds
        since reset (a step curve whose shaded area is the primal integral, the reward's
        measure), its objective on a second axis, and the time budget as a dashed line.
        None in any other render mode, and before the first reset."""
        if self.render_mode != "rgb_array" or not self._started:
            return None
        return _primal_trace_picture(
            self._trace,
            end=self._t_last,
            time_budget=self.time_budget,
            title=f"{self.benchmark}  objective {self.objective:.6g}  "
            f"gap {self._gap(self.objective):.3g}  integral {self.primal_integral:.3g}",
        )

    @property
    def worker_pid(self) -> int | None:
        """The process id of the SCIP worker while it runs (shared with forks)."""
        return self._worker.pid

    def close(self) -> None:
        """End the SCIP worker (a fork leaves its parent's running)."""
        worker = getattr(self, "_worker", None)  # None when __init__ failed early
        if worker is not None and self._owns_worker:
            worker.close()
        super().close()


def _primal_trace_picture(
    trace: list[list[float]], end: float, time_budget: float, title: str
) -> np.ndarray:
    """The RGB picture :meth:`ILPNeighborhoodEnv.render` returns: ``trace`` holds
    ``[CPU seconds, objective, gap]`` at the initial incumbent and at each improvement, the
    episode's clock stands at ``end``. Drawn with matplotlib's Agg canvas (no display and
    no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    times = [0.0] + [t for t, _, _ in trace] + [max(end, trace[-1][0])]
    # the initial solve's seconds count at the initial incumbent's gap (as the integral does)
    gaps = [trace[0][2]] + [g for _, _, g in trace] + [trace[-1][2]]
    objectives = [trace[0][1]] + [o for _, o, _ in trace] + [trace[-1][1]]
    fig = Figure(figsize=(6, 4), dpi=80)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.step(times, gaps, where="post", color="tab:red", label="primal gap")
    ax.fill_between(times, gaps, step="post", color="tab:red", alpha=0.2)
    ax.axvline(time_budget, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0.0, max(time_budget, times[-1]) * 1.02)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("CPU seconds since reset")
    ax.set_ylabel("primal gap", color="tab:red")
    right = ax.twinx()
    right.step(times, objectives, where="post", color="tab:blue", linewidth=1)
    right.set_ylabel("objective", color="tab:blue")
    ax.set_title(title, fontsize=7)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_seconds(name: str, value: Any) -> None:
    """``ValueError`` unless ``value`` is a positive, finite number of CPU seconds."""
    if not _is_real(value) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive, finite number of CPU seconds, got {value!r}")
