"""Observation features of ``ScheduleSearch-v0``: a padded per-stage matrix.

Each row is one stage, in the order the episode schedules them (the output first). It joins
the stage's intrinsic features (``optgym.datasets.schedule.ops.FEATURE_NAMES``: op counts,
extents, access widths) with acquired features of the loop nest chosen so far, computed
analytically from the accesses (no compile): where it is computed, its tile, how many
times its region is computed and how large that region is, the recompute factor against
the region it must cover, its vector width and the work per parallel task. Unscheduled
stages have zero acquired features; padding rows are all zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optgym.datasets.schedule.ops import FEATURE_NAMES, accesses, required_regions
from optgym.datasets.schedule.spec import PipelineSpec
from optgym.envs.schedule.actions import (
    AT_OUTER,
    AT_TILE,
    COMPUTE_NAMES,
    INLINE,
    ROOT,
    VAR_NAMES,
    StageSchedule,
)

MAX_STAGES = 32
ACQUIRED_NAMES = (
    "current",
    "scheduled",
    *(f"compute_{n}" for n in COMPUTE_NAMES),
    "log_tile_x",
    "log_tile_y",
    "log_tile_c",
    "log_vector",
    "log_unroll",
    "parallel",
    "store_root",
    "log_instances",
    "log_points_per_instance",
    "log_points_total",
    "log_recompute",
    "log_footprint_bytes",
    "log_inner_points",
    "log_tiles_per_instance",
    "log_parallel_tasks",
    "vector_fraction",
)
N_FEATURES = len(FEATURE_NAMES) + len(ACQUIRED_NAMES)


def _log(v: float) -> float:
    return math.log2(max(1.0, v))


@dataclass
class _Nest:
    box: tuple[int, ...]  # extents of the region computed per instance
    instances: float  # how many times that region is computed
    total: float  # points computed in all


class LoopNestFeatures:
    """Acquired features of a pipeline's stages, updated one scheduled stage at a time."""

    def __init__(self, spec: PipelineSpec, threads: int = 1):
        self.spec = spec
        self.threads = threads
        self.order = [s.name for s in reversed(spec.stages)]
        self.required = required_regions(spec)
        self.intrinsic = _intrinsic(spec, self.order)
        self.acquired = np.zeros((len(self.order), len(ACQUIRED_NAMES)), np.float32)
        self.nests: dict[str, _Nest] = {}
        self.schedules: dict[str, StageSchedule] = {}

    def copy(self) -> LoopNestFeatures:
        new = LoopNestFeatures.__new__(LoopNestFeatures)
        new.__dict__.update(self.__dict__)
        new.acquired = self.acquired.copy()
        new.nests = dict(self.nests)
        new.schedules = dict(self.schedules)
        return new

    def _region_points(self, name: str) -> float:
        return float(math.prod(e for _, e in self.required[name]))

    def _nest(self, name: str, s: StageSchedule) -> _Nest:
        full = tuple(e for _, e in self.required[name])
        if s.compute == ROOT:
            return _Nest(full, 1.0, float(math.prod(full)))
        consumers = self.spec.consumers(name)
        if s.compute == INLINE:
            total = 0.0
            for c in consumers:
                widths = [a.hi - a.lo + 1 for a in accesses(self.spec, self.spec.stage(c))[name]]
                total += self.nests[c].total * math.prod(widths)
            return _Nest(full, max(1.0, total / max(1.0, math.prod(full))), total)
        (c,) = consumers
        cs, cn = self.schedules[c], self.nests[c]
        counts = [math.ceil(e / t) for e, t in zip(cn.box, cs.tile, strict=True)]
        if s.compute == AT_OUTER:
            outer = cs.order[-1]
            iterations = counts[outer]
            sub = [cn.box[d] if d != outer else cs.tile[d] for d in range(len(cn.box))]
        else:
            iterations = math.prod(counts)
            sub = list(cs.tile)
        box = []
        for a in accesses(self.spec, self.spec.stage(c))[name]:
            span = a.hi - a.lo + 1
            box.append(a.scale * (sub[a.consumer_dim] - 1) + span if a.consumer_dim >= 0 else span)
        box_t = tuple(min(b, e) for b, e in zip(box, full, strict=True))
        instances = cn.instances * iterations
        return _Nest(box_t, instances, instances * math.prod(box_t))

    def schedule(self, name: str, s: StageSchedule) -> None:
        """Record ``s`` for stage ``name`` (its consumers must be scheduled already)."""
        i = self.order.index(name)
        nest = self._nest(name, s)
        self.nests[name], self.schedules[name] = nest, s
        tiles = math.prod(math.ceil(b / t) for b, t in zip(nest.box, s.tile, strict=True))
        inner = math.prod(s.tile)
        x = nest.box[0]
        vector_fraction = (x // s.vector) * s.vector / x if s.vector > 1 else 0.0
        tasks = 1.0
        if s.parallel and not s.inlined:
            tasks = math.ceil(nest.box[s.order[-1]] / s.tile[s.order[-1]]) / self.threads
        tile = [*s.tile, 1, 1][:3]
        row = [
            0.0,
            1.0,
            *(float(s.compute == k) for k in range(len(COMPUTE_NAMES))),
            *(_log(t) for t in tile),
            _log(s.vector),
            _log(s.unroll),
            float(s.parallel),
            float(s.store_root),
            _log(nest.instances),
            _log(math.prod(nest.box)),
            _log(nest.total),
            _log(nest.total / max(1.0, self._region_points(name))),
            _log(4 * math.prod(nest.box)),
            _log(inner),
            _log(tiles),
            _log(tasks),
            vector_fraction,
        ]
        self.acquired[i] = row

    def loop_nest_text(self) -> str:
        """The loop nest the stages scheduled so far give, as text, outermost loop first:
        what ``apply_schedule`` asks Halide for. Each computed stage is a ``realize`` block
        of loops ``<var>_o`` (tiles, in the chosen order; ``parallel`` marked), the
        reduction of an update, then ``<var>_i`` (inside a tile), ``y_u`` (unrolled) and
        ``x_v`` (vectorized), with their trip counts over the region one instance computes;
        a stage computed at a consumer's loop is nested in that loop. A stage with an update
        shows its initialization and its update (stages computed at it go into the update).
        Inlined stages and those not scheduled yet are listed after the nest."""
        from optgym.datasets.schedule.ops import OPS

        at: dict[tuple[str, int], list[str]] = {}  # (consumer, compute kind) -> producers
        roots: list[str] = []
        for stage in self.spec.stages:  # producers first, as Halide realizes them
            s = self.schedules.get(stage.name)
            if s is None or s.inlined:
                continue
            if s.compute == ROOT:
                roots.append(stage.name)
            else:
                (consumer,) = self.spec.consumers(stage.name)
                at.setdefault((consumer, s.compute), []).append(stage.name)
        lines: list[str] = []

        def realize(name: str, depth: int) -> None:
            stage, s, box = self.spec.stage(name), self.schedules[name], self.nests[name].box
            stored = " (stored at root)" if s.store_root and s.compute != ROOT else ""
            lines.append(f"{'  ' * depth}realize {name}{stored}:")
            point = f"{name}({', '.join(VAR_NAMES[: len(box)])})"
            outer = [
                f"for {VAR_NAMES[d]}_o in [0, {math.ceil(box[d] / s.tile[d])})"
                for d in reversed(s.order)
            ]
            if s.parallel:
                outer[0] = "parallel " + outer[0]
            inner = []
            for d in reversed(range(len(box))):
                split = s.vector if d == 0 else s.unroll if d == 1 else 1
                inner.append(f"for {VAR_NAMES[d]}_i in [0, {math.ceil(s.tile[d] / split)})")
                if split > 1:
                    kind = "vectorized" if d == 0 else "unrolled"
                    inner.append(f"{kind} {VAR_NAMES[d]}_{kind[0]} in [0, {split})")
            rsize = OPS[stage.op].reduction_size(stage)
            inputs = ", ".join(stage.inputs)
            if rsize:
                definitions = [
                    (outer + inner, f"{point} = 0", False),
                    (outer + [f"for r in [0, {rsize}) (reduction)"] + inner,
                     f"{point} += {stage.op}({inputs})", True),
                ]  # fmt: skip
            else:
                definitions = [(outer + inner, f"{point} = {stage.op}({inputs})", True)]
            for loops, body, final in definitions:
                level = depth + 1
                for k, loop in enumerate(loops):
                    lines.append(f"{'  ' * level}{loop}:")
                    level += 1
                    # compute_at goes into the final definition's outermost or innermost
                    # tile loop (AT_OUTER, AT_TILE), before what that loop holds
                    for kind, index in ((AT_OUTER, 0), (AT_TILE, len(outer) - 1)):
                        if final and k == index:
                            for producer in at.get((name, kind), []):
                                realize(producer, level)
                lines.append(f"{'  ' * level}{body}")

        for name in roots:
            realize(name, 0)
        inlined = [n for n in self.order if n in self.schedules and self.schedules[n].inlined]
        if inlined:
            lines.append(f"inlined: {', '.join(reversed(inlined))}")
        waiting = [n for n in self.order if n not in self.schedules]
        if waiting:
            lines.append(f"not scheduled yet: {', '.join(waiting)}")
        return "\n".join(lines)

    def matrix(self, current: int | None) -> np.ndarray:
        """The padded (``MAX_STAGES``, ``N_FEATURES``) observation; ``current`` is the row of
        the stage to schedule next (None when all are scheduled)."""
        out = np.zeros((MAX_STAGES, N_FEATURES), np.float32)
        n = len(self.order)
        out[:n, : self.intrinsic.shape[1]] = self.intrinsic
        out[:n, self.intrinsic.shape[1] :] = self.acquired
        if current is not None:
            out[current, self.intrinsic.shape[1]] = 1.0
        return out


def _intrinsic(spec: PipelineSpec, order: list[str]) -> np.ndarray:
    from optgym.datasets.schedule.ops import stage_feature_matrix

    m = stage_feature_matrix(spec)
    index = {s.name: i for i, s in enumerate(spec.stages)}
    return m[[index[n] for n in order]].astype(np.float32)
