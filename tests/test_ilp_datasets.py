"""The seeded ILP datasets (``generator://<family>-<s|l>-v0/<seed>``): the four
small instances of seed 0 build, read back in SCIP with the expected shape and sense, and are
byte-identical when made again (here and in another process); graph and matrix generators
keep their invariants; URIs, splits and the best-known table behave."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyscipopt
import pytest

from optgym.datasets.dataset import Benchmark
from optgym.datasets.lns import (
    BEST_KNOWN_PATH,
    FAMILIES,
    IlpDataset,
    best_known_entries,
    best_known_objective,
    ilp_datasets,
)
from optgym.datasets.lns.generators import (
    AuctionParams,
    SetCoverParams,
    auction_bids,
    barabasi_albert_edges,
    erdos_renyi_edges,
    set_cover_incidence,
)

# sha256 of the numbers of seed 0 (IlpInstance.content_sha256): independent of SCIP's MPS
# writer, so a change here means the generator (or numpy's random streams) changed.
CONTENT_SHA256 = {
    "vertex-cover": "7a02794a75c85fe53e63eb7968c0f341836d7340b438ee47a9c50a0156467591",
    "independent-set": "93e91822e67364a00f2aff82adc030ce06a990220eec418db56d8523b90e6f41",
    "set-cover": "0c9835ce14709567d4dae03dbd8147f65838504e7c3a5b6f429803505cbf8829",
    "auction": "4c92db9865c1a4aba066aab11e41da338b0bf065ce16b09a9304ca7bdf52074a",
}

# family -> (variables, constraints or None when random, nonzeros or None, sense)
SHAPES = {
    "vertex-cover": (1000, 70 * (1000 - 70), 2 * 70 * (1000 - 70), "minimize"),
    "independent-set": (6000, None, None, "maximize"),
    "set-cover": (4000, 5000, 1_000_000, "minimize"),
    "auction": (4000, None, None, "maximize"),
}


@pytest.fixture(scope="module")
def small_seed0(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Benchmark]:
    """Seed 0 of every small dataset, built once into a private cache."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPTGYM_CACHE", str(cache))
        return {
            family: IlpDataset(family, "s").benchmark(f"generator://{family}-s-v0/0")
            for family in FAMILIES
        }


def test_registry() -> None:
    datasets = ilp_datasets()
    assert [d.name for d in datasets] == [name for pair in FAMILIES.values() for name in pair]
    assert list(FAMILIES) == ["vertex-cover", "independent-set", "set-cover", "auction"]
    assert FAMILIES["auction"] == ("auction-s-v0", "auction-l-v0")
    for d in datasets:
        assert d.uri == f"generator://{d.name}"
        assert d.scheme == "generator" and d.infinite and d.suffix == ".mps"
        assert d.license == "generated; CC0"
        assert d.description and len(d.references) >= 3
        assert "default_rng(seed)" in d.provenance and "Parameters:" in d.provenance
    small, large = IlpDataset("vertex-cover", "s"), IlpDataset("vertex-cover", "l")
    assert "n_nodes=1000" in small.provenance and "n_nodes=2000" in large.provenance
    assert "add_item_prob=0.65" in IlpDataset("auction", "s").provenance
    with pytest.raises(ValueError, match="unknown ILP family 'tsp'"):
        IlpDataset("tsp", "s")
    with pytest.raises(ValueError, match="unknown size 'm'; allowed: s, l"):
        IlpDataset("auction", "m")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_small_instance_reads_back(family: str, small_seed0: dict[str, Benchmark]) -> None:
    bench = small_seed0[family]
    assert bench.uri == f"generator://{family}-s-v0/0"
    assert bench.path.suffix == ".mps" and bench.path.name == "0.mps"
    assert hashlib.sha256(bench.read_bytes()).hexdigest() == bench.sha256
    instance = IlpDataset(family, "s").instance(0)
    assert instance.content_sha256() == CONTENT_SHA256[family]
    n_vars, n_rows, nnz, sense = SHAPES[family]
    assert instance.n_vars == n_vars
    assert n_rows is None or instance.n_rows == n_rows
    assert nnz is None or instance.nnz == nnz

    model = pyscipopt.Model()
    model.hideOutput()
    model.readProblem(str(bench.path))
    assert model.getNVars() == instance.n_vars
    assert model.getNBinVars() == instance.n_vars
    assert model.getNConss() == instance.n_rows
    assert model.getObjectiveSense() == sense
    read = {v.name: v.getObj() for v in model.getVars()}
    objective = np.array([read[f"{instance.var_prefix}{j}"] for j in range(instance.n_vars)])
    assert np.allclose(objective, instance.objective, rtol=1e-12, atol=0)


def test_expected_sizes_of_random_families() -> None:
    mis = IlpDataset("independent-set", "s").instance(0)
    assert 23_000 < mis.n_rows < 25_000  # 6000 * 8 / 2 = 24000 edges expected
    assert mis.nnz == 2 * mis.n_rows
    assert set(np.unique(mis.objective)) <= set(range(1, 101))
    ca = IlpDataset("auction", "s").instance(0)
    assert ca.n_vars == 4000
    items = [n for n in ca.row_names if n.startswith("item")]
    assert 1900 <= len(items) <= 2000 < ca.n_rows


@pytest.mark.parametrize("family", list(FAMILIES))
def test_same_seed_same_bytes(
    family: str, small_seed0: dict[str, Benchmark], tmp_path: Path
) -> None:
    ds = IlpDataset(family, "s")
    again = ds.generate(0, tmp_path)
    assert hashlib.sha256(again).hexdigest() == small_seed0[family].sha256
    assert ds.instance(1).content_sha256() != ds.instance(0).content_sha256()


def test_other_process_same_bytes(small_seed0: dict[str, Benchmark], tmp_path: Path) -> None:
    code = (
        "import hashlib, pathlib, sys\n"
        "from optgym.datasets.lns import IlpDataset\n"
        "for f in sys.argv[2:]:\n"
        "    data = IlpDataset(f, 's').generate(0, pathlib.Path(sys.argv[1]))\n"
        "    print(f, hashlib.sha256(data).hexdigest())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), *FAMILIES],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out == [x for f in FAMILIES for x in (f, small_seed0[f].sha256)]


def test_cached_benchmark_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path))
    ds = IlpDataset("auction", "s")
    first = ds.benchmark("generator://auction-s-v0/7")
    assert first.path == ds.folder() / "7.mps"
    assert ds.folder().parent == tmp_path / "datasets" / "auction-s-v0"
    mtime = first.path.stat().st_mtime_ns
    assert ds.benchmark("generator://auction-s-v0/7") == first
    assert first.path.stat().st_mtime_ns == mtime


def test_splits_and_uris() -> None:
    ds = IlpDataset("set-cover", "l")
    assert ds.take("test", 2) == ["generator://set-cover-l-v0/0", "generator://set-cover-l-v0/1"]
    assert ds.take("validation", 1) == ["generator://set-cover-l-v0/1000"]
    assert ds.take("train", 1) == ["generator://set-cover-l-v0/2000"]
    assert ds.first_uri() == "generator://set-cover-l-v0/0"
    with pytest.raises(ValueError, match="unknown split"):
        ds.take("dev", 1)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("generator://auction-s-v0/abc", "needs a seed after the dataset: a non-negative integer"),
        ("generator://auction-s-v0/-1", "needs a seed after the dataset: a non-negative integer"),
        ("generator://auction-s-v0/1.5", "needs a seed after the dataset: a non-negative integer"),
        ("generator://auction-s-v0", "no benchmark"),
        ("generator://auction-l-v0/0", "is not in dataset generator://auction-s-v0"),
        ("benchmark://auction-s-v0/0", "is not in dataset"),
        ("generator://auction-s-v0/4294967296", "out of range"),
        ("auction-s-v0/0", "malformed benchmark URI"),
    ],
)
def test_malformed_uri(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IlpDataset("auction", "s").benchmark(uri)


def test_instance_seed_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        IlpDataset("auction", "s").instance(-1)


def test_barabasi_albert() -> None:
    n, m = 300, 7
    edges = barabasi_albert_edges(n, m, np.random.default_rng(3))
    assert edges.shape == (m * (n - m), 2)
    assert (edges[:, 0] < edges[:, 1]).all()  # (earlier target, new node), no self-loop
    keys = edges[:, 0] * n + edges[:, 1]
    assert np.unique(keys).size == keys.size  # simple graph
    degree = np.bincount(edges.ravel(), minlength=n)
    assert degree.min() >= m - 1 and degree.max() > 5 * m  # hubs emerge
    np.testing.assert_array_equal(edges, barabasi_albert_edges(n, m, np.random.default_rng(3)))
    with pytest.raises(ValueError, match="1 <= m < n"):
        barabasi_albert_edges(5, 5, np.random.default_rng(0))


def test_erdos_renyi() -> None:
    n, p = 2000, 8 / 1999
    edges = erdos_renyi_edges(n, p, np.random.default_rng(5))
    assert (edges[:, 0] < edges[:, 1]).all() and edges.max() < n
    keys = edges[:, 0] * n + edges[:, 1]
    assert (np.diff(keys) > 0).all()  # sorted and distinct
    assert abs(edges.shape[0] - 8000) < 400  # n * 8 / 2 expected, sd ~ 89


def test_set_cover_incidence() -> None:
    params = SetCoverParams(300, 200, 0.05)
    keys = set_cover_incidence(params, np.random.default_rng(2))
    assert keys.size == 3000 and (np.diff(keys) > 0).all()
    rows, cols = np.divmod(keys, params.n_cols)
    assert np.bincount(rows, minlength=params.n_rows).min() >= 2
    assert np.bincount(cols, minlength=params.n_cols).min() >= 1
    with pytest.raises(ValueError, match="fewer than"):
        set_cover_incidence(SetCoverParams(300, 200, 0.001), np.random.default_rng(2))


def test_auction_bids() -> None:
    params = AuctionParams(n_items=60, n_bids=150)
    result = auction_bids(params, np.random.default_rng(4))
    assert len(result.bids) == 150
    for items, value in result.bids:
        assert value > 0 and len(set(items)) == len(items) and max(items) < 60
    grouped = [b for group in result.xor_groups for b in group]
    assert len(grouped) == len(set(grouped))
    for group in result.xor_groups:
        assert 2 <= len(group) <= 1 + params.max_n_sub_bids
        assert list(group) == list(range(group[0], group[-1] + 1))
        bundles = {frozenset(result.bids[b][0]) for b in group}
        assert len(bundles) == len(group)  # substitutes differ from each other
        first = result.bids[group[0]][1]
        assert all(result.bids[b][1] <= params.budget_factor * first for b in group)


def test_best_known(small_seed0: dict[str, Benchmark]) -> None:
    import optgym.datasets.lns.best_known  # noqa: F401  the module must not shadow the lookup

    assert best_known_objective("generator://auction-s-v0/999999") is None
    entries = best_known_entries()
    assert entries == json.loads(BEST_KNOWN_PATH.read_text())
    keys = {"objective", "dual_bound", "status", "seconds", "command", "scip_version", "sha256"}
    scip = pyscipopt.Model()
    version = f"{scip.getMajorVersion()}.{scip.getMinorVersion()}.{scip.getTechVersion()}"
    for uri, entry in entries.items():
        assert keys <= set(entry), uri
        family = uri.split("://")[1].split("-s-v0/")[0]
        assert family in FAMILIES and uri.startswith(f"generator://{family}-s-v0/")
        command = entry["command"]
        assert "optgym.datasets.lns.best_known" in command or "lns_best_known.py" in command
        if "found_by" in entry:  # a long SCIP run and a long LNS run, the better one kept
            runs = [(run["solver"], run["objective"]) for run in entry["runs"]]
            assert runs[0][0] == "scip" and len(runs) >= 2
            best = (max if family in ("independent-set", "auction") else min)(o for _, o in runs)
            assert entry["objective"] == best and (entry["found_by"], best) in runs
            assert entry["seconds"] >= 600  # at least 10x the LNS tasks' 60 CPU seconds
        if entry["objective"] is not None:
            assert best_known_objective(uri) == entry["objective"]
            maximize = family in ("independent-set", "auction")
            gap = entry["dual_bound"] - entry["objective"]
            assert (gap if maximize else -gap) >= -1e-6 * max(1.0, abs(entry["objective"]))
        bench = small_seed0.get(family)
        if bench is not None and bench.uri == uri and entry["scip_version"] == version:
            assert entry["sha256"] == bench.sha256, f"{uri}: best_known.json is stale"


def test_a_best_known_entry_only_improves_as_runs_are_added() -> None:
    """scripts/lns_best_known.py's merge: SCIP's side of an old entry is kept when SCIP is
    not run again, every earlier LNS run stays, and the entry's objective is the best run's
    (a worse run of another agent never lowers it)."""
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "scripts" / "lns_best_known.py"
    spec = importlib.util.spec_from_file_location("lns_best_known", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scip_entry = {"objective": 100.0, "dual_bound": 150.0, "status": "timelimit",
                  "solving_seconds": 150.0, "nodes": 1, "seconds": 150}  # fmt: skip
    cl = {"solver": "cl-lns", "seed": 0, "objective": 120.0, "cpu_seconds": 600.0}
    first = module.merge_entry(scip_entry, None, cl, maximize=True)
    assert (first["objective"], first["found_by"]) == (120.0, "cl-lns")
    assert first["dual_bound"] == 150.0 and [r["solver"] for r in first["runs"]] == [
        "scip", "cl-lns"]  # fmt: skip
    lb = {"solver": "lb-relax", "seed": 0, "objective": 110.0, "cpu_seconds": 600.0}
    second = module.merge_entry(first, None, lb, maximize=True)
    assert (second["objective"], second["found_by"]) == (120.0, "cl-lns")
    assert [r["solver"] for r in second["runs"]] == ["scip", "cl-lns", "lb-relax"]
    scip = {"solver": "scip", "objective": 125.0, "status": "timelimit", "cpu_seconds": 600.0,
            "command": "c", "dual_bound": 140.0, "solving_seconds": 600.0, "nodes": 9}  # fmt: skip
    third = module.merge_entry(second, scip, {**cl, "objective": 119.0}, maximize=True)
    assert (third["objective"], third["found_by"], third["dual_bound"]) == (125.0, "scip", 140.0)
    assert module.merge_entry(scip_entry, None, cl, maximize=False)["found_by"] == "scip"
