"""Seeded generators of the four 0-1 integer program families of the LB-RELAX and CL-LNS papers.

Minimum weighted vertex cover on Barabási-Albert graphs, maximum weighted independent set on
Erdős-Rényi graphs, weighted set cover, and combinatorial auctions drawn from the "arbitrary
relationships" distribution of Leyton-Brown, Pearson & Shoham (2000), each at a small ("s")
and a large ("l") size. Every instance is a pure 0-1 program whose constraints are all
covering rows (``sum x >= 1``) or all packing rows (``sum x <= 1``), written as MPS through
pyscipopt.

Reproducibility: the only source of randomness is ``numpy.random.default_rng(seed)``, and only
its ``integers`` and ``random`` streams are used (no distribution that goes through the C
library's ``log``/``exp``), so the same seed gives the same bytes on any machine. Floating-point
work is limited to IEEE-exact operations (+, -, *, / and comparisons) in a fixed order; the
one power (a bundle's superadditivity term) is computed with :mod:`decimal`.
"""

from __future__ import annotations

import decimal
import functools
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from optgym.datasets.seeded import SeededDataset

LICENSE = "generated; CC0"
SIZES = ("s", "l")


# --------------------------------------------------------------------------- instances


@dataclass(frozen=True)
class IlpInstance:
    """A 0-1 program ``min/max c·x`` where every row ``r`` reads ``sum(x[j] for j in row r)``
    ``>= 1`` (``row_sense == ">="``, covering) or ``<= 1`` (``"<="``, packing).

    Rows are stored in CSR form: row ``r`` holds ``indices[indptr[r]:indptr[r + 1]]``.
    """

    name: str
    maximize: bool
    objective: np.ndarray  # (n_vars,) float64
    indptr: np.ndarray  # (n_rows + 1,) int64
    indices: np.ndarray  # (nnz,) int64
    row_sense: str  # ">=" or "<="
    row_names: tuple[str, ...]
    var_prefix: str = "x"

    @property
    def n_vars(self) -> int:
        return int(self.objective.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.indptr.shape[0]) - 1

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    def content_sha256(self) -> str:
        """sha256 of the instance's numbers (sense, objective, rows), independent of the MPS
        writer: a cross-machine and cross-SCIP-version check of the generator."""
        h = hashlib.sha256()
        h.update(f"{self.maximize}|{self.row_sense}|{self.n_vars}|{self.n_rows}|".encode())
        h.update(np.ascontiguousarray(self.objective, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(self.indptr, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(self.indices, dtype="<i8").tobytes())
        return h.hexdigest()

    def to_model(self):  # -> pyscipopt.Model
        """The instance as a pyscipopt model (binary variables ``<prefix><j>``)."""
        import pyscipopt
        from pyscipopt.scip import Term

        model = pyscipopt.Model(self.name)
        model.hideOutput()
        xs = [
            model.addVar(f"{self.var_prefix}{j}", vtype="B", obj=c)
            for j, c in enumerate(self.objective.tolist())
        ]
        terms = [Term(x) for x in xs]
        indptr = self.indptr.tolist()
        indices = self.indices.tolist()
        for r, row_name in enumerate(self.row_names):
            expr = pyscipopt.Expr({terms[j]: 1.0 for j in indices[indptr[r] : indptr[r + 1]]})
            model.addCons(expr >= 1 if self.row_sense == ">=" else expr <= 1, name=row_name)
        if self.maximize:
            model.setMaximize()
        else:
            model.setMinimize()
        return model

    def write_mps(self, path: Path) -> None:
        """Write the instance to ``path`` (an ``.mps`` file) with SCIP's MPS writer."""
        self.to_model().writeProblem(str(path), verbose=False)


def _csr(rows: list[np.ndarray] | np.ndarray, n_rows: int | None = None) -> tuple:
    """``(indptr, indices)`` from a list of per-row column arrays, or from an ``(E, 2)``
    array of pairs (one row per pair)."""
    if isinstance(rows, np.ndarray):
        indices = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1)
        indptr = np.arange(0, indices.size + 1, 2, dtype=np.int64)
        return indptr, indices
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = (
        np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
        if rows
        else np.empty(0, dtype=np.int64)
    )
    return indptr, indices


def _first_distinct(values: np.ndarray) -> np.ndarray:
    """The distinct entries of ``values`` in the order of their first occurrence."""
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


# --------------------------------------------------------------------------- graphs


def barabasi_albert_edges(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Edges ``(E, 2)`` of a Barabási-Albert preferential-attachment graph.

    Start from a star on nodes ``0..m`` (centre 0); every further node ``v = m+1 .. n-1``
    joins with ``m`` edges to distinct earlier nodes, each drawn with probability
    proportional to its current degree (draws are repeated until ``m`` distinct targets are
    found). ``E = m * (n - m)``. Row ``k`` is ``(target, v)``, in the order they were made.
    """
    if not 1 <= m < n:
        raise ValueError(f"Barabási-Albert needs 1 <= m < n, got m={m}, n={n}")
    n_edges = m * (n - m)
    edges = np.empty((n_edges, 2), dtype=np.int64)
    # Every edge end once: a uniform pick from it is a degree-proportional pick of a node.
    ends = np.empty(2 * n_edges, dtype=np.int64)
    edges[:m, 0] = 0
    edges[:m, 1] = np.arange(1, m + 1)
    ends[: 2 * m] = edges[:m].reshape(-1)
    k, filled = m, 2 * m
    for v in range(m + 1, n):
        pool = ends[:filled]
        targets = np.empty(0, dtype=np.int64)
        batch = 2 * m
        while targets.size < m:
            draws = pool[rng.integers(0, filled, size=batch)]
            targets = _first_distinct(np.concatenate([targets, draws]))
            batch = m
        targets = targets[:m]
        edges[k : k + m, 0] = targets
        edges[k : k + m, 1] = v
        ends[filled : filled + m] = targets
        ends[filled + m : filled + 2 * m] = v
        k += m
        filled += 2 * m
    return edges


def erdos_renyi_edges(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Edges ``(E, 2)`` of a G(n, p) Erdős-Rényi graph, sorted, ``u < v`` in each row.

    Every pair ``u < v`` is an edge when its own uniform draw in [0, 1) is below ``p``;
    pairs are visited row by row (``u`` = 0, 1, ...), which fixes the order of the draws.
    """
    if n < 2 or not 0.0 <= p <= 1.0:
        raise ValueError(f"Erdős-Rényi needs n >= 2 and 0 <= p <= 1, got n={n}, p={p}")
    parts = []
    for u in range(n - 1):
        hits = np.flatnonzero(rng.random(n - 1 - u) < p)
        if hits.size:
            part = np.empty((hits.size, 2), dtype=np.int64)
            part[:, 0] = u
            part[:, 1] = hits + (u + 1)
            parts.append(part)
    return np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64)


# --------------------------------------------------------------------------- families


@dataclass(frozen=True)
class VertexCoverParams:
    """Minimum weighted vertex cover on a Barabási-Albert graph."""

    n_nodes: int
    attachment: int  # m: edges of every new node
    min_weight: int = 1
    max_weight: int = 100


@dataclass(frozen=True)
class IndependentSetParams:
    """Maximum weighted independent set on a G(n, p) graph with ``p = degree / (n - 1)``."""

    n_nodes: int
    average_degree: float
    min_weight: int = 1
    max_weight: int = 100


@dataclass(frozen=True)
class SetCoverParams:
    """Weighted set cover: ``n_rows`` elements, ``n_cols`` sets, a fraction ``density`` of
    the element-set incidence matrix is one."""

    n_rows: int
    n_cols: int
    density: float
    min_cost: int = 1
    max_cost: int = 100


@dataclass(frozen=True)
class AuctionParams:
    """Combinatorial auction, "arbitrary relationships" (Leyton-Brown et al. 2000); the
    defaults are those of Gasse et al. (2019)'s generator as packaged by Ecole."""

    n_items: int
    n_bids: int
    min_value: float = 1.0
    max_value: float = 100.0
    value_deviation: float = 0.5
    add_item_prob: float = 0.65
    max_n_sub_bids: int = 5
    additivity: float = 0.2
    budget_factor: float = 1.5
    resale_factor: float = 0.5


def _program(
    name: str,
    packing: bool,
    objective: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray],
    row_names: Iterable[str],
    var_prefix: str = "x",
) -> IlpInstance:
    """The instance of every family: packing rows (``<= 1``) maximized, or covering rows
    (``>= 1``) minimized; ``rows`` is ``(indptr, indices)``."""
    indptr, indices = rows
    sense = "<=" if packing else ">="
    return IlpInstance(
        name, packing, objective, indptr, indices, sense, tuple(row_names), var_prefix
    )


def _edge_program(
    params: VertexCoverParams | IndependentSetParams,
    edges: np.ndarray,
    rng: np.random.Generator,
    name: str,
    packing: bool,
) -> IlpInstance:
    """One row ``x_u + x_v`` (named ``e<k>``) per edge on node weights drawn after the edges,
    integers uniform in ``[min_weight, max_weight]``."""
    weights = rng.integers(params.min_weight, params.max_weight + 1, size=params.n_nodes)
    names = (f"e{k}" for k in range(edges.shape[0]))
    return _program(name, packing, weights.astype(np.float64), _csr(edges), names)


def vertex_cover(params: VertexCoverParams, rng: np.random.Generator, name: str) -> IlpInstance:
    """``min sum w_v x_v`` s.t. ``x_u + x_v >= 1`` for every edge; integer weights."""
    edges = barabasi_albert_edges(params.n_nodes, params.attachment, rng)
    return _edge_program(params, edges, rng, name, packing=False)


def independent_set(
    params: IndependentSetParams, rng: np.random.Generator, name: str
) -> IlpInstance:
    """``max sum w_v x_v`` s.t. ``x_u + x_v <= 1`` for every edge; integer weights."""
    p = params.average_degree / (params.n_nodes - 1)
    edges = erdos_renyi_edges(params.n_nodes, p, rng)
    return _edge_program(params, edges, rng, name, packing=True)


def set_cover_incidence(params: SetCoverParams, rng: np.random.Generator) -> np.ndarray:
    """Sorted flat keys ``row * n_cols + col`` of the incidence matrix's ones.

    Exactly ``round(n_rows * n_cols * density)`` ones: first two distinct random columns for
    every row and one random row for every column (so each row has >= 2 columns and each
    column >= 1 row), then uniformly random further cells until the count is reached
    (duplicates are skipped, keeping the earliest draws).
    """
    r_, c_ = params.n_rows, params.n_cols
    nnz = math.floor(r_ * c_ * params.density + 0.5)
    if c_ < 2:
        raise ValueError("set cover needs at least 2 columns")
    rows = np.arange(r_, dtype=np.int64)
    first = rng.integers(0, c_, size=r_)
    second = (first + rng.integers(1, c_, size=r_)) % c_
    col_rows = rng.integers(0, r_, size=c_)
    keys = _first_distinct(
        np.concatenate(
            [rows * c_ + first, rows * c_ + second, col_rows * c_ + np.arange(c_, dtype=np.int64)]
        )
    )
    if keys.size > nnz:
        raise ValueError(
            f"density {params.density} gives {nnz} ones, fewer than the {keys.size} needed to "
            "give every row 2 columns and every column a row"
        )
    while keys.size < nnz:
        missing = nnz - keys.size
        extra = rng.integers(0, r_ * c_, size=missing + missing // 16 + 64)
        keys = _first_distinct(np.concatenate([keys, extra]))
    return np.sort(keys[:nnz])


def set_cover(params: SetCoverParams, rng: np.random.Generator, name: str) -> IlpInstance:
    """``min sum c_j x_j`` s.t. every row is covered by one chosen column; integer costs."""
    keys = set_cover_incidence(params, rng)
    costs = rng.integers(params.min_cost, params.max_cost + 1, size=params.n_cols)
    rows, cols = np.divmod(keys, params.n_cols)
    indptr = np.searchsorted(rows, np.arange(params.n_rows + 1, dtype=np.int64)).astype(np.int64)
    names = (f"r{i}" for i in range(params.n_rows))
    return _program(name, False, costs.astype(np.float64), (indptr, cols.astype(np.int64)), names)


@functools.cache
def _bundle_bonus(size: int, additivity: float) -> float:
    """``size ** (1 + additivity)``, computed in :mod:`decimal` so that every platform gets
    the same double (the C library's ``pow`` may differ in the last bit)."""
    ctx = decimal.Context(prec=40)
    exponent = ctx.add(decimal.Decimal(1), decimal.Decimal(repr(additivity)))
    return float(ctx.power(decimal.Decimal(size), exponent))


@dataclass(frozen=True)
class Auction:
    """Bids ``(items, value)`` and the groups of bids of one bidder (mutually exclusive)."""

    n_items: int
    bids: list[tuple[tuple[int, ...], float]]
    xor_groups: list[tuple[int, ...]]


def _pick(weights: np.ndarray, rng: np.random.Generator) -> int:
    """An index drawn with probability proportional to the non-negative ``weights``."""
    cdf = np.cumsum(weights)
    return int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))


def auction_bids(params: AuctionParams, rng: np.random.Generator) -> Auction:
    """Bids from the "arbitrary relationships" distribution (Leyton-Brown et al. 2000, 4.3).

    - Every item ``g`` has a common (resale) value ``c(g) ~ U[min_value, max_value]``; every
      pair of items a compatibility ``d(g, h) ~ U[0, 1]`` (symmetric, ``d(g, g) = 0``), each
      row normalised to sum to 1.
    - A bidder draws interests ``u(g) ~ U[0, 1]`` and private values
      ``pv(g) = c(g) + value_deviation * max_value * (2 u(g) - 1)``. Its bundle starts with
      an item drawn with probability proportional to ``u``; then, while a coin with
      probability ``add_item_prob`` says so, it adds an item ``g`` not yet in it with
      probability proportional to ``u(g) * sum(d(b, g) for b in bundle)``. The bid's value
      is ``sum(pv) + |bundle| ** (1 + additivity)``; a bidder whose value is not positive is
      dropped.
    - Substitutes: from every item of the bundle a new bundle of the same size is grown by
      the same rule (without the coin). It is kept if it differs from the bundle and the
      substitutes kept so far, its value is positive and at most ``budget_factor`` times the
      bundle's value, and its resale value ``sum(c)`` at least ``resale_factor`` times the
      bundle's. The ``max_n_sub_bids`` most valuable are kept.
    - A bidder's bids (the bundle first) are mutually exclusive (XOR, one dummy item each).
      Bidders are added until ``n_bids`` bids exist; the last bidder's bids are cut to fit.
    """
    n = params.n_items
    if n < 2 or params.n_bids < 1:
        raise ValueError(f"an auction needs >= 2 items and >= 1 bid, got {n}, {params.n_bids}")
    common = params.min_value + (params.max_value - params.min_value) * rng.random(n)
    compat = np.triu(rng.random((n, n)), k=1)
    compat += compat.T
    for lo in range(0, n, 256):  # cumsum: a sequential (hence exactly reproducible) row sum
        block = compat[lo : lo + 256]
        block /= np.cumsum(block, axis=1)[:, -1:]
    deviation = params.value_deviation * params.max_value
    common_list = common.tolist()

    def grow(first: int, interests: np.ndarray, size: int | None) -> list[int]:
        """A bundle from ``first``: to ``size`` items, or by coin flips when ``size`` is None."""
        bundle = [first]
        affinity = compat[first].copy()
        weights = interests * affinity
        weights[first] = 0.0
        while (len(bundle) < size) if size is not None else (rng.random() < params.add_item_prob):
            if len(bundle) == n:
                break
            item = _pick(weights, rng)
            bundle.append(item)
            affinity += compat[item]
            weights = interests * affinity
            weights[bundle] = 0.0
        return bundle

    bids: list[tuple[tuple[int, ...], float]] = []
    xor_groups: list[tuple[int, ...]] = []
    while len(bids) < params.n_bids:
        interests = rng.random(n)
        private = (common + deviation * (2.0 * interests - 1.0)).tolist()

        def value(bundle: list[int], private: list[float] = private) -> float:
            total = 0.0
            for g in bundle:
                total += private[g]
            return total + _bundle_bonus(len(bundle), params.additivity)

        def resale(bundle: list[int]) -> float:
            total = 0.0
            for g in bundle:
                total += common_list[g]
            return total

        bundle = grow(_pick(interests, rng), interests, None)
        price = value(bundle)
        if price <= 0.0:
            continue
        budget = params.budget_factor * price
        min_resale = params.resale_factor * resale(bundle)
        seen = {frozenset(bundle)}
        subs: list[tuple[float, int, list[int]]] = []
        for item in bundle:
            sub = grow(item, interests, len(bundle))
            key = frozenset(sub)
            if key in seen:
                continue
            seen.add(key)
            sub_price = value(sub)
            if 0.0 < sub_price <= budget and resale(sub) >= min_resale:
                subs.append((sub_price, len(subs), sub))
        subs.sort(key=lambda t: (-t[0], t[1]))
        bidder = [(bundle, price)] + [(s, v) for v, _, s in subs[: params.max_n_sub_bids]]
        bidder = bidder[: params.n_bids - len(bids)]
        first_bid = len(bids)
        bids.extend((tuple(sorted(b)), v) for b, v in bidder)
        if len(bidder) > 1:
            xor_groups.append(tuple(range(first_bid, len(bids))))
    return Auction(n_items=n, bids=bids, xor_groups=xor_groups)


def auction(params: AuctionParams, rng: np.random.Generator, name: str) -> IlpInstance:
    """``max sum value_b x_b`` s.t. each item is sold at most once (one ``<= 1`` row per item
    in some bid, ``item<g>``) and each bidder wins at most one of its bids (``bidder<k>``)."""
    result = auction_bids(params, rng)
    by_item: list[list[int]] = [[] for _ in range(result.n_items)]
    for b, (items, _) in enumerate(result.bids):
        for g in items:
            by_item[g].append(b)
    rows = [np.array(bs) for bs in by_item if bs] + [np.array(g) for g in result.xor_groups]
    names = [f"item{g}" for g, bs in enumerate(by_item) if bs]
    names += [f"bidder{k}" for k in range(len(result.xor_groups))]
    values = np.array([v for _, v in result.bids], dtype=np.float64)
    return _program(name, True, values, _csr(rows), names, var_prefix="bid")


# --------------------------------------------------------------------------- datasets

Builder = Callable[..., IlpInstance]

LB_RELAX = (
    "Huang, Ferber, Zheng, Dilkina, Tian, Koenig, "
    "Local Branching Relaxation Heuristics for Integer Linear Programs, CPAIOR 2023"
)
CL_LNS = (
    "Huang, Ferber, Tian, Dilkina, Steiner, "
    "Searching Large Neighborhoods for Integer Linear Programs with Contrastive Learning, "
    "ICML 2023"
)
GASSE = (
    "Gasse, Chételat, Ferroni, Charlin, Lodi, "
    "Exact Combinatorial Optimization with Graph Convolutional Neural Networks, NeurIPS 2019"
)
LEYTON_BROWN = (
    "Leyton-Brown, Pearson, Shoham, "
    "Towards a Universal Test Suite for Combinatorial Auction Algorithms, ACM EC 2000"
)
BALAS_HO = (
    "Balas, Ho, Set covering algorithms using cutting planes, heuristics, and subgradient "
    "optimization: a computational study, Mathematical Programming Study 12, 1980"
)
BARABASI = "Barabási, Albert, Emergence of Scaling in Random Networks, Science 286, 1999"
ERDOS = "Erdős, Rényi, On Random Graphs I, Publicationes Mathematicae 6, 1959"

COMMON_PROVENANCE = (
    "Generated by optgym.datasets.lns.generators with numpy.random.default_rng(seed) "
    "(integers and random streams only), written with pyscipopt's Model.writeProblem (SCIP's "
    "MPS writer); all variables binary. Seeds: test [0, 1000), validation [1000, 2000), "
    "train [2000, 2**32). "
)


@dataclass(frozen=True)
class Family:
    """One problem family: its builder, its two sizes and the words that describe it."""

    builder: Builder
    sizes: dict[str, object]
    description: str
    provenance: str
    references: tuple[str, ...]


FAMILIES_SPEC: dict[str, Family] = {
    "vertex-cover": Family(
        builder=vertex_cover,
        sizes={"s": VertexCoverParams(1000, 70), "l": VertexCoverParams(2000, 70)},
        description=(
            "Minimum weighted vertex cover on Barabási-Albert graphs ({n_nodes} nodes, "
            "attachment {attachment}): minimize sum w_v x_v s.t. x_u + x_v >= 1 per edge."
        ),
        provenance=(
            "Barabási-Albert graph: a star on nodes 0..m (centre 0), then every node "
            "v = m+1..n-1 attaches to m distinct earlier nodes drawn proportionally to degree "
            "(uniform picks from the list of edge ends, repeated until m distinct ones), "
            "giving m*(n-m) edges. Node weights: integers uniform in [{min_weight}, "
            "{max_weight}] (the LB-RELAX / CL-LNS papers do not state their weight "
            "distribution; this choice is ours). One covering row e<k> per edge."
        ),
        references=(LB_RELAX, CL_LNS, BARABASI),
    ),
    "independent-set": Family(
        builder=independent_set,
        sizes={"s": IndependentSetParams(6000, 8.0), "l": IndependentSetParams(12000, 8.0)},
        description=(
            "Maximum weighted independent set on Erdős-Rényi graphs ({n_nodes} nodes, "
            "average degree {average_degree:g}): maximize sum w_v x_v s.t. x_u + x_v <= 1 "
            "per edge."
        ),
        provenance=(
            "G(n, p) graph with p = average_degree / (n - 1): each pair u < v is an edge when "
            "its own uniform draw is below p (pairs visited row by row). Node weights: "
            "integers uniform in [{min_weight}, {max_weight}]. One packing row e<k> per edge "
            "(edge formulation, no clique inequalities)."
        ),
        references=(LB_RELAX, CL_LNS, ERDOS),
    ),
    "set-cover": Family(
        builder=set_cover,
        sizes={"s": SetCoverParams(5000, 4000, 0.05), "l": SetCoverParams(10000, 8000, 0.05)},
        description=(
            "Weighted set cover, {n_rows} rows x {n_cols} columns, density {density:g}: "
            "minimize sum c_j x_j s.t. every row is covered by a chosen column."
        ),
        provenance=(
            "Incidence matrix with exactly round(rows*cols*density) ones: two distinct random "
            "columns per row and one random row per column first (every row has >= 2 columns, "
            "every column >= 1 row), then uniformly random cells until the count is reached "
            "(duplicates skipped), in the spirit of the Balas & Ho generator used by Gasse et "
            "al. 2019. Costs: integers uniform in [{min_cost}, {max_cost}]. One covering row "
            "r<i> per element. Measured with SCIP 10.0 (pyscipopt 6.3, 1 thread, CPU clock) on "
            "seed 0 of the 5000 x 4000 size: presolving 3.2 s, first root LP 1.3 s (3307 "
            "simplex iterations), so the density of 0.05 was kept."
        ),
        references=(LB_RELAX, CL_LNS, GASSE, BALAS_HO),
    ),
    "auction": Family(
        builder=auction,
        sizes={"s": AuctionParams(2000, 4000), "l": AuctionParams(4000, 8000)},
        description=(
            "Combinatorial auctions ({n_items} items, {n_bids} bids), 'arbitrary "
            "relationships' distribution: maximize the value of the accepted bids s.t. every "
            "item is sold at most once and every bidder wins at most one of its bids."
        ),
        provenance=(
            "Leyton-Brown, Pearson & Shoham (2000) 'arbitrary relationships' bids, as used by "
            "Gasse et al. 2019, with min_value {min_value:g}, max_value {max_value:g}, "
            "value_deviation {value_deviation:g}, add_item_prob {add_item_prob:g}, "
            "max_n_sub_bids {max_n_sub_bids}, additivity {additivity:g}, budget_factor "
            "{budget_factor:g}, resale_factor {resale_factor:g} (the defaults of Ecole's "
            "CombinatorialAuctionGenerator, which packages Gasse et al.'s generator); "
            "real-valued bid values, not rounded (SCIP's MPS writer prints 15 significant "
            "digits). Compatibilities are normalised per item (each row of d sums to 1). "
            "Bid value = sum of private item values + |bundle|^(1+additivity). "
            "One packing row item<g> per item in some bid and one bidder<k> row per bidder "
            "with several (XOR) bids; one binary variable bid<b> per bid. The algorithm is "
            "described in optgym.datasets.lns.generators.auction_bids. Hardness check (SCIP "
            "10.0, 1 thread, 60 s CPU, seed 0 of the 2000 x 4000 size): not solved, primal "
            "120736.2, dual bound 140503.5 (gap 16%), still at the root node; so the size "
            "was kept."
        ),
        references=(LB_RELAX, CL_LNS, GASSE, LEYTON_BROWN),
    ),
}


class IlpDataset(SeededDataset):
    """``generator://<family>-<size>-v0/<seed>``: one MPS instance of a family per seed."""

    suffix = ".mps"
    license = LICENSE

    def __init__(self, family: str, size: str) -> None:
        if family not in FAMILIES_SPEC:
            raise ValueError(f"unknown ILP family {family!r}; known: {', '.join(FAMILIES_SPEC)}")
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; allowed: {', '.join(SIZES)}")
        spec = FAMILIES_SPEC[family]
        params = spec.sizes[size]
        fields = asdict(params)  # type: ignore[call-overload]
        exact = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        self.name = f"{family}-{size}-v0"
        self.description = spec.description.format(**fields)
        self.provenance = (
            COMMON_PROVENANCE
            + spec.provenance.format(**fields)
            + f" Parameters: {type(params).__name__}({exact})."
        )
        self.references = spec.references
        self.family = family
        self.size = size
        self.params = params
        self._builder = spec.builder

    def instance(self, seed: int) -> IlpInstance:
        """The instance for ``seed`` as arrays (no file written)."""
        if not 0 <= seed < 2**32:
            raise ValueError(f"seed {seed} is out of range; allowed: 0 <= seed < 2**32")
        name = f"{self.name}_{seed}"
        return self._builder(self.params, np.random.default_rng(seed), name)

    def generate(self, seed: int, workdir: Path) -> bytes:
        path = Path(workdir) / f"{seed}.mps"
        self.instance(seed).write_mps(path)
        return path.read_bytes()
