"""Learned space partitions for open-loop path planning: LA-MCTS and LaP3.

Both agents search plans of ``optgym/PathPlanning2D-v0`` (one plan = one action vector in
``[-1, 1]^{2T}``) with batched evaluations. Each round they rebuild a tree over all samples
evaluated so far: a node's samples are split into a good and a bad cluster by k-means
(k = 2) on (features, value) and an SVM learns the boundary on the features; nodes below
``leaf_size`` samples are leaves. A leaf is chosen by UCB down the tree and new plans are
sampled in its region.

* :class:`LaMcts` (Wang, Fonseca, Tian, NeurIPS 2020): the features are the plans
  themselves, a node's value is the mean reward of its samples, and the leaf sampler is a
  trust-region Gaussian around the leaf's best plans whose candidates are filtered by the
  SVMs on the path to the leaf (free: the region is in plan space).
* :class:`LaP3` (Yang, Zhang, Tian et al., NeurIPS 2021): the features are the reached
  states (positions along the rolled-out path), a node's value is the max reward of its
  samples, and the leaf sampler is CMA-ES started at the leaf's best plan. A candidate's
  reached states are only known after its rollout, which costs an evaluation, so every
  candidate is evaluated and kept as a sample, and those whose states leave the leaf are
  rejected from the CMA-ES update (ranked worst) unless they beat the leaf's best plan (an
  escape from the region is what the search is for); if a whole generation leaves the
  leaf, CMA-ES falls back to the plain rewards.

UCB compares node values scaled to [0, 1] by the lowest and highest reward seen, so ``cp``
does not depend on the reward's scale. The k-means value column is standardized and
multiplied by ``value_weight`` (default: the square root of the feature count, so the value
weighs as much as all features together; LaP3 uses 1, so its regions follow the reached
states).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

import cma
import gymnasium as gym
import numpy as np
import sklearn
from sklearn.svm import SVC

from optgym.agents.planning.search import (
    BestTrace,
    replay_plan,
)
from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget

Kernel = Literal["rbf", "linear", "poly", "sigmoid"]
KERNELS: tuple[str, ...] = get_args(Kernel)
PlanSpace = Literal["moves", "anchors"]
PLAN_SPACES: tuple[str, ...] = get_args(PlanSpace)
MAX_DEPTH = 12


def anchor_moves(
    start: np.ndarray, anchors: np.ndarray, move_bound: float, horizon: int
) -> np.ndarray:
    """Plans (N, 2 * horizon, in action units) that head for each plan's anchors (N, K, 2,
    world points) in turn from ``start``: each move goes straight for the current anchor,
    ``move_bound`` long or as far as the anchor, and the next move heads for the next one
    once it is reached; after the last anchor the robot stays. The moves are worked out
    as if nothing were in the way (a plan is open loop: a wall stops the robot, and the
    later moves are the same)."""
    n, k = anchors.shape[:2]
    pos = np.broadcast_to(start, (n, 2)).copy()
    at = np.zeros(n, dtype=int)
    rows = np.arange(n)
    moves = np.zeros((n, horizon, 2))
    for t in range(horizon):
        going = at < k
        if not going.any():
            break
        target = anchors[rows, np.minimum(at, k - 1)]
        d = target - pos
        dist = np.hypot(d[:, 0], d[:, 1])
        step = d * np.minimum(1.0, move_bound / np.maximum(dist, 1e-12))[:, None]
        step[~going] = 0.0
        pos += step
        moves[:, t] = step / move_bound
        at += going & (dist <= move_bound)
    return moves.reshape(n, 2 * horizon)


@dataclass(eq=False)
class Node:
    """A region of the tree: its samples' indices, its children (good first) and the SVM
    that routes a point to a child (``labels[i]`` is the SVM class of child ``i``)."""

    idx: np.ndarray
    value: float
    children: list[Node] = field(default_factory=list)
    svm: SVC | None = None
    labels: tuple[int, int] = (1, 0)

    @property
    def is_leaf(self) -> bool:
        return not self.children


#: A tree with the feature scaling it was learned on: (root, mean, std).
_Tree = tuple[Node, np.ndarray, np.ndarray]


@dataclass
class _Data:
    """One search's state: its random generator, its ``evaluate(plans) -> (rewards,
    features)`` and everything evaluated so far (clipped plans, partition features, rewards)."""

    rng: np.random.Generator
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    plans: list[np.ndarray] = field(default_factory=list)
    feats: list[np.ndarray] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.array(self.plans), np.array(self.feats), np.array(self.values)


def two_means(
    x: np.ndarray, rng: np.random.Generator, n_init: int = 3, iters: int = 50
) -> np.ndarray:
    """k-means with k = 2 (Lloyd's iterations from k-means++ seeds, the best of ``n_init``
    runs by inertia): a 0/1 label per row of ``x``. Plain NumPy: on the few hundred rows a
    node holds, sklearn's threaded KMeans spends most of its time starting threads."""
    best, best_inertia = np.zeros(len(x), dtype=int), math.inf
    for _ in range(n_init):
        first = x[rng.integers(len(x))]
        d = ((x - first) ** 2).sum(axis=1)
        if d.sum() <= 0:
            break  # all rows equal: one cluster
        centres = np.stack([first, x[rng.choice(len(x), p=d / d.sum())]])
        label = np.full(len(x), -1)
        for _ in range(iters):
            # nearer to centre 1 than to centre 0: |x - c1|^2 < |x - c0|^2
            c0, c1 = centres
            new_label = (x @ (c1 - c0) > (c1 @ c1 - c0 @ c0) / 2).astype(int)
            if np.array_equal(new_label, label):  # the same clusters: the same centres
                break
            label = new_label
            for k in (0, 1):
                if (label == k).any():
                    centres[k] = x[label == k].mean(axis=0)
        inertia = float(((x - centres[label]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = label, inertia
    return best


@dataclass(eq=False)
class _PartitionSearch:
    """The shared loop: initial uniform samples, then rounds of build tree, select leaf,
    sample a batch in it. The shared settings (with LA-MCTS's defaults) are its fields;
    subclasses add their own and may change a default; ``__post_init__`` checks them."""

    requires: ClassVar[tuple[str, ...]] = ("evaluate_batch", "rollout_batch")
    # evaluations take no env steps: steps alone do not bound the search
    budget_units: ClassVar[tuple[str, ...]] = ("calls", "seconds")
    use_max: ClassVar[bool] = False

    init_samples: int = 100
    """uniformly random plans evaluated before the first tree (>= 2)"""
    batch: int = 50
    """plans evaluated per round (>= 1)"""
    leaf_size: int = 20
    """nodes with fewer samples are leaves (>= 2)"""
    cp: float = 0.1
    """UCB exploration constant, on node values scaled to [0, 1]"""
    svm_kernel: Kernel = "rbf"
    """kernel of the SVM that draws each split"""
    sigma: float = 0.2
    """initial step size of the leaf sampler (action units, in (0, 2])"""
    value_weight: float | None = None
    """weight of the standardized value in the k-means split; None: sqrt(feature count)"""

    def _at_least(self, **lows: float) -> None:
        """``ValueError`` for the first setting below its lowest allowed value."""
        for name, low in lows.items():
            if not getattr(self, name) >= low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")

    def __post_init__(self) -> None:
        self._at_least(init_samples=2, batch=1, leaf_size=2, cp=0)
        if self.svm_kernel not in KERNELS:
            raise ValueError(
                f"unknown svm_kernel {self.svm_kernel!r}; allowed: {', '.join(KERNELS)}"
            )
        if self.value_weight is not None and not self.value_weight >= 0:
            raise ValueError(f"value_weight must be >= 0 or None, got {self.value_weight}")
        if not 0 < self.sigma <= 2:
            raise ValueError(f"sigma must be in (0, 2], got {self.sigma}")
        self._sigma = self.sigma  # the leaf sampler's current step size
        self.last_leaves = 0  # leaves of the last tree built
        self.last_depth = 0  # depth of the last leaf selected

    # ---- hooks ---------------------------------------------------------------------------------
    def _features(self, base: Any, plans: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Partition features (N, d) of evaluated plans."""
        return plans

    def _start(self, dim: int) -> None:
        """Reset the sampler's state for a new search (``_sigma`` is already reset)."""

    def _search_dim(self, base: Any) -> int:
        """Dimensions of the space searched (default: the plan's, 2 per move)."""
        return int(base.action_space.shape[0])

    def _decode(self, base: Any, points: np.ndarray) -> np.ndarray:
        """The env's plans (N, 2T) for points (N, d) of the searched space (default: the
        points are plans)."""
        return points

    def _sample(self, data: _Data, tree: _Tree, path: list[Node], n: int, room: int) -> None:
        """Evaluate about ``n`` (at least 1, at most ``room``) plans in the region of
        ``path[-1]`` through ``data.evaluate(plans)``."""
        raise RuntimeError("subclasses define the leaf sampler")

    # ---- the search ----------------------------------------------------------------------------
    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        """Search plans on ``benchmark`` within ``budget`` (the env charges every
        evaluation; one is kept back for the final step); the best plan's episode."""
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        # the tree's many small SVMs: sklearn's checks of their inputs cost more than the
        # fits (the inputs are finite arrays made here)
        quick = sklearn.config_context(assume_finite=True, skip_parameter_validation=True)
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter, quick:
            dim = self._search_dim(base)
            trace = BestTrace()
            self._sigma = self.sigma
            self._start(dim)
            self.last_leaves = 0

            def evaluate(plans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                plans = np.clip(np.asarray(plans, dtype=np.float64), -1.0, 1.0)
                roll = base.rollout_batch(self._decode(base, plans))
                feats = self._features(base, plans, roll.positions)
                data.plans.extend(plans)
                data.feats.extend(feats)
                data.values.extend(roll.rewards.tolist())
                trace.add(roll.rewards)
                return roll.rewards, feats

            data = _Data(rng, evaluate)
            first = int(min(self.init_samples, meter.calls_left(reserve=1, steps=1)))
            if first > 0:
                evaluate(rng.uniform(-1.0, 1.0, (first, dim)))
            while (room := meter.calls_left(reserve=1, steps=1)) > 0:
                tree = self._build(data, rng)
                path = self._select(tree[0], np.asarray(data.values))
                self.last_depth = len(path) - 1
                self._sample(data, tree, path, min(self.batch, room), room)

            best = data.plans[int(np.argmax(data.values))] if data.values else np.zeros(dim)
            plan = self._decode(base, best[None])[0]
            return solved(env, meter, replay_plan(base, benchmark, seed, plan, trace))

    # ---- the tree ------------------------------------------------------------------------------
    def _node_value(self, values: np.ndarray) -> float:
        return float(values.max() if self.use_max else values.mean())

    def _build(self, data: _Data, rng: np.random.Generator) -> _Tree:
        """The tree over all samples, with the feature scaling (mean, std) it was learned on."""
        _, feats, values = data.arrays()
        mean, std = feats.mean(axis=0), feats.std(axis=0) + 1e-9
        z = (feats - mean) / std
        root = Node(np.arange(len(values)), self._node_value(values))
        stack, leaves = [(root, 0)], 0
        while stack:
            node, depth = stack.pop()
            if depth < MAX_DEPTH and len(node.idx) >= self.leaf_size:
                self._split(node, z, values, rng)
            if node.is_leaf:
                leaves += 1
            stack.extend((c, depth + 1) for c in node.children)
        self.last_leaves = leaves
        return root, mean, std

    def _split(
        self, node: Node, z: np.ndarray, values: np.ndarray, rng: np.random.Generator
    ) -> None:
        """Good/bad split of ``node`` by k-means on (features, value), then an SVM on the
        features; the node stays a leaf when either side would be empty."""
        x, v = z[node.idx], values[node.idx]
        if v.std() < 1e-12:
            return
        weight = math.sqrt(x.shape[1]) if self.value_weight is None else self.value_weight
        vz = (v - v.mean()) / v.std() * weight
        cluster = two_means(np.column_stack([x, vz]), rng)
        if cluster.min() == cluster.max():
            return
        svm = SVC(kernel=self.svm_kernel, gamma="scale", C=1.0)
        svm.fit(x, cluster)
        side = svm.predict(x)
        if side.min() == side.max():
            return
        means = [v[side == k].mean() for k in (0, 1)]
        good = int(np.argmax(means))
        node.svm = svm
        node.labels = (good, 1 - good)
        for label in node.labels:
            idx = node.idx[side == label]
            node.children.append(Node(idx, self._node_value(values[idx])))

    def _select(self, root: Node, values: np.ndarray) -> list[Node]:
        """Root-to-leaf path by UCB: v + cp * sqrt(2 log n_parent / n_child), with node
        values ``v`` scaled to [0, 1] by the lowest and highest reward seen (so ``cp``
        does not depend on the map's reward scale)."""
        lo, span = float(values.min()), float(np.ptp(values)) or 1.0
        path = [root]
        node = root
        while not node.is_leaf:
            n = len(node.idx)
            scores = [
                (c.value - lo) / span + self.cp * math.sqrt(2.0 * math.log(max(n, 1)) / len(c.idx))
                for c in node.children
            ]
            node = node.children[int(np.argmax(scores))]
            path.append(node)
        return path

    @staticmethod
    def _depth_in(tree: _Tree, path: list[Node], feats: np.ndarray) -> np.ndarray:
        """For each feature row, how many steps of ``path`` its SVMs agree with (the row
        lies in the leaf's region when this equals ``len(path) - 1``)."""
        _, mean, std = tree
        z = (np.asarray(feats) - mean) / std
        depth = np.zeros(len(z), dtype=int)
        alive = np.ones(len(z), dtype=bool)
        for parent, child in zip(path[:-1], path[1:], strict=True):
            if not alive.any():
                break
            label = parent.labels[0 if child is parent.children[0] else 1]
            ok = np.zeros(len(z), dtype=bool)
            ok[alive] = parent.svm.predict(z[alive]) == label  # type: ignore[union-attr]
            depth += ok
            alive &= ok
        return depth


@dataclass(eq=False)
class LaMcts(_PartitionSearch):
    """LA-MCTS on the plan space: mean-valued nodes, a trust-region Gaussian leaf sampler
    (its step size starts at ``sigma``, grows on rounds that improve the best reward and
    shrinks otherwise)."""

    use_max: ClassVar[bool] = False

    tries: int = 5
    """rounds of candidates drawn to fill a batch inside the leaf (>= 1)"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._at_least(tries=1)

    def _start(self, dim: int) -> None:
        self.dim_prob = min(1.0, 20.0 / dim)

    def _candidates(self, centres: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
        """Gaussian perturbations of a random subset of coordinates of random centres."""
        dim = centres.shape[1]
        base = centres[rng.integers(len(centres), size=count)]
        mask = rng.random((count, dim)) < self.dim_prob
        mask[np.arange(count), rng.integers(dim, size=count)] = True
        noise = rng.normal(0.0, self._sigma, (count, dim)) * mask
        return np.clip(base + noise, -1.0, 1.0)

    def _sample(self, data: _Data, tree: _Tree, path: list[Node], n: int, room: int) -> None:
        plans, _, values = data.arrays()
        leaf = path[-1].idx
        top = leaf[np.argsort(-values[leaf], kind="stable")[: min(5, len(leaf))]]
        centres = plans[top]
        want = len(path) - 1
        kept: list[np.ndarray] = []
        pool, pool_depth = [], []
        for _ in range(self.tries):
            cand = self._candidates(centres, 20 * n, data.rng)
            depth = self._depth_in(tree, path, cand)
            kept.extend(cand[depth == want])
            pool.append(cand)
            pool_depth.append(depth)
            if len(kept) >= n:
                break
        chosen = np.array(kept[:n]).reshape(-1, plans.shape[1])
        if len(chosen) < n:  # fallback: the candidates that follow the path furthest
            allc, alld = np.concatenate(pool), np.concatenate(pool_depth)
            rest = allc[alld < want][np.argsort(-alld[alld < want], kind="stable")]
            chosen = np.concatenate([chosen, rest[: n - len(chosen)]])
        before = float(values.max())
        rewards, _ = data.evaluate(chosen)
        if float(rewards.max()) > before + 1e-9:
            self._sigma = min(1.0, self._sigma * 1.5)
        else:
            self._sigma = max(0.02, self._sigma * 0.85)


@dataclass(eq=False)
class LaP3(_PartitionSearch):
    """LaP3: partitions of the reached states (``waypoints`` positions along the path, the
    last the final position), max-valued nodes, CMA-ES leaf sampler from the leaf's best
    plan with step size ``sigma``. A CMA-ES run is resumed when a later round picks a leaf
    whose best plan that run found (up to ``MAX_RUNS`` runs are kept). The defaults (a wide
    exploration constant, clusters that weigh the value as one feature among the reached
    states, a wide CMA-ES) were chosen on seeds 0-9 of the bug-trap and maze maps."""

    use_max: ClassVar[bool] = True
    MAX_RUNS: ClassVar[int] = 32

    batch: int = 50
    """plans evaluated per round, in whole CMA-ES generations (>= 1)"""
    cp: float = 3.0
    sigma: float = 0.5
    """initial step size of the CMA-ES leaf sampler (action units, in (0, 2])"""
    value_weight: float | None = 1.0
    waypoints: int = 8
    """positions along the rolled-out path that make a plan's features (>= 1)"""
    plan_space: PlanSpace = "moves"
    """what is searched: ``moves`` (the plan itself, 2 numbers per move) or ``anchors``
    (``anchors`` points of the world the robot heads for in turn, see
    :func:`anchor_moves`)"""
    anchors: int = 6
    """points per plan when ``plan_space`` is ``anchors`` (>= 1)"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._at_least(waypoints=1, anchors=1)
        if self.plan_space not in PLAN_SPACES:
            raise ValueError(
                f"unknown plan_space {self.plan_space!r}; allowed: {', '.join(PLAN_SPACES)}"
            )

    def _search_dim(self, base: Any) -> int:
        if self.plan_space == "anchors":
            return 2 * self.anchors
        return super()._search_dim(base)

    def _decode(self, base: Any, points: np.ndarray) -> np.ndarray:
        if self.plan_space == "moves":
            return points
        nav = base.nav
        world = (np.asarray(points).reshape(len(points), -1, 2) + 1.0) / 2.0 * nav.size
        return anchor_moves(np.asarray(nav.start, dtype=float), world, nav.move_bound, nav.horizon)

    def _start(self, dim: int) -> None:
        # CMA-ES runs by the sample index of the best plan each found: a leaf whose best
        # plan came from a run resumes it
        self._runs: dict[int, Any] = {}

    def _features(self, base: Any, plans: np.ndarray, positions: np.ndarray) -> np.ndarray:
        steps = positions.shape[1] - 1
        at = np.linspace(steps / self.waypoints, steps, self.waypoints).round().astype(int)
        return positions[:, at, :].reshape(len(positions), -1) / base.nav.size

    def _sample(self, data: _Data, tree: _Tree, path: list[Node], n: int, room: int) -> None:
        values = np.array(data.values)
        leaf = path[-1].idx
        start = int(leaf[np.argmax(values[leaf])])
        es = self._runs.pop(start, None)
        if es is None or es.stop():
            opts = {"verbose": -9, "seed": int(data.rng.integers(1, 2**31))}
            es = cma.CMAEvolutionStrategy(data.plans[start], self._sigma, opts)
        mine, want, spent = start, len(path) - 1, 0
        while spent < n:  # whole generations, as long as the budget allows
            xs = np.array(es.ask())
            k = min(len(xs), room - spent)
            first = len(data.values)
            rewards, feats = data.evaluate(xs[:k])
            spent += k
            best = first + int(np.argmax(rewards))
            if data.values[best] > data.values[mine]:
                mine = best
            if k < len(xs):  # the budget ends inside a generation: it is not told
                return
            loss = -rewards
            inside = self._depth_in(tree, path, feats) == want
            inside |= rewards > values[start]  # an escape that beats the leaf is kept
            if inside.any():
                loss = np.where(inside, loss, loss.max() + 1.0)  # reject: rank them worst
            es.tell(list(xs), loss.tolist())
        self._runs[mine] = es
        while len(self._runs) > self.MAX_RUNS:
            del self._runs[next(iter(self._runs))]
