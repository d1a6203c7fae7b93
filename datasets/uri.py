"""The one parser for benchmark URIs.

``benchmark://<dataset>-v<N>/<name>`` names a stored or built instance,
``generator://<dataset>-v<N>/<seed>`` an instance made on demand from an integer seed, and
``file:///abs/path`` a file the user points to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEMES = ("benchmark", "generator", "file")
_DATASET = re.compile(r"(?P<name>[a-z0-9][a-z0-9_.-]*?)-v(?P<version>0|[1-9][0-9]*)")
# A seed is written one way only: ASCII digits, no sign, no leading zero.
_SEED = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class BenchmarkUri:
    """A parsed benchmark URI. ``dataset`` is empty for ``file://`` URIs."""

    scheme: str
    dataset: str
    path: str

    @classmethod
    def parse(cls, uri: str) -> BenchmarkUri:
        """Parse ``uri`` or raise ``ValueError`` saying what is wrong and what is allowed."""
        if not isinstance(uri, str):
            raise ValueError(f"benchmark URI must be a string, got {type(uri).__name__}: {uri!r}")
        scheme, sep, rest = uri.partition("://")
        if not sep:
            raise ValueError(
                f"malformed benchmark URI {uri!r}: expected 'benchmark://<dataset>-v<N>/<name>', "
                "'generator://<dataset>-v<N>/<seed>' or 'file:///absolute/path'"
            )
        if scheme not in SCHEMES:
            raise ValueError(
                f"unknown URI scheme {scheme!r} in {uri!r}; allowed schemes: {', '.join(SCHEMES)}"
            )
        if scheme == "file":
            if not rest.startswith("/"):
                raise ValueError(f"file URI {uri!r} must hold an absolute path: file:///path/x.bc")
            return cls(scheme, "", rest)
        dataset, _, path = rest.partition("/")
        if not _DATASET.fullmatch(dataset):
            raise ValueError(
                f"malformed dataset {dataset!r} in {uri!r}: expected '<name>-v<N>', "
                "e.g. 'csmith-v0'"
            )
        if scheme == "generator" and path and not _SEED.fullmatch(path):
            raise ValueError(
                f"generator URI {uri!r} needs a seed after the dataset: a non-negative integer "
                "in ASCII digits without leading zeros (e.g. 'generator://csmith-v0/5')"
            )
        return cls(scheme, dataset, path)

    @property
    def dataset_uri(self) -> str:
        return f"{self.scheme}://{self.dataset}"

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.path}"
        return f"{self.scheme}://{self.dataset}/{self.path}" if self.path else self.dataset_uri
