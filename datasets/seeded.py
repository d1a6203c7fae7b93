"""Generator datasets: ``generator://<name>-v<N>/<seed>``, one instance per integer seed.

Seeds are split once and for all, for every generator dataset:
test = [0, 1000), validation = [1000, 2000), train = [2000, 2**32).
"""

from __future__ import annotations

import hashlib
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
    """

    scheme = "generator"
    suffix = ".bin"

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
        path = cache_dir() / "datasets" / self.name / f"{seed}{self.suffix}"
        data = read_tagged(path, "benchmark")
        if data is None:  # not built yet, or changed since: (re)build it
            with tempfile.TemporaryDirectory(prefix=f"optgym-{self.name}-") as tmp:
                data = self.generate(seed, Path(tmp))
            write_tagged(path, data, "benchmark")
        return Benchmark(uri, path, hashlib.sha256(data).hexdigest())

    @abstractmethod
    def generate(self, seed: int, workdir: Path) -> bytes:
        """The instance file's bytes for ``seed``, made in the empty folder ``workdir``."""
