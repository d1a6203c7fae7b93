"""0-1 integer program datasets for LNS (docs/architecture.md#problems): seeded generators of the
four families of the LB-RELAX and CL-LNS papers (vertex cover, independent set, set cover,
combinatorial auction), each at a small (``-s-``) and a large (``-l-``) size, and the best known
objective values of their first test instances (``best_known.json``, made by
``datasets/lns/best_known.py``)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from optgym.datasets.dataset import Dataset
from optgym.datasets.lns.generators import FAMILIES_SPEC, SIZES, IlpDataset, IlpInstance

__all__ = [
    "BEST_KNOWN_PATH",
    "FAMILIES",
    "IlpDataset",
    "IlpInstance",
    "best_known_objective",
    "best_known_entries",
    "ilp_datasets",
]

#: family -> (small dataset name, large dataset name)
FAMILIES: dict[str, tuple[str, str]] = {
    family: (f"{family}-s-v0", f"{family}-l-v0") for family in FAMILIES_SPEC
}

BEST_KNOWN_PATH = Path(__file__).with_name("best_known.json")


def ilp_datasets() -> list[Dataset]:
    """Every ILP dataset: for each family its small then its large size."""
    return [IlpDataset(family, size) for family in FAMILIES_SPEC for size in SIZES]


@functools.lru_cache(maxsize=1)
def best_known_entries() -> dict[str, dict]:
    """The packaged ``best_known.json``: ``{uri: {"objective", "dual_bound", "status", ...}}``."""
    if not BEST_KNOWN_PATH.exists():
        return {}
    return json.loads(BEST_KNOWN_PATH.read_text())


def best_known_objective(uri: str) -> float | None:
    """The best objective value known for the instance ``uri``, or None if none is recorded.

    The value was found by SCIP, or by an LNS agent where the entry's ``found_by`` says so,
    under the CPU seconds stored with it (see ``best_known_entries()[uri]``); it is optimal
    only where its status says ``optimal``. (Not named ``best_known``: importing the module
    ``optgym.datasets.lns.best_known`` would replace such a function on this package.)
    """
    entry = best_known_entries().get(uri)
    if entry is None or entry.get("objective") is None:
        return None
    return float(entry["objective"])
