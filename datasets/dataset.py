"""Datasets and benchmarks: the shared contract of every OptGym problem (the core layer of
docs/architecture.md).

A :class:`Dataset` is a named, versioned, possibly infinite collection of benchmarks with a
description, a license, how it was made, and fixed splits. A :class:`Benchmark` is one
instance: its URI, a file on disk and the file's content hash.
"""

from __future__ import annotations

import hashlib
import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from optgym.datasets.uri import BenchmarkUri

SPLITS = ("train", "validation", "test")
#: The largest benchmark file a ``file://`` URI may name (bytes); envs may allow less.
MAX_FILE_BYTES = 1 << 30


@dataclass(frozen=True)
class Benchmark:
    """One problem instance: ``uri``, the file that holds it and its sha256."""

    uri: str
    path: Path
    sha256: str

    @classmethod
    def from_file(cls, uri: str, path: Path) -> Benchmark:
        """The benchmark ``uri`` held by the user's file ``path`` (a link to a file is
        followed; a FIFO or a device is refused, never waited on)."""
        from optgym.datasets.files import open_regular

        with open_regular(path, "benchmark file", follow=True) as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()  # in chunks, not all at once
        return cls(uri=uri, path=Path(path), sha256=digest)

    def read_bytes(self) -> bytes:
        """The instance's bytes; ``ValueError`` when the file is not a regular file or no
        longer has the recorded hash (it changed after the benchmark was resolved). A
        dataset's file lives in the cache and is never read through a link; a ``file://``
        benchmark is the user's own path, where a link is followed. Neither ever blocks
        (a FIFO or a device is refused)."""
        from optgym.datasets.files import read_regular

        follow = self.uri.startswith("file://")
        data = read_regular(self.path, f"the file of {self.uri}", MAX_FILE_BYTES, follow=follow)
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ValueError(
                f"the file of {self.uri} ({self.path}) changed after it was checked; "
                "reset again to rebuild it"
            )
        return data


class Dataset(ABC):
    """A named, versioned collection of benchmarks (``<scheme>://<name>-v<N>``).

    A dataset's card, what ``optgym datasets list`` and the docs' dataset reference show, is
    stated once as class attributes of its class: ``name``, ``description``, ``license``,
    ``provenance`` and ``references`` (a dataset made from parameters, such as one ILP family
    at one size, sets them in its ``__init__``). The class adds only how its benchmarks are
    named and made.
    """

    #: The name with its version, e.g. ``"csmith-v0"``.
    name: str
    #: ``"benchmark"`` (a fixed set of benchmarks) or ``"generator"`` (one per seed).
    scheme: str = "benchmark"
    #: What the dataset holds.
    description: str
    #: The license of the dataset and of what it is made from.
    license: str
    #: How it was made, precise enough to make it again.
    provenance: str
    #: Papers and pages it comes from.
    references: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.name}"

    @property
    def infinite(self) -> bool:
        return False

    @abstractmethod
    def benchmark_names(self, split: str | None = None) -> Iterable[str]:
        """Names (the URI's last part) in ``split``, or in the whole dataset; fixed order."""

    @abstractmethod
    def benchmark(self, uri: str) -> Benchmark:
        """Build (or find in the cache) the benchmark named by ``uri``."""

    def benchmark_uris(self, split: str | None = None) -> Iterator[str]:
        """URIs in ``split`` (one of train, validation, test) or in the whole dataset."""
        if split is not None and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        for name in self.benchmark_names(split):
            yield f"{self.uri}/{name}"

    def stored_benchmark(self, uri: str, name: str, data: bytes, suffix: str) -> Benchmark:
        """The benchmark ``uri`` whose file holds ``data``: written into the cache as
        ``datasets/<dataset>/<name><suffix>`` (again whenever its bytes differ)."""
        from optgym.datasets.cache import cache_dir, write_atomic
        from optgym.datasets.files import read_regular

        path = cache_dir() / "datasets" / self.name / f"{name}{suffix}"
        try:
            same = read_regular(path, "cached benchmark", len(data)) == data
        except ValueError:  # missing, too long, or a FIFO, link or folder planted there
            same = False
        if not same:
            write_atomic(path, data)
        return Benchmark(uri, path, hashlib.sha256(data).hexdigest())

    def split_of(self, uri: str) -> str | None:
        """The split that holds the benchmark ``uri`` (None when none does); ``ValueError``
        for a URI outside this dataset."""
        name = self.check_uri(uri).path
        for split in SPLITS:
            if name in set(self.benchmark_names(split)):
                return split
        return None

    def first_uri(self) -> str:
        return next(iter(self.benchmark_uris()))

    def take(self, split: str, n: int) -> list[str]:
        return list(itertools.islice(self.benchmark_uris(split), n))

    def check_uri(self, uri: str) -> BenchmarkUri:
        parsed = BenchmarkUri.parse(uri)
        if parsed.dataset_uri != self.uri:
            raise ValueError(f"benchmark {uri!r} is not in dataset {self.uri}")
        if not parsed.path:
            raise ValueError(f"benchmark URI {uri!r} names the dataset {self.uri} but no benchmark")
        return parsed


class DatasetRegistry:
    """The datasets an environment knows, looked up by URI or indexed by name:
    ``env.datasets["csmith-v0"]``, ``env.datasets["generator://csmith-v0"]`` and
    ``env.datasets["generator://csmith-v0/3"]`` are the same dataset (as CompilerGym's
    ``env.datasets[...]``)."""

    def __init__(self, datasets: Iterable[Dataset] = ()):
        self._datasets: dict[str, Dataset] = {}
        for d in datasets:
            self.add(d)

    def add(self, dataset: Dataset) -> None:
        self._datasets[dataset.uri] = dataset

    def __iter__(self) -> Iterator[Dataset]:
        return iter(self._datasets.values())

    def __len__(self) -> int:
        return len(self._datasets)

    def __contains__(self, uri: str) -> bool:
        return BenchmarkUri.parse(uri).dataset_uri in self._datasets

    def __getitem__(self, key: str) -> Dataset:
        """The dataset named by ``key``: its name with its version (``"csmith-v0"``), its URI
        (``"generator://csmith-v0"``) or the URI of one of its benchmarks. ``KeyError``
        naming the known datasets otherwise (a ``file://`` URI names no dataset)."""
        if not isinstance(key, str):
            raise KeyError(f"a dataset is named by a string, got {type(key).__name__}")
        known = ", ".join(sorted(self._datasets)) or "none"
        if "://" not in key:
            found = [d for d in self._datasets.values() if d.name == key]
            if len(found) == 1:
                return found[0]
            if found:  # the same name under two schemes: only the URI says which
                uris = " or ".join(sorted(d.uri for d in found))
                raise KeyError(f"dataset name {key!r} is ambiguous; use its URI: {uris}")
            raise KeyError(f"unknown dataset {key!r}; known: {known}")
        try:
            return self.dataset(key)
        except ValueError as e:
            raise KeyError(str(e)) from None

    def keys(self) -> list[str]:
        """The URIs of the datasets, in the order they were added."""
        return list(self._datasets)

    def dataset(self, uri: str) -> Dataset:
        """The dataset for a dataset or benchmark URI; ``ValueError`` naming the known ones."""
        parsed = BenchmarkUri.parse(uri)
        if parsed.scheme == "file":
            raise ValueError(f"{uri!r} is a file, not a dataset")
        try:
            return self._datasets[parsed.dataset_uri]
        except KeyError:
            known = ", ".join(sorted(self._datasets)) or "none"
            raise ValueError(
                f"unknown dataset {parsed.dataset_uri!r} in {uri!r}; known: {known}"
            ) from None

    def benchmark(self, uri: str) -> Benchmark:
        """Resolve any benchmark URI, ``file://`` included."""
        parsed = BenchmarkUri.parse(uri)
        if parsed.scheme == "file":
            path = Path(parsed.path)
            if path.is_dir():
                raise ValueError(f"benchmark {uri!r} names a folder; a file is needed")
            if not path.exists():
                raise ValueError(f"benchmark file not found: {path} (from {uri!r})")
            if not path.is_file():
                raise ValueError(f"benchmark {uri!r} is not a regular file")
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ValueError(
                    f"benchmark file {path} holds {size} bytes, more than the "
                    f"{MAX_FILE_BYTES} allowed"
                )
            try:
                return Benchmark.from_file(uri, path)
            except OSError as e:
                raise ValueError(f"cannot read benchmark file {path}: {e.strerror}") from None
        return self.dataset(uri).benchmark(uri)
