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
    AT_LEVEL,
    AT_OUTER,
    AT_TILE,
    COMPUTE_NAMES,
    INLINE,
    REDUCTION_PLACES,
    ROOT,
    VAR_NAMES,
    StageSchedule,
    consumer_loops,
    enclosing_loops,
    location,
    unrolled_inner,
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
        schedules = {**self.schedules, name: s}
        func, at = location(name, self.spec, schedules)
        sub, iterations = list(cs.tile), 1.0
        if func == c:
            # one iteration of the loop it is computed in covers, per dimension, what the
            # loops inside it span; the loops from there outwards repeat it
            for k, (d, kind) in enumerate(consumer_loops(cs)):
                if k >= at:
                    iterations *= self._trips(c, d, kind)
                elif d >= 0:  # a reduction loop covers no pure dimension
                    sub[d] = cn.box[d] if kind == "o" else _middle(cs)[d]
        else:
            # outside its consumer, in a loop around it: one iteration holds the consumer's
            # instances of the loops between the two (counted along the same dimension)
            around = enclosing_loops(name, self.spec, schedules)
            first = around.index(location(c, self.spec, schedules))
            sub, repeat = list(cn.box), 1.0
            for f, k in around[first : around.index((func, at))]:
                d, kind = consumer_loops(self.schedules[f])[k]
                trips = self._trips(f, d, kind)
                repeat *= trips
                if 0 <= d < len(sub):
                    sub[d] *= trips
            iterations = 1.0 / repeat
        box = []
        for a in accesses(self.spec, self.spec.stage(c))[name]:
            span = a.hi - a.lo + 1
            box.append(a.scale * (sub[a.consumer_dim] - 1) + span if a.consumer_dim >= 0 else span)
        box_t = tuple(min(b, e) for b, e in zip(box, full, strict=True))
        instances = max(1.0, cn.instances * iterations)
        return _Nest(box_t, instances, instances * math.prod(box_t))

    def _trips(self, name: str, d: int, kind: str) -> int:
        """How many times stage ``name``'s middle or outer loop over dimension ``d`` runs."""
        s, box = self.schedules[name], self.nests[name].box
        if kind in "rR":  # the halves of the update's split last reduction loop
            from optgym.datasets.schedule.ops import OPS

            stage = self.spec.stage(name)
            last = OPS[stage.op].reduction_extents(stage)[-1]
            return s.rsplit if kind == "r" else math.ceil(last / s.rsplit)
        if kind == "o":
            return math.ceil(box[d] / _middle(s)[d])
        return math.ceil(_middle(s)[d] / s.tile[d])

    def region(self, name: str, s: StageSchedule) -> tuple[int, ...]:
        """The extents of the region one instance of stage ``name`` computes under ``s``
        (its consumers scheduled already)."""
        return self._nest(name, s).box

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
            *(float(_compute_kind(s) == k) for k in range(len(COMPUTE_NAMES))),
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

        at: dict[tuple[str, int], list[str]] = {}  # (stage, loop index) -> producers
        roots: list[str] = []
        for stage in self.spec.stages:  # producers first, as Halide realizes them
            s = self.schedules.get(stage.name)
            if s is None or s.inlined:
                continue
            if s.compute == ROOT:
                roots.append(stage.name)
            else:
                at.setdefault(location(stage.name, self.spec, self.schedules), []).append(
                    stage.name
                )
        lines: list[str] = []

        def realize(name: str, depth: int) -> None:
            stage, s, box = self.spec.stage(name), self.schedules[name], self.nests[name].box
            if s.store_root and s.compute != ROOT:
                stored = " (stored at root)"
            elif s.store_out:
                stored = f" (stored {s.store_out} loop(s) further out)"
            else:
                stored = ""
            lines.append(f"{'  ' * depth}realize {name}{stored}:")
            point = f"{name}({', '.join(VAR_NAMES[: len(box)])})"
            middle = _middle(s)
            # (text, index in consumer_loops) outermost first: the loops producers go into
            tiles = [
                (f"for {VAR_NAMES[d]}_o in [0, {math.ceil(box[d] / middle[d])})", "o", d)
                for d in reversed(s.order)
            ]
            if s.middle is not None:
                tiles += [
                    (f"for {VAR_NAMES[d]}_m in [0, {math.ceil(middle[d] / s.tile[d])})", "m", d)
                    for d in reversed(s.middle_order)
                ]
            index = {(kind, d): k for k, (d, kind) in enumerate(consumer_loops(s))}
            tagged = [(text, index[(kind, d)]) for text, kind, d in tiles]
            if s.parallel:
                tagged[0] = ("parallel " + tagged[0][0], tagged[0][1])
            inner, lanes = [], []
            whole = unrolled_inner(s)
            for d in range(len(box)):  # innermost first
                split = s.vector if d == 0 else s.unroll if d == 1 else 1
                trips = math.ceil(s.tile[d] / split)
                kind = "unrolled " if whole[d] else ""
                loop = [f"{kind}for {VAR_NAMES[d]}_i in [0, {trips})"]
                if split > 1:
                    what = "vectorized" if d == 0 else "unrolled"
                    loop.append(f"{what} {VAR_NAMES[d]}_{what[0]} in [0, {split})")
                    if d == 0:
                        lanes, loop = loop[1:], loop[:1]
                inner = loop + inner
            rsize = OPS[stage.op].reduction_size(stage)
            inputs = ", ".join(stage.inputs)
            nest = [(t, None) for t in inner + lanes]
            if rsize:
                r = [(f"for r in [0, {rsize}) (reduction)", None)]
                if s.rsplit > 1:  # the last reduction loop split in two halves
                    last = OPS[stage.op].reduction_extents(stage)[-1]
                    r = [
                        (f"for r_o in [0, {math.ceil(last / s.rsplit)}) (reduction)",
                         index.get((-1, "R"))),
                        (f"for r_i in [0, {s.rsplit}) (reduction)", index.get((-1, "r"))),
                    ] + ([(f"for r in [0, {rsize // last}) (reduction)", None)]
                         if rsize > last else [])  # fmt: skip
                place = REDUCTION_PLACES[s.reduction]
                if place == "outside_inner":
                    update = [*tagged, *r, *nest]
                elif place == "outside_middle":
                    n_outer = len(s.order)
                    update = [*tagged[:n_outer], *r, *tagged[n_outer:], *nest]
                else:
                    k = len(nest) - len(lanes)
                    update = [*tagged, *nest[:k], *r, *nest[k:]]
                definitions = [
                    ([*tagged, *nest], f"{point} = 0", False),
                    (update, f"{point} += {stage.op}({inputs})", True),
                ]  # fmt: skip
            else:
                definitions = [([*tagged, *nest], f"{point} = {stage.op}({inputs})", True)]
            for loops, body, final in definitions:
                level = depth + 1
                for loop, where in loops:
                    lines.append(f"{'  ' * level}{loop}:")
                    level += 1
                    # compute_at goes into the final definition's loop, before what it holds
                    if final and where is not None:
                        for producer in at.get((name, where), []):
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


def _middle(s: StageSchedule) -> tuple[int, ...]:
    """The middle tile (the inner tile where there is no middle level)."""
    return s.middle if s.middle is not None else s.tile


def _compute_kind(s: StageSchedule) -> int:
    """v0's compute kind of a schedule (a v1 loop level counts as the tile loop at level 0,
    as the outer loop above it)."""
    if s.compute != AT_LEVEL:
        return s.compute
    return AT_TILE if s.level == 0 else AT_OUTER


def _intrinsic(spec: PipelineSpec, order: list[str]) -> np.ndarray:
    from optgym.datasets.schedule.ops import stage_feature_matrix

    m = stage_feature_matrix(spec)
    index = {s.name: i for i, s in enumerate(spec.stages)}
    return m[[index[n] for n in order]].astype(np.float32)
