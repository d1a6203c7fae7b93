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
  rejected from the CMA-ES update (ranked worst); if a whole generation leaves the leaf,
  CMA-ES falls back to the plain rewards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cma
import gymnasium as gym
import numpy as np
from sklearn.cluster import KMeans
from sklearn.svm import SVC

from optgym.agents.planning_search import replay_plan
from optgym.agents.protocol import Result
from optgym.budget import Budget, BudgetMeter

KERNELS = ("rbf", "linear", "poly", "sigmoid")
MAX_DEPTH = 12


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


@dataclass
class _Data:
    """Everything evaluated so far: clipped plans, partition features and rewards."""

    plans: list[np.ndarray] = field(default_factory=list)
    feats: list[np.ndarray] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.array(self.plans), np.array(self.feats), np.array(self.values)


class _PartitionSearch:
    """The shared loop: initial uniform samples, then rounds of build tree, select leaf,
    sample a batch in it."""

    name = ""
    use_max = False

    def __init__(
        self,
        init_samples: int = 100,
        batch: int = 50,
        leaf_size: int = 20,
        cp: float = 0.1,
        svm_kernel: str = "rbf",
        sigma: float = 0.2,
    ):
        if init_samples < 2:
            raise ValueError(f"init_samples must be >= 2, got {init_samples}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if leaf_size < 2:
            raise ValueError(f"leaf_size must be >= 2, got {leaf_size}")
        if cp < 0:
            raise ValueError(f"cp must be >= 0, got {cp}")
        if svm_kernel not in KERNELS:
            raise ValueError(f"unknown svm_kernel {svm_kernel!r}; allowed: {', '.join(KERNELS)}")
        if not 0 < sigma <= 2:
            raise ValueError(f"sigma must be in (0, 2], got {sigma}")
        self.sigma0 = sigma  # the leaf sampler's initial step size
        self.init_samples = init_samples
        self.batch = batch
        self.leaf_size = leaf_size
        self.cp = cp
        self.svm_kernel = svm_kernel
        self.last_leaves = 0  # leaves of the last tree built
        self.last_depth = 0  # depth of the last leaf selected

    # ---- hooks ---------------------------------------------------------------------------------
    def _features(self, base: Any, plans: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Partition features (N, d) of evaluated plans."""
        return plans

    def _start(self, dim: int) -> None:
        """Reset the sampler's state for a new search."""

    def _sample(
        self,
        base: Any,
        data: _Data,
        tree: tuple[Node, np.ndarray, np.ndarray],
        path: list[Node],
        n: int,
        room: int,
        rng: np.random.Generator,
        evaluate: Any,
    ) -> None:
        """Evaluate about ``n`` (at least 1, at most ``room``) plans in the region of
        ``path[-1]`` through ``evaluate(plans)``."""
        raise RuntimeError("subclasses define the leaf sampler")

    # ---- the search ----------------------------------------------------------------------------
    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        budget.require_limit(self.name)
        base = env.unwrapped
        rng = np.random.default_rng(seed)
        meter = BudgetMeter(budget)
        base.reset(seed=seed, options={"benchmark": benchmark})
        dim = int(base.action_space.shape[0])
        data = _Data()
        self._start(dim)
        self.last_leaves = 0

        def evaluate(plans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            plans = np.clip(np.asarray(plans, dtype=np.float64), -1.0, 1.0)
            roll = base.rollout_batch(plans)
            meter.charge(calls=len(plans), steps=len(plans))
            feats = self._features(base, plans, roll.positions)
            data.plans.extend(plans)
            data.feats.extend(feats)
            data.values.extend(roll.rewards.tolist())
            return roll.rewards, feats

        first = int(min(self.init_samples, meter.room(reserve=1)))
        if first > 0:
            evaluate(rng.uniform(-1.0, 1.0, (first, dim)))
        while not meter.exhausted and meter.room(reserve=1) > 0:
            room = meter.room(reserve=1)
            tree = self._build(data, rng)
            path = self._select(tree[0], len(data.values))
            self.last_depth = len(path) - 1
            self._sample(base, data, tree, path, min(self.batch, room), room, rng, evaluate)

        best = data.plans[int(np.argmax(data.values))] if data.values else np.zeros(dim)
        return replay_plan(base, benchmark, seed, best, meter)

    # ---- the tree ------------------------------------------------------------------------------
    def _node_value(self, values: np.ndarray) -> float:
        return float(values.max() if self.use_max else values.mean())

    def _build(self, data: _Data, rng: np.random.Generator) -> tuple[Node, np.ndarray, np.ndarray]:
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
        vz = (v - v.mean()) / v.std() * math.sqrt(x.shape[1])  # value weighs as all features
        km = KMeans(n_clusters=2, n_init=3, random_state=int(rng.integers(2**31)))
        cluster = km.fit_predict(np.column_stack([x, vz]))
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

    def _select(self, root: Node, total: int) -> list[Node]:
        """Root-to-leaf path by UCB: value + cp * sqrt(2 log n_parent / n_child)."""
        path = [root]
        node = root
        while not node.is_leaf:
            n = len(node.idx)
            scores = [
                c.value + self.cp * math.sqrt(2.0 * math.log(max(n, 1)) / len(c.idx))
                for c in node.children
            ]
            node = node.children[int(np.argmax(scores))]
            path.append(node)
        return path

    @staticmethod
    def _depth_in(
        tree: tuple[Node, np.ndarray, np.ndarray], path: list[Node], feats: np.ndarray
    ) -> np.ndarray:
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


class LaMcts(_PartitionSearch):
    """LA-MCTS on the plan space: mean-valued nodes, a trust-region Gaussian leaf sampler
    (``sigma`` grows on rounds that improve the best reward and shrinks otherwise)."""

    name = "la-mcts"
    use_max = False

    def __init__(self, sigma: float = 0.2, tries: int = 5, **tree: Any):
        """``tree``: the arguments of the shared search (init_samples, batch, leaf_size,
        cp, svm_kernel)."""
        super().__init__(sigma=sigma, **tree)
        if tries < 1:
            raise ValueError(f"tries must be >= 1, got {tries}")
        self.tries = tries

    def _start(self, dim: int) -> None:
        self.sigma = self.sigma0
        self.dim_prob = min(1.0, 20.0 / dim)

    def _candidates(self, centres: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
        """Gaussian perturbations of a random subset of coordinates of random centres."""
        dim = centres.shape[1]
        base = centres[rng.integers(len(centres), size=count)]
        mask = rng.random((count, dim)) < self.dim_prob
        mask[np.arange(count), rng.integers(dim, size=count)] = True
        noise = rng.normal(0.0, self.sigma, (count, dim)) * mask
        return np.clip(base + noise, -1.0, 1.0)

    def _sample(
        self,
        base: Any,
        data: _Data,
        tree: tuple[Node, np.ndarray, np.ndarray],
        path: list[Node],
        n: int,
        room: int,
        rng: np.random.Generator,
        evaluate: Any,
    ) -> None:
        plans, _, values = data.arrays()
        leaf = path[-1].idx
        top = leaf[np.argsort(-values[leaf], kind="stable")[: min(5, len(leaf))]]
        centres = plans[top]
        want = len(path) - 1
        kept: list[np.ndarray] = []
        pool, pool_depth = [], []
        for _ in range(self.tries):
            cand = self._candidates(centres, 20 * n, rng)
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
        rewards, _ = evaluate(chosen)
        if float(rewards.max()) > before + 1e-9:
            self.sigma = min(1.0, self.sigma * 1.5)
        else:
            self.sigma = max(0.02, self.sigma * 0.85)


class LaP3(_PartitionSearch):
    """LaP3: partitions of the reached states (``waypoints`` positions along the path, the
    last the final position), max-valued nodes, CMA-ES leaf sampler from the leaf's best
    plan with step size ``sigma`` (kept across rounds while the leaf's best plan is the one
    it last found)."""

    name = "lap3"
    use_max = True

    def __init__(self, sigma: float = 0.1, waypoints: int = 4, **tree: Any):
        """``tree``: the arguments of the shared search (init_samples, batch, leaf_size,
        cp, svm_kernel)."""
        super().__init__(sigma=sigma, **tree)
        if waypoints < 1:
            raise ValueError(f"waypoints must be >= 1, got {waypoints}")
        self.waypoints = waypoints

    def _start(self, dim: int) -> None:
        self.sigma = self.sigma0
        self._es: Any = None
        self._es_best = -1  # sample index of the best plan the current CMA-ES found

    def _features(self, base: Any, plans: np.ndarray, positions: np.ndarray) -> np.ndarray:
        steps = positions.shape[1] - 1
        at = np.linspace(steps / self.waypoints, steps, self.waypoints).round().astype(int)
        return positions[:, at, :].reshape(len(positions), -1) / base.nav.size

    def _sample(
        self,
        base: Any,
        data: _Data,
        tree: tuple[Node, np.ndarray, np.ndarray],
        path: list[Node],
        n: int,
        room: int,
        rng: np.random.Generator,
        evaluate: Any,
    ) -> None:
        values = np.array(data.values)
        leaf = path[-1].idx
        start = int(leaf[np.argmax(values[leaf])])
        if self._es is None or start != self._es_best or self._es.stop():
            opts = {"verbose": -9, "seed": int(rng.integers(1, 2**31))}
            self._es = cma.CMAEvolutionStrategy(data.plans[start], self.sigma, opts)
            self._es_best = start
        es, want, spent = self._es, len(path) - 1, 0
        while spent < n:  # whole generations, as long as the budget allows
            xs = np.array(es.ask())
            k = min(len(xs), room - spent)
            first = len(data.values)
            rewards, feats = evaluate(xs[:k])
            spent += k
            best = first + int(np.argmax(rewards))
            if data.values[best] > data.values[self._es_best]:
                self._es_best = best
            if k < len(xs):  # the budget ends inside a generation: it is not told
                self._es = None
                break
            loss = -rewards
            inside = self._depth_in(tree, path, feats) == want
            if inside.any():
                loss = np.where(inside, loss, loss.max() + 1.0)  # reject: rank them worst
            es.tell(list(xs), loss.tolist())
