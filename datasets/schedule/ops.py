"""The operator library: for every op its numpy reference, its Halide definition, how it reads
its inputs (:class:`Access`), its arithmetic per output point, and the pipeline-level helpers
built on them (required regions, input data, reference output, stage features).

All tensors are float32. Coordinates are in Halide order ``(x, y, c)``; a numpy array of a
tensor is indexed ``[c, y, x]``. Inside this module arrays are kept as Halide-order *views*
(``array.T``) together with the Halide coordinates of their first element.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import halide as hl

    from optgym.datasets.schedule.spec import PipelineSpec, Stage

Box = list[tuple[int, int]]  # per dim (min, extent), Halide order
Tensor = tuple[np.ndarray, tuple[int, ...]]  # Halide-order array view and its per-dim mins

THIRD = 1.0 / 3.0  # the blur weight; float32(1/3) in numpy and in Halide alike


@dataclass(frozen=True)
class Access:
    """How one producer dim is read: ``p = scale * c[consumer_dim] + [lo, hi]`` (inclusive),
    or, when ``consumer_dim == -1``, the constant interval ``[lo, hi]`` (``scale`` unused)."""

    consumer_dim: int
    scale: int
    lo: int
    hi: int

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1


@dataclass(frozen=True)
class Counts:
    """Work per output point (the update's per-iteration work times the reduction size)."""

    adds: float = 0.0
    muls: float = 0.0
    minmax: float = 0.0
    other: float = 0.0
    loads: float = 0.0


def _point(dims: int, consumer_dims: range | None = None) -> list[Access]:
    """The pointwise access: producer dim d read at consumer coordinate d."""
    dims_iter = range(dims) if consumer_dims is None else consumer_dims
    return [Access(d, 1, 0, 0) for d in dims_iter]


def _const(lo: int, hi: int) -> Access:
    return Access(-1, 0, lo, hi)


def _window(t: Tensor, box: Box, taps: list[tuple[int, int, int]]) -> np.ndarray:
    """A strided view of ``t`` for a consumer ``box``; per producer dim a tap
    ``(consumer_dim, scale, offset)`` reads ``scale * c + offset`` over the box, and
    ``(-1, lo, hi)`` reads the constant range ``[lo, hi]``."""
    arr, mins = t
    index = []
    for d, (cd, a, b) in enumerate(taps):
        if cd < 0:
            start, stop, step = a - mins[d], b - mins[d] + 1, 1
        else:
            m, e = box[cd]
            start = a * m + b - mins[d]
            stop, step = start + a * (e - 1) + 1, a
        if start < 0 or stop > arr.shape[d]:
            raise ValueError(f"window {taps} of {box} leaves the tensor (dim {d})")
        index.append(slice(start, stop, step))
    return arr[tuple(index)]


def _zeros(box: Box) -> np.ndarray:
    """A Halide-order float32 zero array over ``box`` whose memory is in numpy order (x
    fastest), the layout every input and result has, so that numpy streams through it."""
    return np.zeros([e for _, e in reversed(box)], dtype=np.float32).T


def _same(t: Tensor, box: Box, shifts: dict[int, int] | None = None) -> np.ndarray:
    """The pointwise view of ``t`` over ``box``, shifted by ``shifts[d]`` along dim d."""
    shifts = shifts or {}
    return _window(t, box, [(d, 1, shifts.get(d, 0)) for d in range(len(box))])


class Op(ABC):
    """One operator: shapes, accesses, work, numpy reference and Halide definition."""

    name: str = ""
    arity: int = 1
    params: tuple[str, ...] = ()
    has_update: bool = False
    doc: str = ""

    def check(self, spec: PipelineSpec, stage: Stage) -> None:
        """``ValueError`` unless the stage's inputs, params and shapes suit this op."""
        if len(stage.inputs) != self.arity:
            raise ValueError(
                f"stage {stage.name!r}: {self.name} takes {self.arity} inputs, "
                f"got {len(stage.inputs)}"
            )
        keys = tuple(sorted(k for k, _ in stage.params))
        if keys != tuple(sorted(self.params)):
            raise ValueError(
                f"stage {stage.name!r}: {self.name} takes params {list(self.params)}, "
                f"got {list(keys)}"
            )
        for k, v in stage.params:
            if v < 1:
                raise ValueError(f"stage {stage.name!r}: param {k} must be >= 1, got {v}")
        want = self.expected_shapes(stage, [spec.shape_of(i) for i in stage.inputs])
        for name, got, exp in zip(
            (*stage.inputs, stage.name),
            (*(spec.shape_of(i) for i in stage.inputs), stage.shape),
            want,
            strict=True,
        ):
            if exp is not None and tuple(got) != tuple(exp):
                raise ValueError(
                    f"stage {stage.name!r} ({self.name}): {name!r} has shape {tuple(got)}, "
                    f"expected {tuple(exp)}"
                )

    @abstractmethod
    def expected_shapes(
        self, stage: Stage, in_shapes: list[tuple[int, ...]]
    ) -> list[tuple[int, ...] | None]:
        """The shape every input and then the output must have (None: anything)."""

    @abstractmethod
    def accesses(self, stage: Stage, in_shapes: list[tuple[int, ...]]) -> list[list[Access]]:
        """Per input, one :class:`Access` per producer dim."""

    def reduction_size(self, stage: Stage) -> int:
        """The number of iterations of the update's RDom (0 without an update)."""
        return math.prod(self.reduction_extents(stage)) if self.reduction_extents(stage) else 0

    def reduction_extents(self, stage: Stage) -> tuple[int, ...]:
        """The extents of the update's RDom, one per RVar in order (empty without one)."""
        return ()

    @abstractmethod
    def counts(self, stage: Stage) -> Counts:
        """Arithmetic and loads per output point."""

    @abstractmethod
    def numpy(self, stage: Stage, box: Box, ins: list[Tensor]) -> np.ndarray:
        """The stage over ``box`` as a Halide-order float32 array."""

    @abstractmethod
    def halide(self, stage: Stage, f: hl.Func, v: list[hl.Var], ins: list[Any]) -> list[hl.RVar]:
        """Define ``f`` (pure, plus at most one update); return the update's RVars."""


def _dims_check(stage: Stage, what: str, shape: tuple[int, ...], allowed: tuple[int, ...]) -> None:
    if len(shape) not in allowed:
        raise ValueError(
            f"stage {stage.name!r} ({stage.op}): {what} has {len(shape)} dims, "
            f"allowed: {', '.join(map(str, allowed))}"
        )


def _odd_kernel(stage: Stage, op: str) -> int:
    """The kernel size ``k`` of a centred ``k x k`` stencil ``op`` (conv2d, depthwise) over a
    3-dim output; ``ValueError`` for another output rank or an even ``k``."""
    _dims_check(stage, "the output", stage.shape, (3,))
    k = stage.param("k")
    if k % 2 == 0:
        raise ValueError(f"stage {stage.name!r}: {op} needs an odd kernel size, got {k}")
    return k


class Pointwise(Op):
    """Elementwise ops over 1 to 3 dims; every input has the output's shape."""

    def expected_shapes(
        self, stage: Stage, in_shapes: list[tuple[int, ...]]
    ) -> list[tuple[int, ...] | None]:
        return [stage.shape] * (self.arity + 1)

    def accesses(self, stage: Stage, in_shapes: list[tuple[int, ...]]) -> list[list[Access]]:
        return [_point(len(stage.shape)) for _ in range(self.arity)]


class Relu(Pointwise):
    name = "relu"
    doc = "max(in, 0)"

    def counts(self, stage: Stage) -> Counts:
        return Counts(minmax=1, loads=1)

    def numpy(self, stage: Stage, box: Box, ins: list[Tensor]) -> np.ndarray:
        return np.maximum(_same(ins[0], box), np.float32(0))

    def halide(self, stage: Stage, f: hl.Func, v: list[hl.Var], ins: list[Any]) -> list[hl.RVar]:
        import halide as hl

        f[v] = hl.max(ins[0][v], hl.f32(0))
        return []


class Add(Pointwise):
    name = "add"
    arity = 2
    doc = "a + b (same shapes)"

    def counts(self, stage: Stage) -> Counts:
        return Counts(adds=1, loads=2)

    def numpy(self, stage: Stage, box: Box, ins: list[Tensor]) -> np.ndarray:
        return _same(ins[0], box) + _same(ins[1], box)

    def halide(self, stage: Stage, f: hl.Func, v: list[hl.Var], ins: list[Any]) -> list[hl.RVar]:
        f[v] = ins[0][v] + ins[1][v]
        return []


class Blur(Op):
    """A centred 3-tap box filter along one dim: (in[d-1] + in[d] + in[d+1]) * (1/3)."""

    dim = 0

    def expected_shapes(
        self, stage: Stage, in_shapes: list[tuple[int, ...]]
    ) -> list[tuple[int, ...] | None]:
        _dims_check(stage, "the output", stage.shape, tuple(range(self.dim + 1, 4)))
        return [stage.shape, stage.shape]

    def accesses(self, stage: Stage, in_shapes: list[tuple[int, ...]]) -> list[list[Access]]:
        acc = _point(len(stage.shape))
        acc[self.dim] = Access(self.dim, 1, -1, 1)
        return [acc]

    def counts(self, stage: Stage) -> Counts:
        return Counts(adds=2, muls=1, loads=3)

    def numpy(self, stage: Stage, box: Box, ins: list[Tensor]) -> np.ndarray:
        t = ins[0]
        total = _same(t, box, {self.dim: -1}) + _same(t, box) + _same(t, box, {self.dim: 1})
        return total * np.float32(THIRD)

    def halide(self, stage: Stage, f: hl.Func, v: list[hl.Var], ins: list[Any]) -> list[hl.RVar]:
        import halide as hl

        def at(shift: int) -> Any:
            args = list(v)
            args[self.dim] = v[self.dim] + shift
            return ins[0][args]

        f[v] = (at(-1) + at(0) + at(1)) * hl.f32(THIRD)
        return []


class BlurX(Blur):
    name = "blur_x"
    dim = 0
    doc = "(in(x-1) + in(x) + in(x+1)) / 3"


class BlurY(Blur):
    name = "blur_y"
    dim = 1
    doc = "(in(y-1) + in(y) + in(y+1)) / 3"


class MaxPool(Op):
    name = "maxpool"
    doc = "2x2 max pooling, stride 2, over x and y: max of in(2x+i, 2y+j) for i, j in {0, 1}"

    def expected_shapes(
        self, stage: Stage, in_shapes: list[tuple[int, ...]]
    ) -> list[tuple[int, ...] | None]:
        _dims_check(stage, "the input", in_shapes[0], (2, 3))
        s = in_shapes[0]
        return [None, (s[0] // 2, s[1] // 2, *s[2:])]

    def accesses(self, stage: Stage, in_shapes: list[tuple[int, ...]]) -> list[list[Access]]:
        acc = [Access(0, 2, 0, 1), Access(1, 2, 0, 1)]
        return [acc + _point(3, range(2, len(stage.shape)))]

    def counts(self, stage: Stage) -> Counts:
        return Counts(minmax=3, loads=4)

    def numpy(self, stage: Stage, box: Box, ins: list[Tensor]) -> np.ndarray:
        rest = [(d, 1, 0) for d in range(2, len(box))]
        taps = [_window(ins[0], box, [(0, 2, i), (1, 2, j), *rest]) for j in (0, 1) for i in (0, 1)]
        return np.maximum(np.maximum(taps[0], taps[1]), np.maximum(taps[2], taps[3]))

    def halide(self, stage: Stage, f: hl.Func, v: list[hl.Var], ins: list[Any]) -> list[hl.RVar]:
        import halide as hl

        rest = list(v[2:])
        x2, y2 = 2 * v[0], 2 * v[1]
        a = [ins[0][[x2 + i, y2 + j, *rest]] for j in (0, 1) for i in (0, 1)]
        f[v] = hl.max(hl.max(a[0], a[1]), hl.max(a[2], a[3]))
        return []


class MatMul(Op):
    name = "matmul"
    arity = 2
    params = ("k",)
    has_update = True
    doc = "out(x, y) = sum_k A(k, y) * B(x, k); A is (k, rows), B is (cols, k)"

    def expected_shapes(
        self, stage: Stage, in_shapes: list[tuple[int, ...]]
    ) -> list[tuple[int, ...] | None]:
        _dims_check(stage, "the output", stage.shape, (2,))
        k = stage.param("k")
        cols, rows = stage.shape
        return [(k, rows), (cols, k), (cols, rows)]

    def accesses(self, stage: Stage, in_shapes: list[tuple[int, ...]]) -> list[list[Access]]:
        k = stage.param("k")
        return [
            [_const(0, k - 1), Access(1, 1, 0, 0)],
            [Access(0, 1, 0, 0), _const(0, k - 1)],
        ]

    def reduction_extents(self, stage: Stage) -> tuple[int, ...]:
        return (stage.param("k"),)

    def counts(self, stage: Stage) -> Counts:
        k = stage.param("k")
        return Counts(adds=k, muls=k, loads=2 * k)

    def numpy(self, stage: Stage, box: Box, ins: list[Tensor]) -> np.ndarray:
        k = stage.param("k")
        a = _window(ins[0], box, [(-1, 0, k - 1), (1, 1, 0)])  # (k, rows)
        b = _window(ins[1], box, [(0, 1, 0), (-1, 0, k - 1)])  # (cols, k)
        return np.matmul(a.T, b.T).T  # computed in numpy order: C-contiguous (rows, cols)

    def halide(self, stage: Stage, f: hl.Func, v: list[hl.Var], ins: list[Any]) -> list[hl.RVar]:
        import halide as hl

        r = hl.RDom([hl.Range(0, stage.param("k"))], f"r_{stage.name}")
        x, y = v
        f[x, y] = hl.f32(0)
        f[x, y] = f[x, y] + ins[0][r.x, y] * ins[1][x, r.x]
        return [r.x]


class Conv2d(Op):
    name = "conv2d"
    arity = 2
    params = ("cin", "k")
    has_update = True
    doc = (
        "out(x, y, c) = sum_{rx, ry, rc} in(x + rx - k//2, y + ry - k//2, rc) * w(rx, ry, rc, c); "
        "in is (W, H, cin), w is (k, k, cin, cout), out is (W, H, cout); k odd"
    )

    def expected_shapes(
        self, stage: Stage, in_shapes: list[tuple[int, ...]]
    ) -> list[tuple[int, ...] | None]:
        k, cin = _odd_kernel(stage, self.name), stage.param("cin")
        w, h, cout = stage.shape
        return [(w, h, cin), (k, k, cin, cout), stage.shape]

    def accesses(self, stage: Stage, in_shapes: list[tuple[int, ...]]) -> list[list[Access]]:
        k, cin = stage.param("k"), stage.param("cin")
        r = k // 2
        return [
            [Access(0, 1, -r, k - 1 - r), Access(1, 1, -r, k - 1 - r), _const(0, cin - 1)],
            [_const(0, k - 1), _const(0, k - 1), _const(0, cin - 1), Access(2, 1, 0, 0)],
        ]

    def reduction_extents(self, stage: Stage) -> tuple[int, ...]:
        return (stage.param("k"), stage.param("k"), stage.param("cin"))

    def counts(self, stage: Stage) -> Counts:
        n = self.reduction_size(stage)
        return Counts(adds=n, muls=n, loads=2 * n)

    def numpy(self, stage: Stage, box: Box, ins: list[Tensor]) -> np.ndarray:
        k, cin = stage.param("k"), stage.param("cin")
        r = k // 2
        acc = _zeros(box).T  # numpy order [cout, y, x]
        for rx in range(k):
            for ry in range(k):
                patch = _window(ins[0], box, [(0, 1, rx - r), (1, 1, ry - r), (-1, 0, cin - 1)])
                w = _window(ins[1], box, [(-1, rx, rx), (-1, ry, ry), (-1, 0, cin - 1), (2, 1, 0)])
                acc += np.tensordot(w[0, 0].T, patch.T, axes=1)  # sum over cin
        return acc.T

    def halide(self, stage: Stage, f: hl.Func, v: list[hl.Var], ins: list[Any]) -> list[hl.RVar]:
        import halide as hl

        k, cin = stage.param("k"), stage.param("cin")
        r = k // 2
        rd = hl.RDom([hl.Range(0, k), hl.Range(0, k), hl.Range(0, cin)], f"r_{stage.name}")
        x, y, c = v
        f[x, y, c] = hl.f32(0)
        f[x, y, c] = (
            f[x, y, c] + ins[0][x + rd.x - r, y + rd.y - r, rd.z] * ins[1][rd.x, rd.y, rd.z, c]
        )
        return [rd.x, rd.y, rd.z]


class Depthwise(Op):
    name = "depthwise"
    arity = 2
    params = ("k",)
    has_update = True
    doc = (
        "out(x, y, c) = sum_{rx, ry} in(x + rx - k//2, y + ry - k//2, c) * w(rx, ry, c); "
        "in and out are (W, H, C), w is (k, k, C); k odd"
    )

    def expected_shapes(
        self, stage: Stage, in_shapes: list[tuple[int, ...]]
    ) -> list[tuple[int, ...] | None]:
        k = _odd_kernel(stage, self.name)
        return [stage.shape, (k, k, stage.shape[2]), stage.shape]

    def accesses(self, stage: Stage, in_shapes: list[tuple[int, ...]]) -> list[list[Access]]:
        k = stage.param("k")
        r = k // 2
        return [
            [Access(0, 1, -r, k - 1 - r), Access(1, 1, -r, k - 1 - r), Access(2, 1, 0, 0)],
            [_const(0, k - 1), _const(0, k - 1), Access(2, 1, 0, 0)],
        ]

    def reduction_extents(self, stage: Stage) -> tuple[int, ...]:
        return (stage.param("k"), stage.param("k"))

    def counts(self, stage: Stage) -> Counts:
        n = self.reduction_size(stage)
        return Counts(adds=n, muls=n, loads=2 * n)

    def numpy(self, stage: Stage, box: Box, ins: list[Tensor]) -> np.ndarray:
        k = stage.param("k")
        r = k // 2
        out = _zeros(box)
        for rx in range(k):
            for ry in range(k):
                patch = _window(ins[0], box, [(0, 1, rx - r), (1, 1, ry - r), (2, 1, 0)])
                w = _window(ins[1], box, [(-1, rx, rx), (-1, ry, ry), (2, 1, 0)])
                out += patch * w[0, 0][None, None, :]
        return out

    def halide(self, stage: Stage, f: hl.Func, v: list[hl.Var], ins: list[Any]) -> list[hl.RVar]:
        import halide as hl

        k = stage.param("k")
        r = k // 2
        rd = hl.RDom([hl.Range(0, k), hl.Range(0, k)], f"r_{stage.name}")
        x, y, c = v
        f[x, y, c] = hl.f32(0)
        f[x, y, c] = f[x, y, c] + ins[0][x + rd.x - r, y + rd.y - r, c] * ins[1][rd.x, rd.y, c]
        return [rd.x, rd.y]


OPS: dict[str, Op] = {
    op.name: op
    for op in (MatMul(), Conv2d(), Depthwise(), Relu(), Add(), MaxPool(), BlurX(), BlurY())
}


# --------------------------------------------------------------------------- pipeline level


def accesses(spec: PipelineSpec, stage: Stage) -> dict[str, list[Access]]:
    """Input name -> one :class:`Access` per producer dim, for ``stage``."""
    op = OPS[stage.op]
    per_input = op.accesses(stage, [spec.shape_of(i) for i in stage.inputs])
    return dict(zip(stage.inputs, per_input, strict=True))


def required_regions(spec: PipelineSpec) -> dict[str, Box]:
    """Name -> per-dim ``(min, extent)`` that computing the output needs, for every input and
    stage: the output's own shape (mins 0), then, walking the stages backward, the union
    (bounding box) of each consumer's box mapped through its accesses."""
    lo_hi: dict[str, list[list[int]]] = {spec.output.name: [[0, e - 1] for e in spec.output.shape]}
    for stage in reversed(spec.stages):
        box = lo_hi[stage.name]
        for name, accs in accesses(spec, stage).items():
            need = []
            for a in accs:
                if a.consumer_dim < 0:
                    need.append([a.lo, a.hi])
                else:
                    m, mx = box[a.consumer_dim]
                    need.append([a.scale * m + a.lo, a.scale * mx + a.hi])
            if name in lo_hi:
                old = lo_hi[name]
                lo_hi[name] = [
                    [min(o[0], n[0]), max(o[1], n[1])] for o, n in zip(old, need, strict=True)
                ]
            else:
                lo_hi[name] = need
    order = [t.name for t in spec.inputs] + [s.name for s in spec.stages]
    return {n: [(lo, hi - lo + 1) for lo, hi in lo_hi[n]] for n in order}


def naive_work(spec: PipelineSpec) -> float:
    """A rough cost of the naive schedule: per stage, the points of its required region times
    its arithmetic and loads per point, summed (the unit is about one scalar operation)."""
    regions = required_regions(spec)
    total = 0.0
    for s in spec.stages:
        c = OPS[s.op].counts(s)
        points = math.prod(e for _, e in regions[s.name])
        total += points * (c.adds + c.muls + c.minmax + c.other + c.loads)
    return total



def input_data(spec: PipelineSpec) -> dict[str, np.ndarray]:
    """Every input's data (numpy order, shape = reversed required-region extents), uniform in
    [-1, 1) float32 from ``numpy.random.default_rng(spec.seed)``, drawn in input order."""
    regions = required_regions(spec)
    rng = np.random.default_rng(spec.seed)
    data = {}
    for t in spec.inputs:
        shape = tuple(e for _, e in reversed(regions[t.name]))
        data[t.name] = rng.random(shape, dtype=np.float32) * np.float32(2) - np.float32(1)
    return data


def _evaluate(spec: PipelineSpec, data: dict[str, np.ndarray] | None, keep: bool) -> dict:
    """Halide-order values of the stages (all if ``keep``, else only the output's)."""
    regions = required_regions(spec)
    data = input_data(spec) if data is None else data
    values: dict[str, Tensor] = {}
    for t in spec.inputs:
        arr = np.asarray(data[t.name], dtype=np.float32)
        want = tuple(e for _, e in reversed(regions[t.name]))
        if arr.shape != want:
            raise ValueError(f"input {t.name!r} has numpy shape {arr.shape}, expected {want}")
        values[t.name] = (arr.T, tuple(m for m, _ in regions[t.name]))
    last_use = {i: n for n, s in enumerate(spec.stages) for i in s.inputs}
    for n, s in enumerate(spec.stages):
        box = regions[s.name]
        out = OPS[s.op].numpy(s, box, [values[i] for i in s.inputs]).astype(np.float32, copy=False)
        if out.shape != tuple(e for _, e in box):
            raise AssertionError(f"{s.op} made shape {out.shape} for box {box}")
        values[s.name] = (out, tuple(m for m, _ in box))
        if not keep:  # free what no later stage reads
            for i in s.inputs:
                if last_use[i] == n and i not in data:
                    del values[i]
    return values


def evaluate(
    spec: PipelineSpec, data: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Every stage over its required region, with numpy only: name -> numpy-order float32."""
    values = _evaluate(spec, data, keep=True)
    return {s.name: np.ascontiguousarray(values[s.name][0].T) for s in spec.stages}


def reference_output(spec: PipelineSpec, data: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The output stage over its shape (mins 0), numpy order, float32, computed with numpy."""
    return np.ascontiguousarray(_evaluate(spec, data, keep=False)[spec.output.name][0].T)


def outputs_match(got: np.ndarray, want: np.ndarray) -> bool:
    """Same shape and ``allclose`` with rtol 1e-3 and atol 1e-3 * max(1, max |want|)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    return bool(np.allclose(got, want, rtol=1e-3, atol=1e-3 * scale))


# --------------------------------------------------------------------------- features

_EXTENT_DIMS = ("x", "y", "c")

#: The keys of :func:`intrinsic_features`, in the column order of :func:`stage_feature_matrix`:
#: ``op_<name>`` one-hot per op of :data:`OPS`; ``ndims``; ``log2_extent_<d>`` (0 if the dim is
#: missing); ``log2_points`` (product of extents); ``log2_reduction`` (the update's RDom size,
#: 0 without one); ``adds``, ``muls``, ``minmax``, ``other_ops`` and ``loads`` per output point;
#: ``n_inputs``; ``bytes_read`` per point (4 per load); ``stencil_<d>`` (widest ``hi - lo + 1``
#: of the accesses that follow consumer dim d, 0 if the dim is missing); ``has_update``;
#: ``n_consumers``; ``is_output``.
FEATURE_NAMES: tuple[str, ...] = (
    *(f"op_{name}" for name in OPS),
    "ndims",
    *(f"log2_extent_{d}" for d in _EXTENT_DIMS),
    "log2_points",
    "log2_reduction",
    "adds",
    "muls",
    "minmax",
    "other_ops",
    "loads",
    "n_inputs",
    "bytes_read",
    *(f"stencil_{d}" for d in _EXTENT_DIMS),
    "has_update",
    "n_consumers",
    "is_output",
)


def intrinsic_features(spec: PipelineSpec, stage: Stage) -> dict[str, float]:
    """Schedule-independent features of ``stage`` keyed by :data:`FEATURE_NAMES`."""
    op = OPS[stage.op]
    feats = {f"op_{name}": float(name == stage.op) for name in OPS}
    feats["ndims"] = float(len(stage.shape))
    for d, dim in enumerate(_EXTENT_DIMS):
        feats[f"log2_extent_{dim}"] = math.log2(stage.shape[d]) if d < len(stage.shape) else 0.0
    feats["log2_points"] = math.log2(math.prod(stage.shape))
    red = op.reduction_size(stage)
    feats["log2_reduction"] = math.log2(red) if red > 0 else 0.0
    c = op.counts(stage)
    feats.update(adds=c.adds, muls=c.muls, minmax=c.minmax, other_ops=c.other, loads=c.loads)
    feats["n_inputs"] = float(len(stage.inputs))
    feats["bytes_read"] = 4.0 * c.loads
    widths = [0.0] * len(_EXTENT_DIMS)
    for d in range(len(stage.shape)):
        widths[d] = 1.0
    for accs in accesses(spec, stage).values():
        for a in accs:
            if a.consumer_dim >= 0:
                widths[a.consumer_dim] = max(widths[a.consumer_dim], float(a.width))
    for d, dim in enumerate(_EXTENT_DIMS):
        feats[f"stencil_{dim}"] = widths[d]
    feats["has_update"] = float(op.has_update)
    feats["n_consumers"] = float(len(spec.consumers(stage.name)))
    feats["is_output"] = float(stage.name == spec.output.name)
    return {k: float(feats[k]) for k in FEATURE_NAMES}


def stage_feature_matrix(spec: PipelineSpec) -> np.ndarray:
    """``(len(spec.stages), len(FEATURE_NAMES))`` float32, one row per stage in order."""
    rows = [[intrinsic_features(spec, s)[k] for k in FEATURE_NAMES] for s in spec.stages]
    return np.asarray(rows, dtype=np.float32).reshape(len(spec.stages), len(FEATURE_NAMES))
