"""Lower a :class:`~optgym.datasets.schedule.spec.PipelineSpec` to Halide Funcs.

:func:`lower` defines one Func per stage (named after the stage, pure vars ``x``, ``y``,
``c``), one ImageParam per input bound to its data (read through a clamp-to-edge boundary
condition with ``clamp_inputs``: a schedule's partial tiles may compute past the region
the output needs and read inputs there), and leaves every schedule untouched;
:func:`apply_naive` then gives the environment's reference schedule (every stage
``compute_root()``, nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import halide as hl
import numpy as np

from optgym.datasets.schedule.ops import OPS, input_data, required_regions
from optgym.datasets.schedule.spec import PipelineSpec
from optgym.envs.schedule.actions import VAR_NAMES


@dataclass
class Lowered:
    """The Halide form of a pipeline, ready to be scheduled and run."""

    spec: PipelineSpec
    funcs: dict[str, hl.Func]
    vars: dict[str, list[hl.Var]]
    rvars: dict[str, list[hl.RVar]]
    params: dict[str, hl.ImageParam]
    output: hl.Func
    pipeline: hl.Pipeline
    buffers: dict[str, hl.Buffer] = field(default_factory=dict)  # bound to ``params``
    data: dict[str, np.ndarray] = field(default_factory=dict)  # the numpy memory they view

    def output_buffer(self) -> hl.Buffer:
        """A fresh float32 buffer of the output's shape (Halide order, mins 0)."""
        return hl.Buffer(hl.Float(32), list(self.spec.output.shape))

    def realize(self, buf: hl.Buffer) -> None:
        """Run the pipeline (JIT-compiling it for the host on first use) into ``buf``."""
        self.pipeline.realize(buf)


def lower(
    spec: PipelineSpec, data: dict[str, np.ndarray] | None = None, clamp_inputs: bool = False
) -> Lowered:
    """Funcs, vars, RVars and bound ImageParams for ``spec``; no scheduling directive.

    ``data`` (numpy order, shapes = reversed required regions) defaults to
    :func:`~optgym.datasets.schedule.ops.input_data`. Estimates are set on every input (its
    required region) and on the output (its shape) so that autoschedulers can run.
    """
    regions = required_regions(spec)
    data = input_data(spec) if data is None else data
    params: dict[str, hl.ImageParam] = {}
    buffers: dict[str, hl.Buffer] = {}
    arrays: dict[str, np.ndarray] = {}
    edges: dict[str, hl.Func] = {}
    for t in spec.inputs:
        region = regions[t.name]
        arr = np.ascontiguousarray(data[t.name], dtype=np.float32)
        want = tuple(e for _, e in reversed(region))
        if arr.shape != want:
            raise ValueError(f"input {t.name!r} has numpy shape {arr.shape}, expected {want}")
        p = hl.ImageParam(hl.Float(32), len(region), t.name)
        p.set_estimates([hl.Range(m, e) for m, e in region])
        buf = hl.Buffer(arr, t.name)  # reverses the axes: numpy [c, y, x] -> Halide (x, y, c)
        buf.set_min([m for m, _ in region])
        p.set(buf)
        params[t.name], buffers[t.name], arrays[t.name] = p, buf, arr
        edges[t.name] = hl.BoundaryConditions.repeat_edge(p, [hl.Range(m, e) for m, e in region])

    funcs: dict[str, hl.Func] = {}
    vars_: dict[str, list[hl.Var]] = {}
    rvars: dict[str, list[hl.RVar]] = {}
    for s in spec.stages:
        f = hl.Func(hl.Float(32), len(s.shape), s.name)
        v = [hl.Var(VAR_NAMES[d]) for d in range(len(s.shape))]
        ins = [funcs[i] if i in funcs else (edges[i] if clamp_inputs else params[i])
               for i in s.inputs]  # fmt: skip
        rvars[s.name] = OPS[s.op].halide(s, f, v, ins)
        funcs[s.name], vars_[s.name] = f, v

    output = funcs[spec.output.name]
    output.set_estimates([hl.Range(0, e) for e in spec.output.shape])
    return Lowered(
        spec=spec,
        funcs=funcs,
        vars=vars_,
        rvars=rvars,
        params=params,
        output=output,
        pipeline=hl.Pipeline(output),
        buffers=buffers,
        data=arrays,
    )


def apply_naive(lowered: Lowered) -> None:
    """The naive reference schedule: every stage ``compute_root()``, nothing else."""
    for f in lowered.funcs.values():
        f.compute_root()


def to_numpy(buf: hl.Buffer) -> np.ndarray:
    """A numpy-order (``[c, y, x]``) copy of a Halide buffer."""
    return np.array(buf, copy=True)
