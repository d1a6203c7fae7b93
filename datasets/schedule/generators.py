"""Halide pipeline datasets: fixed operator benchmarks and seeded random operator DAGs.

``benchmark://halide-ops-v0/<name>`` holds named pipelines (matmul, conv2d + relu,
depthwise + relu, max pooling, a residual block, a separable blur), each at three sizes;
``generator://halide-random-v0/<seed>`` draws a small network of 1 to 30 operators per seed.
A benchmark's file is its :class:`~optgym.datasets.schedule.spec.PipelineSpec` as canonical JSON.

Naive-schedule times (every stage ``compute_root()``, ``HL_NUM_THREADS=1``, measured on the
2-core x86-64 development machine): ``halide-ops-v0`` from 2 ms (maxpool-512) to 72 ms
(conv2d-relu-192); ``halide-random-v0`` about 0.5 to 40 ms (seeds 0-39).

Reproducibility: the random generator uses ``numpy.random.default_rng(seed)`` and only its
``random`` stream (no distribution that goes through the C library's ``log``/``exp``), with
IEEE-exact arithmetic, so a seed gives the same bytes on any machine.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optgym.datasets.dataset import Benchmark, Dataset
from optgym.datasets.schedule.ops import naive_work
from optgym.datasets.schedule.spec import MAX_SPEC_BYTES, InputTensor, PipelineSpec, Stage
from optgym.datasets.seeded import SeededDataset

LICENSE = "MIT (OptGym); generated"
OPS_NAME = "halide-ops-v0"
RANDOM_NAME = "halide-random-v0"


def load_spec(benchmark: Benchmark) -> PipelineSpec:
    """The pipeline a Halide benchmark's file holds; ``ValueError`` naming the file and the
    field or limit when it is not a valid spec (see :mod:`~optgym.datasets.schedule.spec`)."""
    what = f"pipeline spec {benchmark.path} (from {benchmark.uri})"
    try:
        size = benchmark.path.stat().st_size
    except OSError as e:
        raise ValueError(f"cannot read {what}: {e.strerror}") from None
    if size > MAX_SPEC_BYTES:  # checked before reading: a huge file is refused unread
        raise ValueError(
            f"{what} is {size} bytes; the limit for a pipeline spec is {MAX_SPEC_BYTES}"
        )
    return PipelineSpec.from_json(benchmark.read_bytes(), what)


# --------------------------------------------------------------------------- fixed benchmarks


def _stage(name: str, op: str, inputs: tuple[str, ...], shape: tuple[int, ...], **params: int):
    return Stage(name, op, inputs, shape, tuple(params.items()))


def matmul(n: int) -> tuple[tuple[InputTensor, ...], tuple[Stage, ...]]:
    """``n x n`` times ``n x n``."""
    ins = (InputTensor("A", (n, n)), InputTensor("B", (n, n)))
    return ins, (_stage("matmul", "matmul", ("A", "B"), (n, n), k=n),)


def conv2d_relu(n: int, channels: int = 16, k: int = 3) -> tuple:
    """A ``k x k`` convolution, ``channels`` to ``channels``, on ``n x n``, then relu."""
    shape = (n, n, channels)
    ins = (InputTensor("input", shape), InputTensor("weights", (k, k, channels, channels)))
    return ins, (
        _stage("conv", "conv2d", ("input", "weights"), shape, k=k, cin=channels),
        _stage("relu", "relu", ("conv",), shape),
    )


def depthwise_relu(n: int, channels: int = 32, k: int = 3) -> tuple:
    """A ``k x k`` depthwise convolution on ``n x n x channels``, then relu."""
    shape = (n, n, channels)
    ins = (InputTensor("input", shape), InputTensor("weights", (k, k, channels)))
    return ins, (
        _stage("depthwise", "depthwise", ("input", "weights"), shape, k=k),
        _stage("relu", "relu", ("depthwise",), shape),
    )


def maxpool(n: int, channels: int = 16) -> tuple:
    """2x2 max pooling of ``n x n x channels``."""
    ins = (InputTensor("input", (n, n, channels)),)
    return ins, (_stage("pool", "maxpool", ("input",), (n // 2, n // 2, channels)),)


def resblock(n: int, channels: int = 16, k: int = 3) -> tuple:
    """conv, relu, conv, add the block's input (a ResNet basic block without batch norm)."""
    shape = (n, n, channels)
    wshape = (k, k, channels, channels)
    ins = (InputTensor("input", shape), InputTensor("w1", wshape), InputTensor("w2", wshape))
    return ins, (
        _stage("conv1", "conv2d", ("input", "w1"), shape, k=k, cin=channels),
        _stage("relu1", "relu", ("conv1",), shape),
        _stage("conv2", "conv2d", ("relu1", "w2"), shape, k=k, cin=channels),
        _stage("residual", "add", ("conv2", "input"), shape),
    )


def blur(n: int, channels: int = 3) -> tuple:
    """The separable 3x3 box blur: blur_x then blur_y on ``n x n x channels``."""
    shape = (n, n, channels)
    ins = (InputTensor("input", shape),)
    return ins, (
        _stage("blur_x", "blur_x", ("input",), shape),
        _stage("blur_y", "blur_y", ("blur_x",), shape),
    )


@dataclass(frozen=True)
class Family:
    """A fixed pipeline at three sizes (index 0 and 2 are test, 1 is validation)."""

    name: str
    build: Callable[[int], tuple]
    sizes: tuple[int, int, int]
    what: str


FAMILIES: tuple[Family, ...] = (
    Family("matmul", matmul, (192, 256, 384), "n x n matrix product, k = n"),
    Family("conv2d-relu", conv2d_relu, (96, 128, 192), "3x3 conv2d 16 -> 16 channels + relu"),
    Family("depthwise-relu", depthwise_relu, (256, 384, 512), "3x3 depthwise conv, 32 ch + relu"),
    Family("maxpool", maxpool, (512, 768, 1024), "2x2 stride-2 max pooling, 16 channels"),
    Family("resblock", resblock, (64, 96, 128), "conv3x3-relu-conv3x3-add, 16 channels"),
    Family("blur", blur, (1024, 1536, 2048), "separable 3x3 box blur, 3 channels"),
)


def ops_benchmark_names(split: str | None = None) -> list[str]:
    """Names of ``halide-ops-v0`` in ``split`` (all when None); families in order, sizes
    ascending."""
    picks = {None: (0, 1, 2), "test": (0, 2), "validation": (1,), "train": ()}[split]
    return [f"{f.name}-{f.sizes[i]}" for f in FAMILIES for i in picks]


def ops_spec(name: str) -> PipelineSpec:
    """The ``halide-ops-v0`` pipeline called ``name``; its seed is the CRC-32 of the name."""
    for f in FAMILIES:
        for n in f.sizes:
            if name == f"{f.name}-{n}":
                inputs, stages = f.build(n)
                return PipelineSpec(name, inputs, stages, seed=zlib.crc32(name.encode()))
    allowed = ", ".join(ops_benchmark_names())
    raise ValueError(f"unknown benchmark {name!r} in {OPS_NAME}; allowed: {allowed}")


class HalideOpsDataset(Dataset):
    """``benchmark://halide-ops-v0/<family>-<size>``: fixed operator pipelines."""

    name = OPS_NAME
    description = (
        "Fixed Halide pipelines of common tensor operators, each at three sizes: "
        + "; ".join(f"{f.name}-<n> ({f.what}), n in {f.sizes}" for f in FAMILIES)
        + ". Splits: the smallest and largest size of each are test, the middle one "
        "validation; train is empty (train on halide-random-v0)."
    )
    license = LICENSE
    provenance = (
        "Written by optgym.datasets.schedule.generators.ops_spec: each file is the "
        "PipelineSpec's canonical JSON (PipelineSpec.to_json). Operators are those of "
        "optgym.datasets.schedule.ops (float32, centred 'same' stencils, inputs cover the "
        "required region). Input data: numpy.random.default_rng(seed).random(float32) "
        "* 2 - 1 per input in spec order, seed = zlib.crc32(name). The naive schedule "
        "(all stages compute_root, HL_NUM_THREADS=1) runs in about 2-75 ms on one "
        "x86-64 core."
    )

    def benchmark_names(self, split: str | None = None) -> list[str]:
        return ops_benchmark_names(split)

    def benchmark(self, uri: str) -> Benchmark:
        name = self.check_uri(uri).path
        return self.stored_benchmark(uri, name, ops_spec(name).to_json().encode(), ".json")


# --------------------------------------------------------------------------- random DAGs

MAX_OPS = 30
CHANNELS = (4, 8, 12, 16)
SPATIAL = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
MAX_POOLS = 2
#: op -> weight of drawing it (an ``add`` needs an earlier tensor of the current one's shape,
#: a ``maxpool`` fewer than :data:`MAX_POOLS` earlier pools; otherwise it is not drawable)
OP_WEIGHTS = {
    "conv2d": 3,
    "depthwise": 2,
    "relu": 2,
    "add": 2,
    "maxpool": 1,
    "blur_x": 1,
    "blur_y": 1,
}
CONV_KERNELS = (1, 3, 3, 5)
DEPTHWISE_KERNELS = (3, 5)
#: naive-schedule work window (see :func:`naive_work`) the spatial size is fitted to
WORK_RANGE = (1.0e7, 1.5e8)


def _choice(rng: np.random.Generator, items: tuple | list):
    return items[int(rng.random() * len(items))]


def _weighted(rng: np.random.Generator, weights: dict[str, int]) -> str:
    total = sum(weights.values())
    u = rng.random() * total
    for key, w in weights.items():
        if u < w:
            return key
        u -= w
    return key


def random_spec(seed: int) -> PipelineSpec:
    """The ``halide-random-v0`` pipeline for ``seed`` (see :class:`RandomDagDataset`)."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed {seed} is out of range; allowed: 0 <= seed < 2**32")
    rng = np.random.default_rng(seed)
    u = rng.random()
    n_ops = 1 + int(MAX_OPS * u * math.sqrt(u))  # P(1) ~ 10%, median ~ 10
    # tensors: name -> (pool level, channels); the graph is a chain through ``current`` with
    # ``add`` stages joining an earlier same-shape tensor (skip connections).
    tensors: dict[str, tuple[int, int]] = {"input": (0, _choice(rng, CHANNELS))}
    current = "input"
    plan: list[tuple[str, str, tuple[str, ...], dict[str, int]]] = []
    for i in range(n_ops):
        level, ch = tensors[current]
        partners = [t for t, lc in tensors.items() if t != current and lc == (level, ch)]
        weights = dict(OP_WEIGHTS)
        if not partners:
            del weights["add"]
        if level >= MAX_POOLS:
            del weights["maxpool"]
        op = _weighted(rng, weights)
        name = f"{op}{i}"
        params: dict[str, int] = {}
        inputs: tuple[str, ...] = (current,)
        out = (level, ch)
        if op == "conv2d":
            params = {"k": _choice(rng, CONV_KERNELS), "cin": ch}
            out = (level, _choice(rng, CHANNELS))
            inputs = (current, f"w_{name}")
        elif op == "depthwise":
            params = {"k": _choice(rng, DEPTHWISE_KERNELS)}
            inputs = (current, f"w_{name}")
        elif op == "add":
            inputs = (current, _choice(rng, partners))
        elif op == "maxpool":
            out = (level + 1, ch)
        plan.append((name, op, inputs, params))
        tensors[name] = out
        current = name

    def build(width: int, height: int) -> PipelineSpec:
        def shape(t: str) -> tuple[int, int, int]:
            level, ch = tensors[t]
            return (width >> level, height >> level, ch)

        inputs = [InputTensor("input", shape("input"))]
        stages = []
        for name, op, ins, params in plan:
            if op == "conv2d":
                k, cin, cout = params["k"], params["cin"], tensors[name][1]
                inputs.append(InputTensor(ins[1], (k, k, cin, cout)))
            elif op == "depthwise":
                k = params["k"]
                inputs.append(InputTensor(ins[1], (k, k, tensors[name][1])))
            stages.append(Stage(name, op, ins, shape(name), tuple(params.items())))
        return PipelineSpec(f"{RANDOM_NAME}/{seed}", tuple(inputs), tuple(stages), seed)

    # Fit the spatial size: the pairs whose naive work lies in WORK_RANGE, else the closest.
    lo, hi = WORK_RANGE
    unit = naive_work(build(64, 64)) / (64 * 64)
    pairs = [(w, h) for w in SPATIAL for h in SPATIAL if 2 * w >= h and 2 * h >= w]
    fit = [p for p in pairs if lo <= unit * p[0] * p[1] <= hi]
    if not fit:
        mid = math.sqrt(lo * hi)
        fit = [min(pairs, key=lambda p: max(unit * p[0] * p[1] / mid, mid / (unit * p[0] * p[1])))]
    return build(*_choice(rng, fit))


class RandomDagDataset(SeededDataset):
    """``generator://halide-random-v0/<seed>``: a random operator network per seed."""

    suffix = ".json"
    recipe_modules = ("optgym.datasets.schedule.ops", "optgym.datasets.schedule.spec")

    name = RANDOM_NAME
    description = (
        f"Seeded random networks of 1 to {MAX_OPS} float32 tensor operators (conv2d, "
        "depthwise conv, relu, add, 2x2 max pooling, blur_x, blur_y) on one "
        "(x, y, c) input, sized so that the naive schedule runs in about 1-40 ms."
    )
    license = LICENSE
    provenance = (
        "optgym.datasets.schedule.generators.random_spec(seed), written as canonical "
        "PipelineSpec JSON. rng = numpy.random.default_rng(seed), random() stream only; "
        "choice(items) = items[int(random() * len(items))]. n_ops = 1 + int(30 * u * "
        f"sqrt(u)) with u the first random(). The input has channels in {CHANNELS}. "
        f"Each op is drawn with weights {OP_WEIGHTS} "
        "(add only when an earlier tensor has the current one's shape, maxpool at most "
        f"{MAX_POOLS} times) and applied to the previous stage's output (a chain); "
        f"conv2d: k in {CONV_KERNELS}, cout in {CHANNELS}, own weights input; depthwise: "
        f"k in {DEPTHWISE_KERNELS}; add: the chain with a uniformly chosen earlier "
        "same-shape tensor. Spatial size (w, h): drawn uniformly among the pairs of "
        f"{SPATIAL} with aspect ratio at most 2 whose naive_work lies in {WORK_RANGE} "
        "(else the pair closest to that range in log scale). Seeds: test [0, 1000), "
        "validation [1000, 2000), train [2000, 2**32). The spec's data seed is the "
        "dataset seed (input_data: default_rng(seed).random(float32) * 2 - 1 per input "
        "in spec order, over its required region)."
    )

    def generate(self, seed: int, workdir: Path) -> bytes:
        return random_spec(seed).to_json().encode()
