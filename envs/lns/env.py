"""Large Neighborhood Search for integer programs on SCIP: choose which variables to free."""

from __future__ import annotations

import json
import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import optgym
from optgym.datasets.cache import cache_dir, write_atomic
from optgym.datasets.dataset import Benchmark, DatasetRegistry
from optgym.envs.lns.graph import GRAPH_SPACE, StaticGraph
from optgym.envs.lns.problem import InstanceError, MipProblem
from optgym.state import EpisodeState, ValidationResult, check_state_for

ENV_ID = "optgym/ILPNeighborhood-v0"
DEFAULT_BENCHMARK = "generator://vertex-cover-s-v0/0"


def ilp_registry() -> DatasetRegistry:
    from optgym.datasets.ilp import ilp_datasets

    return DatasetRegistry(ilp_datasets())


def primal_gap(objective: float | None, best: float | None) -> float:
    """Berthold's primal gap in [0, 1]: 1 without a solution or with opposite signs."""
    if objective is None or best is None:
        return 1.0
    if objective == best:
        return 0.0
    if objective * best < 0:
        return 1.0
    return min(1.0, abs(objective - best) / max(abs(objective), abs(best)))


class ILPNeighborhoodEnv(gym.Env[dict, np.ndarray]):
    """
    ## Description

    Large Neighborhood Search (LNS) for mixed-integer programs, after the LB-RELAX and CL-LNS
    papers. SCIP finds an initial incumbent; then each step the agent scores the variables,
    the env frees the ``k`` best-scored integer variables, fixes every other one to the
    incumbent, solves that sub-MIP with SCIP under a CPU-time limit (the incumbent given as
    start solution, hence cutoff) and keeps the better solution. A feasible incumbent is
    never lost, and every incumbent is checked against the original constraints.

    ## Action Space

    ``Box(-inf, inf, (n,))``: one score per variable of the current instance (the shape is
    set at reset). NaN is an error; ``-inf`` never frees a variable. The neighborhood size
    ``k`` follows the papers' adaptive rule (start at ``k_start * n_int``, times
    ``k_growth`` after a step without improvement, at most ``k_max * n_int``) unless the
    agent sets ``env.unwrapped.neighborhood_size``.

    ## Observation Space

    A dict: ``graph`` (gymnasium ``Graph``: variable nodes then constraint nodes, 8 features
    each, see ``graph.py``; one edge per nonzero with its coefficient), ``k_fraction``,
    ``budget_left`` (CPU seconds of ``time_budget``), ``objective``.
    ``optgym.envs.lns.graph.to_hetero_data(obs)`` gives a torch-geometric ``HeteroData``.

    ## Rewards

    The decrease of the primal integral (the area under the primal gap against the
    best-known objective, over CPU seconds since reset) during the step, so an episode's
    return is minus its primal integral. Measured times make it nondeterministic.

    ## Starting State

    ``reset(options={"benchmark": uri})`` loads a ``generator://<family>-<s|l>-v0/<seed>``
    instance or ``file:///path/x.mps`` (or ``.lp``) and runs SCIP for ``initial_time`` CPU
    seconds for the initial incumbent (cached per instance, so every agent starts from the
    same one; its time counts in the budget).

    ## Episode End

    Truncated when ``time_budget`` CPU seconds are spent; terminates when a sub-MIP freeing
    every variable is solved to optimality.

    ## Arguments

    ``benchmark``, ``subproblem_time`` (CPU seconds per sub-MIP, 2), ``initial_time`` (5),
    ``time_budget`` (60), ``k_start``/``k_growth``/``k_max`` (0.2/1.02/0.5), ``scip_seed``.

    ## Version History

    * v0: SCIP through pyscipopt, four generated families at S and L sizes.

    ## Example

    >>> env = gym.make("optgym/ILPNeighborhood-v0")
    >>> obs, info = env.reset(options={"benchmark": "generator://vertex-cover-s-v0/0"})
    >>> scores = np.random.default_rng(0).random(env.action_space.shape)
    >>> obs, reward, terminated, truncated, info = env.step(scores)
    """

    metadata = {"render_modes": []}

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
    ):
        if reward_space != "PrimalIntegral":
            raise ValueError(f"unknown reward space {reward_space!r}; allowed: PrimalIntegral")
        for name, value in (("subproblem_time", subproblem_time), ("time_budget", time_budget)):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if not 0 < k_start <= k_max <= 1:
            raise ValueError(f"need 0 < k_start <= k_max <= 1, got {k_start}, {k_max}")
        self.reward_space_name = reward_space
        self.subproblem_time = subproblem_time
        self.initial_time = initial_time
        self.time_budget = time_budget
        self.k_start, self.k_growth, self.k_max = k_start, k_growth, k_max
        self.scip_seed = scip_seed
        self.neighborhood_size: int | None = None
        self.datasets = ilp_registry()
        self._benchmark_uri = benchmark or DEFAULT_BENCHMARK
        self._problems: dict[str, tuple[MipProblem, StaticGraph]] = {}
        self.problem: MipProblem | None = None
        self.observation_space = spaces.Dict(
            {
                "graph": GRAPH_SPACE,
                "k_fraction": spaces.Box(0.0, 1.0, (1,), np.float64),
                "budget_left": spaces.Box(0.0, np.inf, (1,), np.float64),
                "objective": spaces.Box(-np.inf, np.inf, (1,), np.float64),
            }
        )
        self.action_space = spaces.Box(-np.inf, np.inf, (1,), np.float64)
        self._load(self._benchmark_uri)

    # ---- instances ----------------------------------------------------------------------------
    def _load(self, uri: str) -> None:
        benchmark: Benchmark = self.datasets.benchmark(uri)
        if benchmark.sha256 not in self._problems:
            problem = MipProblem(benchmark.path, seed=self.scip_seed)
            self._problems = {benchmark.sha256: (problem, StaticGraph(problem))}  # keep one
        self.problem, self.graph = self._problems[benchmark.sha256]
        self.benchmark_sha256 = benchmark.sha256
        self._benchmark_uri = uri
        self.action_space = spaces.Box(-np.inf, np.inf, (self.problem.n,), np.float64)
        from optgym.datasets.ilp import best_known

        self.best_known = best_known(uri)

    def _initial(self) -> tuple[np.ndarray, float, float]:
        """(solution, objective, CPU seconds) of SCIP's initial run, cached per instance."""
        key = f"{self.benchmark_sha256}-t{self.initial_time:g}-s{self.scip_seed}"
        path = cache_dir() / "lns-initial" / f"{key}.json"
        if path.exists():
            data = json.loads(path.read_text())
            return np.array(data["solution"]), data["objective"], data["seconds"]
        result = self.problem.solve_initial(self.initial_time)
        if result.values is None:
            raise InstanceError(
                f"SCIP found no feasible solution of {self._benchmark_uri} in "
                f"{self.initial_time} s (status {result.status}); raise initial_time"
            )
        why = self.problem.violation(result.values)
        if why is not None:
            raise InstanceError(f"SCIP's initial solution of {self._benchmark_uri} fails: {why}")
        data = {"solution": result.values.tolist(), "objective": result.objective,
                "seconds": result.solve_seconds}  # fmt: skip
        write_atomic(path, json.dumps(data).encode())
        return result.values, result.objective, result.solve_seconds

    @property
    def benchmark(self) -> str:
        return self._benchmark_uri

    # ---- time and gap bookkeeping ------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        """CPU seconds of this episode so far, the initial solve included."""
        return self._offset + time.process_time() - self._clock0

    def _gap(self, objective: float | None) -> float:
        best = self.best_known
        if best is not None and objective is not None and self.problem.better(objective, best):
            return 0.0  # better than the best known: no gap
        return primal_gap(objective, best)

    def _advance(self, now: float) -> float:
        """Add gap * dt up to ``now`` to the primal integral; return the added area."""
        area = self._gap(self.objective) * max(0.0, now - self._t_last)
        self.primal_integral += area
        self._t_last = now
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

    def _obs(self) -> dict[str, Any]:
        lp = self._lp_values if self._lp_values is not None else np.zeros(self.problem.n)
        return {
            "graph": self.graph.instance(self._history, lp),
            "k_fraction": np.array([self._k() / max(len(self._int_idx), 1)]),
            "budget_left": np.array([max(0.0, self.time_budget - self.elapsed)]),
            "objective": np.array([self.objective]),
        }

    # ---- gymnasium API ------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        uri = options.pop("benchmark", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; allowed: 'benchmark'")
        previous = self._benchmark_uri
        try:
            self._load(str(uri) if uri is not None else self._benchmark_uri)
            solution, objective, seconds = self._initial()
        except InstanceError:
            self._load(previous)  # the env stays usable on its last instance
            raise
        self._start_episode(solution, objective, seconds)
        self._seed = seed
        return self._obs(), self._info(status="initial")

    def _start_episode(self, solution: np.ndarray, objective: float, seconds: float) -> None:
        self._int_idx = self.problem.int_indices
        self.incumbent = solution.copy()
        self.objective = float(objective)
        self.initial_objective = self.objective
        self._history = [solution.copy()] * 3
        self._lp_values: np.ndarray | None = None
        self._k_frac = self.k_start
        self._offset, self._clock0 = seconds, time.process_time()
        self._t_last = 0.0
        self.primal_integral = 0.0
        self._advance(seconds)
        self._trace = [[round(seconds, 4), self.objective, self._gap(self.objective)]]
        self._sizes: list[int] = []
        self._step_end = time.process_time()
        self._total = -self.primal_integral
        self._done = False
        self._seed = None

    def _info(self, **extra: Any) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "primal_gap": self._gap(self.objective),
            "primal_integral": self.primal_integral,
            "elapsed": self.elapsed,
            "calls": 1,
            **extra,
        }

    def _check_action(self, action: Any) -> np.ndarray:
        scores = np.asarray(action, dtype=float)
        if scores.shape != (self.problem.n,):
            raise ValueError(
                f"action must hold one score per variable, shape ({self.problem.n},); got "
                f"shape {scores.shape}"
            )
        if np.isnan(scores).any():
            raise ValueError(f"action has NaN scores (at {np.flatnonzero(np.isnan(scores))[:5]})")
        return scores

    def neighborhood(self, scores: np.ndarray) -> np.ndarray:
        """The boolean mask of the integer variables a step with ``scores`` frees."""
        k = self._k()
        idx = self._int_idx
        s = scores[idx]
        candidates = idx[s > -np.inf]  # -inf never frees
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        free = np.zeros(self.problem.n, dtype=bool)
        free[order[:k]] = True
        return free

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.problem is None or not hasattr(self, "incumbent"):
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode is over; call reset()")
        scores = self._check_action(action)
        t0 = time.process_time()
        policy_seconds = t0 - self._step_end
        free = self.neighborhood(scores)
        left = self.time_budget - self.elapsed
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
        self._advance(now)
        if improved:
            self.incumbent, self.objective = result.values, float(result.objective)
            self._trace.append([round(now, 4), self.objective, self._gap(self.objective)])
        n_free = int(free.sum())
        self._sizes.append(n_free)
        if not improved and self.neighborhood_size is None:
            self._k_frac = min(self._k_frac * self.k_growth, self.k_max)
        self._history = [self.incumbent.copy(), *self._history[:2]]
        reward = -(self.primal_integral - before)
        self._total += reward
        freed_all = n_free == len(self._int_idx)
        terminated = freed_all and result.status == "optimal"
        truncated = self.elapsed >= self.time_budget
        self._done = terminated or truncated
        overhead = time.process_time() - t0 - result.solve_seconds
        self._step_end = time.process_time()
        info = self._info(
            status=result.status,
            improved=improved,
            k=n_free,
            times={"policy": policy_seconds, "solve": result.solve_seconds, "overhead": overhead},
        )
        return self._obs(), reward, terminated, truncated, info

    def lp_features(self) -> np.ndarray:
        """Values of the root LP relaxation (fills the observation's LP column)."""
        self._lp_values = self.problem.local_branching(
            self.incumbent, len(self._int_idx), relax=True
        )
        return self._lp_values

    # ---- states -------------------------------------------------------------------------------
    @property
    def state(self) -> EpisodeState:
        if not hasattr(self, "incumbent"):
            raise RuntimeError("call reset() before reading the state")
        nonzero = {int(i): float(self.incumbent[i]) for i in np.flatnonzero(self.incumbent)}
        return EpisodeState(
            env_id=self.spec.id if self.spec else ENV_ID,
            benchmark=self._benchmark_uri,
            reward_space=self.reward_space_name,
            actions=list(self._sizes),
            reward=self._total,
            seed=self._seed,
            walltime=self.elapsed,
            versions={"optgym": optgym.__version__, "benchmark_sha256": self.benchmark_sha256},
            extras={
                "objective": self.objective,
                "initial_objective": self.initial_objective,
                "primal_gap": self._gap(self.objective),
                "primal_integral": self.primal_integral,
                "solution": nonzero,
                "trace": self._trace,
            },
        )

    def apply(self, state: EpisodeState) -> float:
        """Load ``state.benchmark`` and install its incumbent after checking it: feasible
        for the original model and with the claimed objective. Returns the claimed reward
        (a measured primal integral, which no replay reproduces exactly)."""
        check_state_for(state, ENV_ID)
        extras = state.extras or {}
        if "solution" not in extras or "objective" not in extras:
            raise ValueError("an LNS state needs extras 'solution' and 'objective'")
        self._load(state.benchmark)
        x = np.zeros(self.problem.n)
        for i, v in extras["solution"].items():
            if not 0 <= int(i) < self.problem.n:
                raise ValueError(f"solution index {i} is out of range (n = {self.problem.n})")
            x[int(i)] = v
        why = self.problem.violation(x)
        if why is not None:
            raise ValueError(f"the state's solution is infeasible: {why}")
        objective = self.problem.objective(x)
        claimed = float(extras["objective"])
        if abs(objective - claimed) > 1e-6 * max(1.0, abs(claimed)):
            raise ValueError(f"claimed objective {claimed!r}, the solution's is {objective!r}")
        self._start_episode(x, objective, 0.0)
        self._total = state.reward
        return state.reward

    def validate(self, state: EpisodeState | None = None) -> ValidationResult:
        """Check a state's incumbent (feasibility and objective); times are not replayed."""
        state = state if state is not None else self.state
        try:
            reward = self.apply(state)
        except (ValueError, RuntimeError) as e:
            return ValidationResult(state, False, None, str(e))
        return ValidationResult(state, True, reward)

    def score_vs_best_known(self) -> float:
        """Objective relative to the best-known one, 1.0 = equal, < 1 worse (both senses)."""
        best = self.best_known
        if best is None or self.objective == 0:
            return float("nan")
        ratio = best / self.objective
        return 1.0 / ratio if self.problem.maximize else ratio
