"""Generator datasets: ``generator://<name>-v<N>/<seed>``, one instance per integer seed.

Seeds are split once and for all, for every generator dataset:
test = [0, 1000), validation = [1000, 2000), train = [2000, 2**32).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import itertools
import tempfile
from abc import abstractmethod
from collections.abc import Iterable
from pathlib import Path

from optgym.datasets.cache import cache_dir
from optgym.datasets.dataset import Benchmark, Dataset
from optgym.integrity import read_tagged, write_tagged

SPLIT_SEEDS = {"test": (0, 1000), "validation": (1000, 2000), "train": (2000, 2**32)}


class SeededDataset(Dataset):
    """A generator dataset whose instances are files made from a seed into the cache.

    Its scheme is ``generator``. Subclasses state their card (see
    :class:`~optgym.datasets.dataset.Dataset`), set ``suffix`` (the file type, e.g. ``".bc"``,
    ``".mps"``) and define ``generate``; the same seed must give the same bytes on any machine.

    A seed's file is cached in :meth:`folder`, which is named by the source code that makes
    it: the subclass's module and ``recipe_modules``. A changed generator therefore never
    reuses files its old code made (a released generator changes its name's version
    instead). An external tool's version (csmith, llvm-stress) is not part of the name.
    """

    scheme = "generator"
    suffix = ".bin"
    #: Modules, besides the subclass's own, whose code decides the bytes of a seed's file.
    recipe_modules: tuple[str, ...] = ()

    def folder(self) -> Path:
        """The cache folder of the dataset's files, ``datasets/<name>/<recipe>``: the recipe
        is 12 hex digits of the sha256 of the generating modules' source."""
        recipe = source_digest((type(self).__module__, *self.recipe_modules))
        return cache_dir() / "datasets" / self.name / recipe

    @property
    def infinite(self) -> bool:
        return True

    def benchmark_names(self, split: str | None = None) -> Iterable[str]:
        lo, hi = SPLIT_SEEDS[split] if split else (0, 2**32)
        return (str(s) for s in itertools.takewhile(lambda s: s < hi, itertools.count(lo)))

    def split_of(self, uri: str) -> str | None:
        seed = int(self.check_uri(uri).path)
        for split, (lo, hi) in SPLIT_SEEDS.items():
            if lo <= seed < hi:
                return split
        return None

    def benchmark(self, uri: str) -> Benchmark:
        seed = int(self.check_uri(uri).path)
        if seed >= 2**32:
            raise ValueError(f"seed {seed} in {uri!r} is out of range; allowed: 0 <= seed < 2**32")
        path = self.folder() / f"{seed}{self.suffix}"
        data = read_tagged(path, "benchmark")
        if data is None:  # not built yet, or changed since: (re)build it
            with tempfile.TemporaryDirectory(prefix=f"optgym-{self.name}-") as tmp:
                data = self.generate(seed, Path(tmp))
            write_tagged(path, data, "benchmark")
        return Benchmark(uri, path, hashlib.sha256(data).hexdigest())

    @abstractmethod
    def generate(self, seed: int, workdir: Path) -> bytes:
        """The instance file's bytes for ``seed``, made in the empty folder ``workdir``."""


@functools.cache
def source_digest(modules: tuple[str, ...]) -> str:
    """12 hex digits of the sha256 of the source files of ``modules`` (in that order)."""
    digest = hashlib.sha256()
    for name in modules:
        file = importlib.import_module(name).__file__
        if file is None:
            raise ValueError(f"module {name!r} has no source file to name its recipe by")
        digest.update(name.encode() + b"\0" + Path(file).read_bytes() + b"\0")
    return digest.hexdigest()[:12]
