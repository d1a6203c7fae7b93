"""Reading either kind of SurCo instance: a file's ``"kind"`` (``"route"``,
:mod:`~optgym.datasets.surco.routes`, or ``"sharding"``, :mod:`~optgym.datasets.surco.sharding`)
says which format it follows."""

from __future__ import annotations

from pathlib import Path

from optgym.datasets.dataset import Benchmark
from optgym.datasets.files import parse_json_object, read_limited
from optgym.datasets.surco import routes, sharding
from optgym.datasets.surco.routes import RouteInstance
from optgym.datasets.surco.sharding import ShardingInstance

#: The kinds of instance, each with its file format.
KINDS = (routes.KIND, sharding.KIND)
#: The largest file of either kind.
MAX_FILE_BYTES = max(routes.MAX_FILE_BYTES, sharding.MAX_FILE_BYTES)


def instance_from_bytes(data: bytes, what: str) -> RouteInstance | ShardingInstance:
    """The instance a file's bytes hold, of the kind its ``"kind"`` names (``what`` names the
    file in messages); ``ValueError`` for anything outside that kind's format or limits."""
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{what} is {len(data)} bytes; at most {MAX_FILE_BYTES} allowed")
    depth = max(routes.MAX_JSON_DEPTH, sharding.MAX_JSON_DEPTH)
    obj = parse_json_object(data, what, depth)
    kind = obj.get("kind")
    if kind == sharding.KIND:
        if len(data) > sharding.MAX_FILE_BYTES:
            raise ValueError(f"{what} is {len(data)} bytes; at most {sharding.MAX_FILE_BYTES} "
                             "allowed for a sharding instance")  # fmt: skip
        return sharding.sharding_from_object(obj, what)
    if kind == routes.KIND:
        return routes.route_from_object(obj, what)
    raise ValueError(f"{what}: 'kind' must be {' or '.join(map(repr, KINDS))}")


def load_benchmark_instance(benchmark: Benchmark) -> RouteInstance | ShardingInstance:
    """The instance of a benchmark's file, its size checked before it is read and its bytes
    against the benchmark's sha256."""
    return instance_from_bytes(read_limited(benchmark, "instance file", MAX_FILE_BYTES),
                               f"instance file {benchmark.path}")  # fmt: skip


def load_instance(path: str | Path) -> RouteInstance | ShardingInstance:
    """The instance in the file ``path`` (at most :data:`MAX_FILE_BYTES`)."""
    return instance_from_bytes(read_limited(path, "instance file", MAX_FILE_BYTES),
                               f"instance file {path}")  # fmt: skip
