"""Halide pipeline specs, operators, datasets and their lowering to Halide."""

from __future__ import annotations

import json
import os
import time

import halide as hl
import numpy as np
import pytest

from optgym.datasets.schedule import (
    FEATURE_NAMES,
    OPS,
    Access,
    HalideOpsDataset,
    InputTensor,
    PipelineSpec,
    RandomDagDataset,
    Stage,
    accesses,
    input_data,
    intrinsic_features,
    load_spec,
    ops_spec,
    outputs_match,
    random_spec,
    reference_output,
    required_regions,
    stage_feature_matrix,
)
from optgym.datasets.schedule.generators import FAMILIES, blur, matmul, resblock
from optgym.envs import problems
from optgym.envs.schedule.lower import apply_naive, lower, to_numpy


def _stage(name, op, inputs, shape, **params):
    return Stage(name, op, tuple(inputs), tuple(shape), tuple(params.items()))


#: one small pipeline per op (the op under test is the output stage): op, stage name,
#: inputs (name -> shape), output shape, parameters; seeds 1, 2, ... in this order
OP_TABLE = [
    ("matmul", "mm", {"A": (9, 7), "B": (6, 9)}, (6, 7), {"k": 9}),
    ("conv2d", "conv", {"inp": (10, 9, 3), "w": (3, 3, 3, 5)}, (10, 9, 5), {"k": 3, "cin": 3}),
    ("depthwise", "dw", {"inp": (11, 8, 4), "w": (5, 5, 4)}, (11, 8, 4), {"k": 5}),
    ("relu", "r", {"inp": (7, 5, 2)}, (7, 5, 2), {}),
    ("add", "s", {"a": (13,), "b": (13,)}, (13,), {}),
    ("maxpool", "pool", {"inp": (10, 8, 3)}, (5, 4, 3), {}),
    ("blur_x", "bx", {"inp": (12, 6)}, (12, 6), {}),
    ("blur_y", "by", {"inp": (12, 6, 2)}, (12, 6, 2), {}),
]
OP_SPECS: dict[str, PipelineSpec] = {
    op: PipelineSpec(
        f"t-{op}",
        tuple(InputTensor(n, shape) for n, shape in inputs.items()),
        (_stage(name, op, tuple(inputs), out, **params),),
        seed=seed,
    )
    for seed, (op, name, inputs, out, params) in enumerate(OP_TABLE, start=1)
}

RANDOM_SEEDS = (0, 1, 2, 3, 4, 2000, 2001, 2002)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / "cache"))


def _run(spec: PipelineSpec, schedule=apply_naive) -> np.ndarray:
    low = lower(spec)
    schedule(low)
    buf = low.output_buffer()
    low.realize(buf)
    return to_numpy(buf)


def _inline_default(low) -> None:
    low.output.compute_root()  # everything else left to Halide: inlined, reductions innermost


# --------------------------------------------------------------------------- specs


def test_every_op_has_a_test_spec():
    assert set(OP_SPECS) == set(OPS)


@pytest.mark.parametrize(
    "spec",
    [*OP_SPECS.values(), ops_spec("resblock-64"), random_spec(5), random_spec(2001)],
    ids=lambda s: s.name,
)
def test_spec_json_round_trip(spec):
    text = spec.to_json()
    again = PipelineSpec.from_json(text)
    assert again == spec
    assert again.to_json() == text
    assert json.loads(text)["stages"][-1]["name"] == spec.output.name


def test_spec_queries():
    spec = ops_spec("resblock-64")
    assert spec.output.name == "residual"
    assert spec.stage("conv2").op == "conv2d"
    assert spec.consumers("input") == ["conv1", "residual"]
    assert spec.consumers("relu1") == ["conv2"]
    assert spec.consumers("residual") == []
    assert spec.stage("conv1").param("cin") == 16
    with pytest.raises(KeyError):
        spec.stage("nope")
    # params are canonical whatever order they are given in
    a = _stage("c", "conv2d", ("i", "w"), (4, 4, 2), k=3, cin=1)
    b = _stage("c", "conv2d", ("i", "w"), (4, 4, 2), cin=1, k=3)
    assert a == b


def _mutated(mutate) -> str:
    obj = json.loads(OP_SPECS["conv2d"].to_json())
    mutate(obj)
    return json.dumps(obj)


def _two_stage(obj, first_reads: str) -> None:
    relu = {"name": "r", "op": "relu", "inputs": ["conv"], "shape": [10, 9, 5], "params": []}
    obj["stages"].append(relu)
    obj["stages"][0]["inputs"][0] = first_reads


BAD = {
    "unknown op": lambda o: o["stages"][0].update(op="conv3d"),
    "unknown input": lambda o: o["stages"][0].update(inputs=["inp", "nope"]),
    "reads itself": lambda o: o["stages"][0].update(inputs=["conv", "w"]),
    "reads a later stage": lambda o: _two_stage(o, "r"),
    "four dims": lambda o: o["stages"][0].update(shape=[10, 9, 5, 1]),
    "wrong dims": lambda o: o["stages"][0].update(shape=[10, 9]),
    "shape mismatch": lambda o: o["stages"][0].update(shape=[10, 9, 6]),
    "missing param": lambda o: o["stages"][0].update(params=[["k", 3]]),
    "extra param": lambda o: o["stages"][0]["params"].append(["s", 1]),
    "even kernel": lambda o: (
        o["inputs"][1].update(shape=[2, 2, 3, 5]),
        o["stages"][0].update(params=[["cin", 3], ["k", 2]]),
    ),
    "bad name": lambda o: o["stages"][0].update(name="1conv"),
    "duplicate name": lambda o: o["stages"][0].update(name="inp"),
    "unused input": lambda o: o["inputs"].append({"name": "z", "shape": [3]}),
    "dead stage": lambda o: o["stages"].insert(
        0, {"name": "d", "op": "relu", "inputs": ["inp"], "shape": [10, 9, 3], "params": []}
    ),
    "no stages": lambda o: o.update(stages=[]),
    "negative seed": lambda o: o.update(seed=-1),
    "zero extent": lambda o: o["inputs"][0].update(shape=[0, 9, 3]),
    "wrong format": lambda o: o.update(format="other"),
    "missing key": lambda o: o["stages"][0].pop("op"),
}


@pytest.mark.parametrize("what", sorted(BAD))
def test_bad_spec_is_rejected(what):
    with pytest.raises(ValueError):
        PipelineSpec.from_json(_mutated(BAD[what]))


def test_bad_json_is_rejected():
    with pytest.raises(ValueError, match="JSON"):
        PipelineSpec.from_json("{not json")
    with pytest.raises(ValueError, match="unknown op"):
        PipelineSpec.from_json(_mutated(BAD["unknown op"]))
    with pytest.raises(ValueError, match="topological"):
        PipelineSpec.from_json(_mutated(BAD["reads a later stage"]))


# --------------------------------------------------------------------------- ops


def test_accesses_and_required_regions():
    spec = OP_SPECS["conv2d"]
    acc = accesses(spec, spec.output)
    assert acc["inp"] == [Access(0, 1, -1, 1), Access(1, 1, -1, 1), Access(-1, 0, 0, 2)]
    assert acc["w"][3] == Access(2, 1, 0, 0)
    regions = required_regions(spec)
    assert regions["conv"] == [(0, 10), (0, 9), (0, 5)]
    assert regions["inp"] == [(-1, 12), (-1, 11), (0, 3)]
    assert regions["w"] == [(0, 3), (0, 3), (0, 3), (0, 5)]

    spec = PipelineSpec("b", *blur(16), seed=0)
    regions = required_regions(spec)
    assert regions["blur_x"] == [(0, 16), (-1, 18), (0, 3)]
    assert regions["input"] == [(-1, 18), (-1, 18), (0, 3)]

    pool = required_regions(OP_SPECS["maxpool"])
    assert pool["inp"] == [(0, 10), (0, 8), (0, 3)]

    data = input_data(spec)
    assert data["input"].shape == (3, 18, 18) and data["input"].dtype == np.float32
    assert -1.0 <= data["input"].min() and data["input"].max() <= 1.0
    assert all(np.array_equal(data[k], v) for k, v in input_data(spec).items())


def test_features():
    spec = ops_spec("resblock-64")
    for s in spec.stages:
        feats = intrinsic_features(spec, s)
        assert tuple(feats) == FEATURE_NAMES
        assert feats[f"op_{s.op}"] == 1.0
        assert sum(feats[f"op_{name}"] for name in OPS) == 1.0
    conv = intrinsic_features(spec, spec.stage("conv1"))
    assert conv["log2_reduction"] == pytest.approx(np.log2(3 * 3 * 16))
    assert conv["muls"] == 144 and conv["loads"] == 288 and conv["bytes_read"] == 4 * 288
    assert (conv["stencil_x"], conv["stencil_y"], conv["stencil_c"]) == (3, 3, 1)
    assert conv["has_update"] == 1 and conv["is_output"] == 0 and conv["n_consumers"] == 1
    out = intrinsic_features(spec, spec.output)
    assert out["is_output"] == 1 and out["n_consumers"] == 0 and out["log2_reduction"] == 0
    assert out["log2_points"] == pytest.approx(np.log2(64 * 64 * 16))
    mat = stage_feature_matrix(spec)
    assert mat.shape == (4, len(FEATURE_NAMES)) and mat.dtype == np.float32
    for name, op_spec in OP_SPECS.items():
        row = stage_feature_matrix(op_spec)[-1]
        assert row[FEATURE_NAMES.index(f"op_{name}")] == 1.0
        assert row[FEATURE_NAMES.index("ndims")] == len(op_spec.output.shape)


def test_reference_is_fast():
    spec = PipelineSpec("mm", *matmul(256), seed=0)
    data = input_data(spec)
    start = time.perf_counter()
    want = reference_output(spec, data)
    assert time.perf_counter() - start < 1.0
    a, b = data["A"].astype(np.float64), data["B"].astype(np.float64)
    # numpy order: A is [rows, k], B is [k, cols]; out[y, x] = sum_k A[y, k] B[k, x]
    assert outputs_match(want, a @ b)


def test_outputs_match_tolerance():
    want = np.full((2, 3), 100.0, dtype=np.float32)
    assert outputs_match(want + 0.05, want)
    assert not outputs_match(want + 1.0, want)
    assert not outputs_match(want[:1], want)


# --------------------------------------------------------------------------- Halide


@pytest.mark.parametrize("op", sorted(OP_SPECS))
def test_op_matches_reference(op):
    spec = OP_SPECS[op]
    assert outputs_match(_run(spec), reference_output(spec))


@pytest.mark.parametrize("op", sorted(OP_SPECS))
def test_op_inline_default_matches_reference(op):
    spec = OP_SPECS[op]
    assert outputs_match(_run(spec, _inline_default), reference_output(spec))


def test_pipeline_inline_default_matches_reference():
    spec = PipelineSpec("rb", *resblock(8, channels=4), seed=9)
    assert outputs_match(_run(spec, _inline_default), reference_output(spec))
    spec = PipelineSpec("b", *blur(40), seed=3)
    assert outputs_match(_run(spec, _inline_default), reference_output(spec))


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_ops_benchmark_smallest_matches_reference(family):
    spec = ops_spec(f"{family.name}-{family.sizes[0]}")
    assert outputs_match(_run(spec), reference_output(spec))


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_dag_matches_reference(seed):
    spec = random_spec(seed)
    assert 1 <= len(spec.stages) <= 30
    assert outputs_match(_run(spec), reference_output(spec))


def test_lowered_structure():
    spec = ops_spec("resblock-64")
    low = lower(spec)
    assert list(low.funcs) == [s.name for s in spec.stages]
    # Halide makes Func names unique per process ("conv1$2" once a "conv1" exists)
    assert low.funcs["conv1"].name().split("$")[0] == "conv1"
    assert [v.name() for v in low.vars["conv1"]] == ["x", "y", "c"]
    assert len(low.rvars["conv1"]) == 3 and low.rvars["relu1"] == []
    assert low.funcs["conv1"].has_update_definition()
    assert not low.funcs["relu1"].has_update_definition()
    assert set(low.params) == {"input", "w1", "w2"}
    assert low.buffers["input"].dim(0).min() == -2  # two stacked 3x3 convs
    assert low.buffers["input"].dim(0).extent() == 68
    assert low.output.name().split("$")[0] == "residual"
    buf = low.output_buffer()
    assert [buf.dim(d).extent() for d in range(3)] == [64, 64, 16]
    assert [buf.dim(d).min() for d in range(3)] == [0, 0, 0]


def test_autoscheduler_runs():
    lib = os.path.join(os.path.dirname(hl.__file__), "lib64", "libautoschedule_adams2019.so")
    hl.load_plugin(lib)
    spec = PipelineSpec("cr", *FAMILIES[1].build(16), seed=11)
    low = lower(spec)
    low.pipeline.apply_autoscheduler(
        hl.get_jit_target_from_environment(),
        hl.AutoschedulerParams("Adams2019", {"parallelism": "1"}),
    )
    buf = low.output_buffer()
    low.realize(buf)
    assert outputs_match(to_numpy(buf), reference_output(spec))


# --------------------------------------------------------------------------- datasets


def test_ops_dataset_splits_and_files():
    ds = HalideOpsDataset()
    assert ds.uri == "benchmark://halide-ops-v0" and not ds.infinite
    test = list(ds.benchmark_names("test"))
    val = list(ds.benchmark_names("validation"))
    assert len(test) == 12 and len(val) == 6 and list(ds.benchmark_names("train")) == []
    assert sorted(test + val) == sorted(ds.benchmark_names())
    for f in FAMILIES:
        assert f"{f.name}-{f.sizes[0]}" in test and f"{f.name}-{f.sizes[2]}" in test
        assert f"{f.name}-{f.sizes[1]}" in val
    uri = f"{ds.uri}/{val[0]}"
    bench = ds.benchmark(uri)
    assert bench.uri == uri and bench.path.name == f"{val[0]}.json"
    assert load_spec(bench) == ops_spec(val[0])
    assert ds.benchmark(uri).sha256 == bench.sha256
    assert ds.license and ds.provenance and ds.description


def test_ops_dataset_unknown_name():
    ds = HalideOpsDataset()
    with pytest.raises(ValueError, match="matmul-"):
        ds.benchmark("benchmark://halide-ops-v0/matmul-7")
    with pytest.raises(ValueError):
        ds.benchmark("benchmark://other-v0/matmul-7")


def test_random_dataset_is_deterministic(tmp_path):
    ds = RandomDagDataset()
    assert ds.uri == "generator://halide-random-v0" and ds.infinite
    assert ds.take("train", 2) == [f"{ds.uri}/2000", f"{ds.uri}/2001"]
    assert ds.take("validation", 1) == [f"{ds.uri}/1000"]
    for seed in (0, 7, 2002):
        first = ds.generate(seed, tmp_path)
        assert ds.generate(seed, tmp_path) == first
        assert first == random_spec(seed).to_json().encode()
    bench = ds.benchmark(f"{ds.uri}/7")
    assert bench.read_bytes() == ds.generate(7, tmp_path)
    assert load_spec(bench) == random_spec(7)
    assert ds.generate(0, tmp_path) != ds.generate(1, tmp_path)


def test_random_dags_are_varied():
    specs = [random_spec(s) for s in range(40)]
    sizes = [len(s.stages) for s in specs]
    assert min(sizes) == 1 and max(sizes) > 15
    ops = {st.op for s in specs for st in s.stages}
    assert ops == set(OPS) - {"matmul"}
    assert any(len(s.consumers(st.name)) > 1 for s in specs for st in s.stages)


def test_registered():
    from optgym.datasets import all_datasets

    uris = {d.uri for d in problems()["schedule-search"].datasets()}
    assert uris == {"benchmark://halide-ops-v0", "generator://halide-random-v0"}
    registry = all_datasets()
    assert all(u in registry for u in uris)
