"""Nonlinear combinatorial optimization through linear surrogate costs (SurCo): route planning
and embedding-table sharding."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from gymnasium import spaces

from optgym.datasets.dataset import Benchmark
from optgym.datasets.surco.instances import load_benchmark_instance
from optgym.datasets.surco.routes import RouteInstance, on_time_probability
from optgym.datasets.surco.sharding import ShardingInstance
from optgym.env import (
    BackendCrash,
    NamedSpace,
    OptGymEnv,
    RewardTolerance,
    StepResult,
    as_numbers,
)
from optgym.envs.surco import DEFAULT_BENCHMARK, ENV_ID, PROBLEM, SHARDING_BENCHMARK
from optgym.envs.surco.solver import (
    AssignmentError,
    assign_tables,
    reference_placement,
    scip_version,
    shortest_path,
)

#: The largest surrogate cost: a path's summed costs stay far from overflowing.
MAX_COST = 1e100
#: The deadline ratio of the observation is capped here (a least expected time of 0).
MAX_RATIO = 1e6
#: Features of an edge in the observation, in order.
EDGE_FEATURES = ("mean", "variance", "last_cost", "on_last_path", "on_best_path")
#: Features of a node in the observation, in order.
NODE_FEATURES = ("is_source", "is_target")
#: Features of a sharding node (the tables, then the devices), in order.
SHARDING_NODE_FEATURES = ("is_device", "size", "pooling", "dim", "capacity")
#: Features of a sharding edge (one per table and device, in action order), in order.
SHARDING_EDGE_FEATURES = ("last_cost", "on_last_placement", "on_best_placement")
#: The reward space of each kind of instance.
REWARD_SPACES = {"route": "OnTimeProbability", "sharding": "Speedup"}


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


class SurrogateOptimizationEnv(OptGymEnv[dict, np.ndarray]):
    """
    ## Description

    Nonlinear combinatorial optimization by linear surrogates, after SurCo (Ferber et al.,
    "Learning Linear Surrogates for Combinatorial Nonlinear Optimization Problems", ICML
    2023): the agent proposes linear surrogate costs, each step solves the linear problem
    under them and scores the solution by a nonlinear objective the solver cannot optimize
    directly. An instance file's ``"kind"`` says which of two problems it is:

    * ``"route"``: a directed graph whose edges have independent normal travel times
      (``mean``, ``variance``), a source, a target and a deadline; the objective of a
      source-target path is its on-time probability ``P(T <= deadline) = Phi((deadline -
      mu) / sigma)``, ``mu`` and ``sigma**2`` the sums of the means and variances along
      it. A step solves the shortest path under one cost per edge (Dijkstra, ties broken
      deterministically: see ``optgym.envs.surco.solver``). The env keeps the best path
      found (``best_path``, its ``best_probability`` and the ``best_costs`` that gave it).
    * ``"sharding"``: embedding tables (a size in GiB, a pooling factor, a dim) to place on
      devices (a memory capacity each); the objective of a placement is the latency of its
      slowest device, compute with saturation past a knee plus communication plus a
      per-table overhead (the model is stated in ``optgym.datasets.surco.sharding``). A
      step solves the assignment MIP ``min sum c[i, d] x[i, d]``, every table on exactly one
      device, ``sum_i size_i x[i, d] <= capacity_d``, ``x`` binary, on SCIP (a fresh
      single-threaded model per step, a node limit and no time limit, so that the same
      costs give the same placement). The env keeps the best placement found
      (``best_placement``, its ``best_latency``, ``best_speedup`` and ``best_costs``).

    Each step is one ``solver_calls`` unit of work, charged to the attached budget meter
    before the solver runs (a step past the budget raises ``BudgetExceeded`` and solves
    nothing). ``env.unwrapped.kind`` is ``"route"`` or ``"sharding"``;
    ``env.unwrapped.route`` is a route instance (a ``optgym.datasets.surco.RouteInstance``:
    ``tails``, ``heads``, ``means``, ``variances``, ``source``, ``target`` and the
    ``deadline`` in force) and ``env.unwrapped.sharding`` a sharding one (a
    ``optgym.datasets.surco.ShardingInstance``: ``sizes``, ``pooling``, ``dims``,
    ``capacities``, ``knee``, and the latency model's ``device_latencies``), the other
    None: what an agent needs to differentiate the objective. ``env.unwrapped.fork()``
    gives an independent copy at the same point of the episode (the instance is shared),
    whose steps charge the same meter.

    ## Action Space

    ``Box(0, 1e100, (N,), float64)``, the shape set when an instance is loaded: a route's
    ``N = E`` edge costs, in edge order; a sharding instance's ``N = T * D`` costs, the cost
    of table ``i`` on device ``d`` at index ``i * D + d``. Only the order of path sums, or
    the ratios of the costs (the MIP divides them by their largest), counts, so the scale is
    free. A list is accepted too; another shape, NaN, inf, a negative cost, a cost above
    ``1e100`` (``MAX_COST``), strings or booleans raise ``ValueError`` naming what is wrong
    and what is allowed.

    ## Observation Space

    Two named observation spaces (``env.unwrapped.observation[name]`` computes one on
    request); the env's own is the loaded kind's, and the other kind's observation is an
    empty graph (no node, no edge) with zero scalars.

    ``RouteGraph`` (routes), a ``Dict``:

    * ``graph``: a gymnasium ``Graph`` of the route: node features ``is_source``,
      ``is_target`` (``Box(0, 1, (2,))``); one edge per route edge, in edge order, its
      ``edge_links`` row ``(u, v)`` and its features ``mean``, ``variance``, ``last_cost``
      (the cost the last step gave it, 0 before the first), ``on_last_path`` and
      ``on_best_path`` (0 or 1) (``Box(0, inf, (5,))``);
    * ``best_probability``: ``Box(0, 1, (1,))``, the best on-time probability so far (0
      before the first step);
    * ``deadline_ratio``: ``Box(0, inf, (1,))``, the deadline divided by the least
      expected time from the source to the target (capped at ``1e6``).

    ``ShardingGraph`` (sharding), a ``Dict``:

    * ``graph``: a bipartite ``Graph``: the ``T`` tables, then the ``D`` devices, with node
      features ``is_device``, ``size``, ``pooling``, ``dim`` (0 for a device) and
      ``capacity`` (0 for a table) (``Box(0, inf, (5,))``); one edge per table and device,
      in action order, ``edge_links`` row ``(i, T + d)``, with features ``last_cost``,
      ``on_last_placement`` and ``on_best_placement`` (``Box(0, inf, (3,))``);
    * ``best_speedup``: ``Box(0, inf, (1,))``, the best speedup so far (0 before the first
      step);
    * ``saturation``: ``Box(0, inf, (1,))``, the tables' total load over ``D`` times the
      knee.

    ``optgym.wrappers.PaddedGraph`` turns a route's into fixed-size arrays for
    stable-baselines3 (``envs/surco/hyperparams/SurrogateOptimization-v0.yml``).

    ## Rewards

    Each reward space scores one kind of instance; an env made with one refuses an instance
    of the other kind (``ValueError`` on reset, saying which to use).

    ``OnTimeProbability`` (routes, the default): the increase of the best on-time
    probability over the step (0 when the step's path is no better), so an episode's return
    is the best probability it found, in ``[0, 1]``; ``state.reward`` is that best
    probability itself (computed once, not summed).

    ``Speedup`` (sharding): the increase of the best speedup, so an episode's return is
    the best speedup it found; ``state.reward`` is that best speedup,
    ``reference_latency / best_latency``, the reference being the greedy placement
    (``optgym.datasets.surco.sharding.greedy_placement``; where it does not fit, the MIP's
    placement under zero costs): above 1 beats greedy, below 1 is slower.
    ``env.unwrapped.reference_placement`` and ``reference_latency`` hold it.

    Deterministic: a state replays to the very same reward. A route step's ``info`` holds
    the ``path`` (edge indices, source to target), its ``probability``, ``expected_time``
    (``mu``) and ``variance`` (``sigma**2``), and ``best_probability``; a sharding step's
    the ``placement`` (a device per table), its ``latency``, ``device_latencies``,
    ``speedup``, ``optimal`` (whether SCIP proved the placement optimal for the costs, not
    cut by its node limit) and ``best_speedup``. A solve that finds no placement (the node
    limit reached first, or SCIP's safety time limit) ends the episode with
    ``info["error"]``.

    ## Starting State

    ``reset(options={"benchmark": uri})`` loads ``generator://routes-v0/<seed>`` (seeded
    road-like grids; the seed's remainder modulo 3 picks the deadline factor 1.1, 1.0 or
    0.9: see ``optgym.datasets.surco.generator``), ``generator://sharding-v0/<seed>``
    (seeded tables and devices) or ``file:///path/instance.json`` in the route format of
    ``optgym.datasets.surco.routes`` or the sharding format of
    ``optgym.datasets.surco.sharding``; without options the last instance is kept (or the
    one set with ``env.unwrapped.benchmark = uri``); the first reset takes
    ``generator://routes-v0/0`` (``generator://sharding-v0/0`` under ``Speedup``). An
    instance that breaks its format, a route with no path from the source to the target, or
    a sharding instance no placement fits (the solver is asked), raises ``ValueError``
    naming the file and what is wrong (never quoting it) and leaves the env on its previous
    instance. A reset forgets the best solution.

    ## Episode End

    The env never ends an episode by itself (but for a failed solve): the registration's
    step limit (100 steps) truncates a training episode, and the runner's budget ends a
    search (the runner makes the env without the step limit).

    ## Arguments

    ``benchmark`` (the first reset's URI), ``reward_space`` (``"OnTimeProbability"`` for
    routes, ``"Speedup"`` for sharding), ``deadline_factor`` (routes only; None: the
    route's own deadline; a number ``f > 0``: the deadline is ``f`` times the least
    expected time, as the SurCo paper sets it), ``render_mode`` (None: the env does not
    render). ``config`` holds ``reward_space`` and ``deadline_factor``.

    ## Version History

    * v0: the stochastic shortest path with a deadline, Dijkstra as the linear solver,
      ``routes-v0`` grids; embedding-table sharding, an assignment MIP on SCIP as the
      linear solver, ``sharding-v0`` instances (the ``Speedup`` reward space).

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
    >>> shard = gym.make("optgym/SurrogateOptimization-v0", reward_space="Speedup")
    >>> obs, info = shard.reset(options={"benchmark": "generator://sharding-v0/3"})
    >>> base = shard.unwrapped
    >>> base.sharding.n_tables, base.sharding.n_devices, round(info["reference_latency"], 2)
    (53, 4, 65.57)
    >>> from optgym.datasets.surco import placement_costs  # the costs that give a placement
    >>> info = shard.step(placement_costs(base.reference_placement, 4))[4]
    >>> info["speedup"], info["optimal"]
    (1.0, True)
    """

    metadata = {"render_modes": []}
    record = PROBLEM
    env_id = ENV_ID
    default_benchmark = DEFAULT_BENCHMARK
    work_unit = "solver_calls"
    reward_tolerance = RewardTolerance("exact")  # pure Python sums in a fixed order
    reward_spaces = ("OnTimeProbability", "Speedup")
    observation_spaces = ("RouteGraph", "ShardingGraph")

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
        if benchmark is None and reward_space == REWARD_SPACES["sharding"]:
            benchmark = SHARDING_BENCHMARK
        super().__init__(benchmark=benchmark, reward_space=reward_space, render_mode=render_mode)
        self.deadline_factor = None if deadline_factor is None else float(deadline_factor)
        self._route_space = spaces.Dict(
            {
                "graph": spaces.Graph(
                    node_space=spaces.Box(0.0, 1.0, (len(NODE_FEATURES),), np.float64),
                    edge_space=spaces.Box(0.0, np.inf, (len(EDGE_FEATURES),), np.float64),
                ),
                "best_probability": spaces.Box(0.0, 1.0, (1,), np.float64),
                "deadline_ratio": spaces.Box(0.0, np.inf, (1,), np.float64),
            }
        )
        self._sharding_space = spaces.Dict(
            {
                "graph": spaces.Graph(
                    node_space=spaces.Box(0.0, np.inf, (len(SHARDING_NODE_FEATURES),),
                                          np.float64),  # fmt: skip
                    edge_space=spaces.Box(0.0, np.inf, (len(SHARDING_EDGE_FEATURES),),
                                          np.float64),  # fmt: skip
                ),
                "best_speedup": spaces.Box(0.0, np.inf, (1,), np.float64),
                "saturation": spaces.Box(0.0, np.inf, (1,), np.float64),
            }
        )
        self._instance_sha256 = ""
        self.kind = ""
        # the first instance is loaded now so that the action space exists before reset
        self._load(self.datasets.benchmark(self._benchmark_uri))
        self._clear()

    # ---- instances ----------------------------------------------------------------------------
    def _load(self, benchmark: Benchmark) -> None:
        """Load ``benchmark``'s instance unless it is the one loaded; a bad file, or one of
        the kind the reward space does not score, raises ``ValueError`` and keeps the
        current instance."""
        if benchmark.sha256 == self._instance_sha256:
            return
        instance = load_benchmark_instance(benchmark)
        kind = "route" if isinstance(instance, RouteInstance) else "sharding"
        wanted = REWARD_SPACES[kind]
        if wanted != self.reward_space_name:
            other = "route" if kind == "sharding" else "sharding"
            raise ValueError(
                f"{benchmark.uri} is a {kind} instance, scored by the reward space {wanted!r}; "
                f"this env was made with reward_space={self.reward_space_name!r}, which scores "
                f"{other} instances: make it with reward_space={wanted!r}"
            )
        if isinstance(instance, RouteInstance):
            self._load_route(instance)
        else:
            try:
                self._load_sharding(instance)
            except ValueError as e:  # no placement fits: name the file
                raise ValueError(f"instance file {benchmark.path}: {e}") from None
        self.kind = kind
        self._instance_sha256 = benchmark.sha256

    def _load_route(self, route: RouteInstance) -> None:
        expected = route.path_moments(shortest_path(route, route.means.tolist()))[0]
        if self.deadline_factor is not None:
            route = dataclasses.replace(route, deadline=self.deadline_factor * expected)
        nodes = np.zeros((route.nodes, len(NODE_FEATURES)), np.float64)
        nodes[route.source, 0] = nodes[route.target, 1] = 1.0
        self.route: RouteInstance | None = route
        self.sharding: ShardingInstance | None = None
        self.least_expected_time = expected
        self.action_space = spaces.Box(0.0, MAX_COST, (route.n_edges,), np.float64)
        self.observation_space = self._route_space
        self._nodes = nodes
        self._links = np.stack([route.tails, route.heads], axis=1)

    def _load_sharding(self, instance: ShardingInstance) -> None:
        reference = reference_placement(instance)  # ValueError: no placement fits
        t, d = instance.n_tables, instance.n_devices
        nodes = np.zeros((t + d, len(SHARDING_NODE_FEATURES)), np.float64)
        nodes[:t, 1], nodes[:t, 2], nodes[:t, 3] = instance.sizes, instance.pooling, instance.dims
        nodes[t:, 0], nodes[t:, 4] = 1.0, instance.capacities
        tables, devices = np.meshgrid(np.arange(t), np.arange(d), indexing="ij")
        self.route = None
        self.sharding = instance
        self.reference_placement = reference
        self.reference_latency = instance.latency(reference)
        self.action_space = spaces.Box(0.0, MAX_COST, (t * d,), np.float64)
        self.observation_space = self._sharding_space
        self._nodes = nodes
        self._links = np.stack([tables.ravel(), t + devices.ravel()], axis=1)
        self._saturation = float(np.sum(instance.loads)) / (d * instance.knee)

    @property
    def n_costs(self) -> int:
        """The length of an action: the route's edges, or tables times devices."""
        return int(self.action_space.shape[0])

    def _clear(self) -> None:
        """Forget the search: no step taken on this instance."""
        self.best_probability = 0.0
        self.best_path: list[int] | None = None
        self.best_speedup = 0.0
        self.best_latency = math.inf
        self.best_placement: list[int] | None = None
        self.best_costs: np.ndarray | None = None
        self._last_costs = np.zeros(self.n_costs)
        self._last_path: list[int] = []
        self._last_placement: list[int] = []

    # ---- observations -------------------------------------------------------------------------
    def _named_observations(self) -> dict[str, NamedSpace]:
        return {
            "RouteGraph": NamedSpace(self._route_space, self._route_obs),
            "ShardingGraph": NamedSpace(self._sharding_space, self._sharding_obs),
        }

    def _obs(self) -> dict[str, Any]:
        return self._route_obs() if self.kind == "route" else self._sharding_obs()

    def _route_obs(self) -> dict[str, Any]:
        route = self.route
        if route is None:  # a sharding instance: an empty route
            return _empty_obs(len(NODE_FEATURES), len(EDGE_FEATURES),
                              ("best_probability", "deadline_ratio"))  # fmt: skip
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

    def _sharding_obs(self) -> dict[str, Any]:
        instance = self.sharding
        if instance is None:  # a route: an empty sharding instance
            return _empty_obs(len(SHARDING_NODE_FEATURES), len(SHARDING_EDGE_FEATURES),
                              ("best_speedup", "saturation"))  # fmt: skip
        d = instance.n_devices
        edges = np.zeros((self.n_costs, len(SHARDING_EDGE_FEATURES)), np.float64)
        edges[:, 0] = self._last_costs
        for column, placement in ((1, self._last_placement), (2, self.best_placement or [])):
            for i, device in enumerate(placement):
                edges[i * d + device, column] = 1.0
        return {
            "graph": spaces.GraphInstance(
                nodes=self._nodes.copy(), edges=edges, edge_links=self._links.copy()
            ),
            "best_speedup": np.array([self.best_speedup], np.float64),
            "saturation": np.array([self._saturation], np.float64),
        }

    # ---- hooks of OptGymEnv -------------------------------------------------------------------
    def _reset(self, benchmark: Benchmark) -> tuple[dict[str, Any], dict[str, Any]]:
        self._load(benchmark)  # changes nothing unless the instance loads: the env stays usable
        self._clear()
        if self.route is not None:
            info = {"least_expected_time": self.least_expected_time,
                    "deadline": self.route.deadline}  # fmt: skip
        else:
            info = {"reference_latency": self.reference_latency}
        return self._obs(), info

    def _check_action(self, action: Any) -> np.ndarray:
        n = self.n_costs
        per = "edge" if self.kind == "route" else "table and device (index table * D + device)"
        allowed = (
            f"allowed: an array of shape ({n},), one surrogate cost per {per}, each finite, "
            f">= 0 and <= {MAX_COST:g}"
        )
        costs = as_numbers(action, "an action", allowed)
        if costs.shape != (n,):
            which = "edge of this route" if self.kind == "route" else (
                "table and device of this instance")
            raise ValueError(
                f"action must hold one cost per {which}, shape ({n},); got shape "
                f"{costs.shape}; {allowed}"
            )
        where = "edges" if self.kind == "route" else "entries"
        for bad, name in ((np.isnan(costs), "NaN"), (np.isinf(costs), "infinite"),
                          (costs < 0, "negative"), (costs > MAX_COST, "too large")):  # fmt: skip
            if bad.any():
                at = np.flatnonzero(bad)
                raise ValueError(
                    f"action has {len(at)} {name} cost(s) (at {where} {at[:5].tolist()}); "
                    f"{allowed}"
                )
        return costs

    def _step(self, costs: np.ndarray) -> StepResult:
        if self.kind == "sharding":
            return self._sharding_step(costs)
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

    def _sharding_step(self, costs: np.ndarray) -> StepResult:
        instance = self.sharding
        self._spend(1)
        try:
            solved = assign_tables(instance, costs)
        except AssignmentError as e:  # ends the episode (info["error"]); a reset recovers
            raise BackendCrash(str(e)) from None
        placement = solved.placement
        latencies = instance.device_latencies(placement)
        latency = max(latencies)
        speedup = self.reference_latency / latency
        reward = 0.0
        if speedup > self.best_speedup or self.best_placement is None:
            reward = speedup - self.best_speedup
            self.best_speedup = speedup
            self.best_latency = latency
            self.best_placement = placement
            self.best_costs = costs
        self._last_costs = costs
        self._last_placement = placement
        info = {
            "placement": list(placement),
            "latency": latency,
            "device_latencies": latencies,
            "speedup": speedup,
            "optimal": solved.optimal,
            "best_speedup": self.best_speedup,
        }
        return self._obs(), reward, False, False, info

    def _record_action(self, action: np.ndarray, info: dict[str, Any]) -> list[float]:
        return action.tolist()

    def _exact_episode_reward(self) -> float:
        return self.best_probability if self.kind == "route" else self.best_speedup

    def _extras(self) -> dict[str, Any]:
        if self.kind == "sharding":
            if self.best_placement is None:
                return {}
            return {"best_placement": list(self.best_placement), "latency": self.best_latency,
                    "reference_latency": self.reference_latency}  # fmt: skip
        if self.best_path is None:
            return {}
        mean, variance = self.route.path_moments(self.best_path)
        return {"best_path": list(self.best_path), "expected_time": mean, "variance": variance}

    def _versions(self) -> dict[str, str]:
        return {"scip": scip_version()} if self.kind == "sharding" else {}

    def _fork_into(self, new: OptGymEnv) -> None:
        assert isinstance(new, SurrogateOptimizationEnv)
        new.best_path = None if self.best_path is None else list(self.best_path)
        new._last_path = list(self._last_path)
        new.best_placement = None if self.best_placement is None else list(self.best_placement)
        new._last_placement = list(self._last_placement)


def _empty_obs(node_features: int, edge_features: int, scalars: tuple[str, ...]) -> dict:
    """The observation of the other kind of instance: a graph of no node, zero scalars."""
    graph = spaces.GraphInstance(
        nodes=np.zeros((0, node_features), np.float64),
        edges=np.zeros((0, edge_features), np.float64),
        edge_links=np.zeros((0, 2), np.int64),
    )
    return {"graph": graph, **{name: np.zeros(1, np.float64) for name in scalars}}
