"""Nonlinear route planning through linear surrogate costs (SurCo's route-planning problem)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from gymnasium import spaces

from optgym.datasets.dataset import Benchmark
from optgym.datasets.surco.routes import RouteInstance, load_benchmark_route, on_time_probability
from optgym.env import NamedSpace, OptGymEnv, RewardTolerance, StepResult
from optgym.envs.surco import DEFAULT_BENCHMARK, ENV_ID, PROBLEM
from optgym.envs.surco.solver import shortest_path

#: The largest surrogate cost: a path's summed costs stay far from overflowing.
MAX_COST = 1e100
#: The deadline ratio of the observation is capped here (a least expected time of 0).
MAX_RATIO = 1e6
#: Features of an edge in the observation, in order.
EDGE_FEATURES = ("mean", "variance", "last_cost", "on_last_path", "on_best_path")
#: Features of a node in the observation, in order.
NODE_FEATURES = ("is_source", "is_target")


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


class SurrogateOptimizationEnv(OptGymEnv[dict, np.ndarray]):
    """
    ## Description

    Nonlinear route planning by linear surrogates, after SurCo (Ferber et al., "Learning
    Linear Surrogates for Combinatorial Nonlinear Optimization Problems", ICML 2023). A
    route is a directed graph whose edges have independent normal travel times
    (``mean``, ``variance``), a source, a target and a deadline; the objective of a
    source-target path is its on-time probability ``P(T <= deadline) = Phi((deadline -
    mu) / sigma)``, ``mu`` and ``sigma**2`` the sums of the means and variances along it.
    That objective is not linear in the path, so no shortest-path solver optimizes it
    directly: the agent proposes linear surrogate costs, one per edge; each step solves
    the shortest path under them (Dijkstra, ties broken deterministically: see
    ``optgym.envs.surco.solver``) and scores that path by its on-time probability. The
    env keeps the best path found (``best_path``, its ``best_probability`` and the
    ``best_costs`` that gave it).

    Each step is one ``solver_calls`` unit of work, charged to the attached budget meter
    before the path is solved (a step past the budget raises ``BudgetExceeded`` and solves
    nothing). ``env.unwrapped.route`` is the instance (a
    ``optgym.datasets.surco.RouteInstance``: ``tails``, ``heads``, ``means``,
    ``variances``, ``source``, ``target`` and the ``deadline`` in force), what an agent
    needs to differentiate the objective; ``env.unwrapped.fork()`` gives an independent
    copy at the same point of the episode (the instance is shared), whose steps charge the
    same meter.

    ## Action Space

    ``Box(0, 1e100, (E,), float64)``, ``E`` the instance's edge count (the shape is set when
    a route is loaded): the surrogate cost of every edge, in edge order. Only the order of
    path sums counts, so the scale is free. A list is accepted too; another shape, NaN,
    inf, a negative cost, a cost above ``1e100`` (``MAX_COST``), strings or booleans raise
    ``ValueError`` naming what is wrong and what is allowed.

    ## Observation Space

    ``RouteGraph``, the env's one named observation space
    (``env.unwrapped.observation["RouteGraph"]`` computes it on request), a ``Dict``:

    * ``graph``: a gymnasium ``Graph`` of the route: node features ``is_source``,
      ``is_target`` (``Box(0, 1, (2,))``); one edge per route edge, in edge order, its
      ``edge_links`` row ``(u, v)`` and its features ``mean``, ``variance``, ``last_cost``
      (the cost the last step gave it, 0 before the first), ``on_last_path`` and
      ``on_best_path`` (0 or 1) (``Box(0, inf, (5,))``);
    * ``best_probability``: ``Box(0, 1, (1,))``, the best on-time probability so far (0
      before the first step);
    * ``deadline_ratio``: ``Box(0, inf, (1,))``, the deadline divided by the least
      expected time from the source to the target (capped at ``1e6``).

    ``optgym.wrappers.PaddedGraph`` turns it into fixed-size arrays for stable-baselines3
    (``envs/surco/hyperparams/SurrogateOptimization-v0.yml``).

    ## Rewards

    ``OnTimeProbability``: the increase of the best on-time probability over the step (0
    when the step's path is no better), so an episode's return is the best probability it
    found, in ``[0, 1]``; ``state.reward`` is that best probability itself (computed once,
    not summed). Deterministic: a state replays to the very same reward. Every ``info``
    holds the step's ``path`` (edge indices, source to target), its ``probability``,
    ``expected_time`` (``mu``) and ``variance`` (``sigma**2``), and ``best_probability``.

    ## Starting State

    ``reset(options={"benchmark": uri})`` loads ``generator://routes-v0/<seed>`` (seeded
    road-like grids; the seed's remainder modulo 3 picks the deadline factor 1.1, 1.0 or
    0.9: see ``optgym.datasets.surco.generator``) or ``file:///path/instance.json`` in the
    route format of ``optgym.datasets.surco.routes``; without options the last route is
    kept (or the one set with ``env.unwrapped.benchmark = uri``); the first reset takes
    ``generator://routes-v0/0``. A route that breaks the format, or has no path from the
    source to the target, raises ``ValueError`` naming the file and what is wrong (never
    quoting it) and leaves the env on its previous route. A reset forgets the best path.

    ## Episode End

    The env never ends an episode by itself: the registration's step limit (100 steps)
    truncates a training episode, and the runner's budget ends a search (the runner makes
    the env without the step limit).

    ## Arguments

    ``benchmark`` (the first reset's URI), ``reward_space`` (``"OnTimeProbability"``),
    ``deadline_factor`` (None: the route's own deadline; a number ``f > 0``: the deadline
    is ``f`` times the least expected time, as the SurCo paper sets it), ``render_mode``
    (None: the env does not render). ``config`` holds ``reward_space`` and
    ``deadline_factor``.

    ## Version History

    * v0: the stochastic shortest path with a deadline, Dijkstra as the linear solver,
      ``routes-v0`` grids.

    ## Example

    >>> import gymnasium as gym, numpy as np, optgym
    >>> env = gym.make("optgym/SurrogateOptimization-v0")
    >>> obs, info = env.reset(options={"benchmark": "generator://routes-v0/5"})
    >>> route = env.unwrapped.route  # seed 5: the deadline is 0.9 x the least expected time
    >>> obs, reward, terminated, truncated, info = env.step(route.means)  # the fastest path
    >>> round(info["probability"], 3)
    0.014
    >>> risky = np.clip(route.means - 0.1 * route.variances, 0.0, None)  # variance helps here
    >>> obs, reward, terminated, truncated, info = env.step(risky)
    >>> round(env.unwrapped.best_probability, 3), round(reward, 3)
    (0.101, 0.088)
    """

    metadata = {"render_modes": []}
    record = PROBLEM
    env_id = ENV_ID
    default_benchmark = DEFAULT_BENCHMARK
    work_unit = "solver_calls"
    reward_tolerance = RewardTolerance("exact")  # pure Python sums in path order
    reward_spaces = ("OnTimeProbability",)
    observation_spaces = ("RouteGraph",)

    def __init__(
        self,
        benchmark: str | None = None,
        reward_space: str = "OnTimeProbability",
        deadline_factor: float | None = None,
        render_mode: str | None = None,
    ):
        if deadline_factor is not None and not (
            _is_real(deadline_factor) and math.isfinite(deadline_factor) and deadline_factor > 0
        ):
            raise ValueError(
                f"deadline_factor must be None (the route's own deadline) or a finite number "
                f"> 0 (times the least expected time), got {deadline_factor!r}"
            )
        super().__init__(benchmark=benchmark, reward_space=reward_space, render_mode=render_mode)
        self.deadline_factor = None if deadline_factor is None else float(deadline_factor)
        self.observation_space = spaces.Dict(
            {
                "graph": spaces.Graph(
                    node_space=spaces.Box(0.0, 1.0, (len(NODE_FEATURES),), np.float64),
                    edge_space=spaces.Box(0.0, np.inf, (len(EDGE_FEATURES),), np.float64),
                ),
                "best_probability": spaces.Box(0.0, 1.0, (1,), np.float64),
                "deadline_ratio": spaces.Box(0.0, np.inf, (1,), np.float64),
            }
        )
        self._route_sha256 = ""
        # the first route is loaded now so that the action space exists before reset
        self._load(self.datasets.benchmark(self._benchmark_uri))
        self._clear()

    # ---- routes -------------------------------------------------------------------------------
    def _load(self, benchmark: Benchmark) -> None:
        """Load ``benchmark``'s route unless it is the one loaded; a bad file raises
        ``ValueError`` and keeps the current route."""
        if benchmark.sha256 == self._route_sha256:
            return
        route = load_benchmark_route(benchmark)
        expected = route.path_moments(shortest_path(route, route.means.tolist()))[0]
        if self.deadline_factor is not None:
            route = dataclasses.replace(route, deadline=self.deadline_factor * expected)
        nodes = np.zeros((route.nodes, len(NODE_FEATURES)), np.float64)
        nodes[route.source, 0] = nodes[route.target, 1] = 1.0
        self.route: RouteInstance = route
        self.least_expected_time = expected
        self.action_space = spaces.Box(0.0, MAX_COST, (route.n_edges,), np.float64)
        self._nodes = nodes
        self._links = np.stack([route.tails, route.heads], axis=1)
        self._route_sha256 = benchmark.sha256

    def _clear(self) -> None:
        """Forget the search: no step taken on this route."""
        e = self.route.n_edges
        self.best_probability = 0.0
        self.best_path: list[int] | None = None
        self.best_costs: np.ndarray | None = None
        self._last_costs = np.zeros(e)
        self._last_path: list[int] = []

    # ---- observations -------------------------------------------------------------------------
    def _named_observations(self) -> dict[str, NamedSpace]:
        return {"RouteGraph": NamedSpace(self.observation_space, self._obs)}

    def _obs(self) -> dict[str, Any]:
        route = self.route
        edges = np.zeros((route.n_edges, len(EDGE_FEATURES)), np.float64)
        edges[:, 0], edges[:, 1], edges[:, 2] = route.means, route.variances, self._last_costs
        edges[self._last_path, 3] = 1.0
        if self.best_path is not None:
            edges[self.best_path, 4] = 1.0
        expected = self.least_expected_time
        ratio = MAX_RATIO if expected <= 0 else min(route.deadline / expected, MAX_RATIO)
        return {
            # fresh arrays each call: users keep what an env returns
            "graph": spaces.GraphInstance(
                nodes=self._nodes.copy(), edges=edges, edge_links=self._links.copy()
            ),
            "best_probability": np.array([self.best_probability], np.float64),
            "deadline_ratio": np.array([ratio], np.float64),
        }

    # ---- hooks of OptGymEnv -------------------------------------------------------------------
    def _reset(self, benchmark: Benchmark) -> tuple[dict[str, Any], dict[str, Any]]:
        self._load(benchmark)  # changes nothing unless the route loads: the env stays usable
        self._clear()
        info = {"least_expected_time": self.least_expected_time, "deadline": self.route.deadline}
        return self._obs(), info

    def _check_action(self, action: Any) -> np.ndarray:
        e = self.route.n_edges
        allowed = (
            f"allowed: an array of shape ({e},), one surrogate cost per edge, each finite, "
            f">= 0 and <= {MAX_COST:g}"
        )
        if isinstance(action, (str, bytes, bool, np.bool_)):
            raise ValueError(f"action is a {type(action).__name__}; {allowed}")
        try:
            costs = np.asarray(action)
        except (ValueError, TypeError):  # ragged nested lists
            raise ValueError(f"action is not an array of numbers; {allowed}") from None
        if costs.dtype.kind not in "iuf":
            kinds = {"b": "booleans", "U": "strings", "S": "bytes", "c": "complex numbers",
                     "O": "objects"}  # fmt: skip
            what = kinds.get(costs.dtype.kind, f"values of type {costs.dtype}")
            raise ValueError(f"action holds {what}; {allowed}")
        if costs.shape != (e,):
            raise ValueError(
                f"action must hold one cost per edge of this route, shape ({e},); got shape "
                f"{costs.shape}; {allowed}"
            )
        costs = costs.astype(np.float64)
        for bad, name in ((np.isnan(costs), "NaN"), (np.isinf(costs), "infinite"),
                          (costs < 0, "negative"), (costs > MAX_COST, "too large")):  # fmt: skip
            if bad.any():
                at = np.flatnonzero(bad)
                raise ValueError(
                    f"action has {len(at)} {name} cost(s) (at edges {at[:5].tolist()}); {allowed}"
                )
        return costs

    def _step(self, costs: np.ndarray) -> StepResult:
        self._spend(1)
        path = shortest_path(self.route, costs.tolist())
        mean, variance = self.route.path_moments(path)
        probability = on_time_probability(mean, variance, self.route.deadline)
        reward = 0.0
        if probability > self.best_probability or self.best_path is None:
            reward = probability - self.best_probability
            self.best_probability = probability
            self.best_path = path
            self.best_costs = costs
        self._last_costs = costs
        self._last_path = path
        info = {
            "path": list(path),
            "probability": probability,
            "expected_time": mean,
            "variance": variance,
            "best_probability": self.best_probability,
        }
        return self._obs(), reward, False, False, info

    def _record_action(self, action: np.ndarray, info: dict[str, Any]) -> list[float]:
        return action.tolist()

    def _exact_episode_reward(self) -> float:
        return self.best_probability

    def _extras(self) -> dict[str, Any]:
        if self.best_path is None:
            return {}
        mean, variance = self.route.path_moments(self.best_path)
        return {"best_path": list(self.best_path), "expected_time": mean, "variance": variance}

    def _fork_into(self, new: OptGymEnv) -> None:
        assert isinstance(new, SurrogateOptimizationEnv)
        new.best_path = None if self.best_path is None else list(self.best_path)
        new._last_path = list(self._last_path)
