"""Embedding-table sharding instances of the SurCo problem: tables with a memory size and an
access profile are placed on devices with a memory capacity each; the objective of a
placement is the latency of its slowest device under a nonlinear cost model.

Cost model. Table ``i`` has a size ``s_i`` (GiB), a pooling factor ``a_i`` (lookups per
sample) and an embedding dimension ``dim_i``; its load is ``l_i = a_i * dim_i`` (embedding
values read per sample). Device ``d`` holds the tables ``S_d``, its load is
``L_d = sum(l_i for i in S_d)`` and its table count ``n_d = |S_d|``. Its latency (in
microseconds per sample) is compute plus communication plus a per-table overhead::

    compute_d = ALPHA * L_d * (1 + (L_d / K) ** P)      saturates past the knee K
    comm_d    = BETA * L_d                               the pooled values sent out
    latency_d = compute_d + comm_d + GAMMA * n_d

with ``ALPHA`` = :data:`COMPUTE_US_PER_VALUE` (1 ns a value), ``BETA`` =
:data:`COMM_US_PER_VALUE` (0.5 ns a value: 4 bytes at 8 GB/s), ``GAMMA`` =
:data:`TABLE_OVERHEAD_US` (1 microsecond: one lookup kernel a table), ``P`` =
:data:`SATURATION_POWER` (2) and ``K`` the instance's ``knee`` (values per sample: past it a
device's compute slows down superlinearly). An empty device has latency 0. The objective,
to minimize, is ``max_d latency_d``; every sum runs over tables in increasing index
(:func:`device_latencies`), so a placement always gives the same float.

File format (``.json``, UTF-8; what ``generator://sharding-v0`` writes and what
``file:///path/instance.json`` names)::

    {
      "kind": "sharding",
      "tables": [[size, pooling, dim], ...],      size in GiB, lookups per sample, integer dim
      "capacities": [capacity, ...],              GiB, one per device
      "knee": K                                   values per sample
    }

Every key is required and no other is allowed. Limits (a file outside them is refused with
a one-line ``ValueError`` naming the file and what is wrong, never quoting it): at most
:data:`MAX_FILE_BYTES` bytes, JSON nested at most 3 deep; 1 to :data:`MAX_TABLES` tables; 1
to :data:`MAX_DEVICES` devices; sizes, pooling factors and capacities finite, ``>= 0`` and
at most :data:`MAX_VALUE`; ``dim`` an integer in ``[1, MAX_DIM]``; the knee finite, ``> 0``
and at most :data:`MAX_VALUE`, and at least the tables' total load over
:data:`MAX_LOAD_OVER_KNEE`. An instance no placement can fit is refused: the tables'
total size above the total capacity, or a table larger than every device (here); the env
also asks its solver for a placement before any episode starts (bin packing can fail even
when both hold).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optgym.datasets.surco.numbers import check_keys, checked_number

KIND = "sharding"
KEYS = ("kind", "tables", "capacities", "knee")
MAX_FILE_BYTES = 1 << 20
MAX_JSON_DEPTH = 3  # the object, the table list, a table
MAX_TABLES = 1000
MAX_DEVICES = 64
MAX_DIM = 65536
#: The largest total load (every table's ``pooling * dim``) over the knee an instance may
#: have: beyond it the saturating latency of one device holding it all would overflow.
MAX_LOAD_OVER_KNEE = 1e12
COMPUTE_US_PER_VALUE = 1e-3
COMM_US_PER_VALUE = 5e-4
TABLE_OVERHEAD_US = 1.0
SATURATION_POWER = 2


@dataclass(frozen=True, eq=False)
class ShardingInstance:
    """One sharding instance (see the module docstring): per table ``sizes`` (GiB),
    ``pooling`` (lookups per sample) and ``dims`` (int64); per device ``capacities`` (GiB);
    the ``knee`` (values per sample). Build it with :func:`make_sharding` (checked)."""

    sizes: np.ndarray
    pooling: np.ndarray
    dims: np.ndarray
    capacities: np.ndarray
    knee: float

    @property
    def n_tables(self) -> int:
        return len(self.sizes)

    @property
    def n_devices(self) -> int:
        return len(self.capacities)

    @property
    def loads(self) -> np.ndarray:
        """Each table's load ``pooling * dim`` (values per sample)."""
        return self.pooling * self.dims

    def device_latencies(self, placement: Sequence[int]) -> list[float]:
        """Every device's latency (microseconds per sample) under ``placement`` (the device
        of each table), summed over tables in increasing index."""
        loads = self.loads.tolist()
        load = [0.0] * self.n_devices
        count = [0] * self.n_devices
        for i, d in enumerate(placement):
            load[d] += loads[i]
            count[d] += 1
        return [device_latency(load[d], count[d], self.knee) for d in range(self.n_devices)]

    def latency(self, placement: Sequence[int]) -> float:
        """The objective: the slowest device's latency under ``placement``."""
        return max(self.device_latencies(placement))

    def fits(self, placement: Sequence[int], rtol: float = 1e-9) -> bool:
        """Whether ``placement`` puts every table on a device and keeps every device within
        its capacity (up to ``rtol`` relative, the solver's tolerance)."""
        if len(placement) != self.n_tables:
            return False
        used = [0.0] * self.n_devices
        for i, d in enumerate(placement):
            if not 0 <= d < self.n_devices:
                return False
            used[d] += float(self.sizes[i])
        caps = self.capacities.tolist()
        return all(u <= c * (1 + rtol) + rtol for u, c in zip(used, caps, strict=True))

    def to_dict(self) -> dict[str, Any]:
        """The instance in the file format (plain JSON data)."""
        tables = zip(self.sizes.tolist(), self.pooling.tolist(), self.dims.tolist(),
                     strict=True)  # fmt: skip
        return {
            "kind": KIND,
            "tables": [list(t) for t in tables],
            "capacities": self.capacities.tolist(),
            "knee": self.knee,
        }

    def to_json(self) -> str:
        """The instance as file text: one table a line."""
        d = self.to_dict()
        tables = ",\n    ".join(json.dumps(t) for t in d["tables"])
        return (f'{{"kind": "{KIND}",\n  "tables": [\n    {tables}\n  ],\n'
                f'  "capacities": {json.dumps(d["capacities"])},\n'
                f'  "knee": {json.dumps(d["knee"])}}}\n')  # fmt: skip


def load_latency(load: Any, knee: float) -> Any:
    """The part of a device's latency its ``load`` gives (compute, saturating past the
    ``knee``, plus communication): convex in the load; a float, or elementwise on an
    array."""
    compute = COMPUTE_US_PER_VALUE * load * (1.0 + (load / knee) ** SATURATION_POWER)
    return compute + COMM_US_PER_VALUE * load


def load_latency_slope(load: Any, knee: float) -> Any:
    """The derivative of :func:`load_latency` in the load (elementwise on an array)."""
    p = SATURATION_POWER
    return COMPUTE_US_PER_VALUE * (1 + (p + 1) * (load / knee) ** p) + COMM_US_PER_VALUE


def device_latency(load: float, tables: int, knee: float) -> float:
    """One device's latency (microseconds per sample) for its ``load`` (values per sample)
    and its number of ``tables`` (see the module docstring); 0 for an empty device."""
    return load_latency(load, knee) + TABLE_OVERHEAD_US * tables


def latency_gradient(instance: ShardingInstance, placement: Sequence[int]) -> np.ndarray:
    """``d latency_d / d x[i, d]`` at ``placement`` for every table ``i`` and device ``d``
    (shape ``(T, D)``), ``x`` the placement's indicator taken as continuous:
    ``(ALPHA * (1 + (P + 1) * (L_d / K) ** P) + BETA) * l_i + GAMMA``."""
    loads = instance.loads
    device_load = np.zeros(instance.n_devices)
    np.add.at(device_load, np.asarray(placement, dtype=np.int64), loads)
    slope = load_latency_slope(device_load, instance.knee)
    return np.outer(loads, slope) + TABLE_OVERHEAD_US


def greedy_placement(instance: ShardingInstance) -> list[int] | None:
    """The greedy placement: tables by decreasing load (ties: lower index first), each on
    the device with room for it whose latency is lowest once it is added (ties: lower
    device); None when a table finds no device with room."""
    loads = instance.loads.tolist()
    sizes = instance.sizes.tolist()
    caps = instance.capacities.tolist()
    d_count = instance.n_devices
    used, load, count = [0.0] * d_count, [0.0] * d_count, [0] * d_count
    placement = [-1] * instance.n_tables
    for i in sorted(range(instance.n_tables), key=lambda i: (-loads[i], i)):
        best, best_latency = -1, math.inf
        for d in range(d_count):
            if used[d] + sizes[i] <= caps[d]:
                latency = device_latency(load[d] + loads[i], count[d] + 1, instance.knee)
                if latency < best_latency:
                    best, best_latency = d, latency
        if best < 0:
            return None
        placement[i] = best
        used[best] += sizes[i]
        load[best] += loads[i]
        count[best] += 1
    return placement


def placement_costs(placement: Sequence[int], n_devices: int) -> np.ndarray:
    """Surrogate costs (flattened ``(T, D)``) under which the solver returns ``placement``
    and nothing else when it fits: 0 for each table's device, 1 for every other one."""
    costs = np.ones((len(placement), n_devices))
    costs[np.arange(len(placement)), np.asarray(placement, dtype=np.int64)] = 0.0
    return costs.ravel()


def make_sharding(
    tables: Sequence[Sequence[float]],
    capacities: Sequence[float],
    knee: float,
    what: str = "the sharding instance",
) -> ShardingInstance:
    """A checked :class:`ShardingInstance` from plain values (``tables`` as ``[size,
    pooling, dim]``); ``ValueError`` naming ``what`` and the first thing wrong (never
    quoting a value)."""
    if not isinstance(tables, (list, tuple)):
        raise ValueError(f"{what}: 'tables' must be a list of [size, pooling, dim]")
    if not 1 <= len(tables) <= MAX_TABLES:
        raise ValueError(f"{what} has {len(tables)} tables; 1 to {MAX_TABLES} allowed "
                         "(optgym.datasets.surco.sharding.MAX_TABLES)")  # fmt: skip
    if not isinstance(capacities, (list, tuple)):
        raise ValueError(f"{what}: 'capacities' must be a list of numbers (GiB, one a device)")
    if not 1 <= len(capacities) <= MAX_DEVICES:
        raise ValueError(f"{what} has {len(capacities)} devices; 1 to {MAX_DEVICES} allowed "
                         "(optgym.datasets.surco.sharding.MAX_DEVICES)")  # fmt: skip
    sizes, pooling, dims = [], [], []
    for i, table in enumerate(tables):
        if not isinstance(table, (list, tuple)) or len(table) != 3:
            raise ValueError(f"{what}: table {i} must be [size, pooling, dim] (three numbers)")
        size, pool, dim = table
        sizes.append(checked_number(size, f"{what}: table {i}'s size", "sizes must be >= 0"))
        pooling.append(checked_number(pool, f"{what}: table {i}'s pooling", "pooling must be >= 0"))
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise ValueError(f"{what}: table {i}'s dim must be an integer in [1, {MAX_DIM}]")
        if not 1 <= dim <= MAX_DIM:
            raise ValueError(f"{what}: table {i}'s dim is out of range; allowed: an integer in "
                             f"[1, {MAX_DIM}]")  # fmt: skip
        dims.append(int(dim))
    caps = [checked_number(c, f"{what}: device {d}'s capacity", "capacities must be >= 0")
            for d, c in enumerate(capacities)]  # fmt: skip
    knee = checked_number(knee, f"{what}: 'knee'", "the knee must be > 0")
    if knee <= 0:
        raise ValueError(f"{what}: 'knee' is 0; the knee must be > 0")
    total = math.fsum(p * d for p, d in zip(pooling, dims, strict=True))
    if total > MAX_LOAD_OVER_KNEE * knee:
        raise ValueError(f"{what}: 'knee' is too small for the tables' loads (the latency model "
                         f"would overflow); allowed: total load (pooling x dim, summed) / knee <= "
                         f"{MAX_LOAD_OVER_KNEE:g}")  # fmt: skip
    if math.fsum(sizes) > math.fsum(caps):
        raise ValueError(f"{what} cannot be placed: its tables' total size exceeds the "
                         "devices' total capacity")  # fmt: skip
    largest = max(caps)
    for i, size in enumerate(sizes):
        if size > largest:
            raise ValueError(f"{what} cannot be placed: table {i} is larger than every "
                             "device's capacity")  # fmt: skip
    return ShardingInstance(
        sizes=np.array(sizes, dtype=np.float64),
        pooling=np.array(pooling, dtype=np.float64),
        dims=np.array(dims, dtype=np.int64),
        capacities=np.array(caps, dtype=np.float64),
        knee=knee,
    )


def sharding_from_object(obj: dict, what: str) -> ShardingInstance:
    """The sharding instance a parsed file holds (``what`` names the file); ``ValueError``
    for anything outside the format or its limits."""
    check_keys(obj, KIND, KEYS, what)
    return make_sharding(obj["tables"], obj["capacities"], obj["knee"], what)


