"""Which machine measured a time: a host fingerprint, a calibration figure from a fixed
reference workload, and the hardware class built from both (``optgym calibrate``).

Tasks whose scores depend on the machine (a seconds budget, measured run times) are ranked
only among entries of one hardware class: the same architecture and core count, and a
calibration figure in the same octave.

>>> record = calibrate()
>>> record["class"], record["calibration"]
('x86_64/2cpu/speed+0', 1.02)
"""

from __future__ import annotations

import math
import os
import platform
import time
from typing import Any

import numpy as np

#: Seconds the reference workload took on the machine that defined speed 1 (a 2-core
#: Debian VM, the project's CI machine), best of five runs.
REFERENCE_SECONDS = 0.10
REPEATS = 5


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()[:200]
    except OSError:
        pass
    return platform.processor()[:200] or "unknown"


def _memory_gib() -> int:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3)
    except (ValueError, OSError, AttributeError):
        return 0


def fingerprint() -> dict[str, Any]:
    """This host: CPU model, architecture, usable cores, memory (GiB), OS and Python."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "machine": platform.machine()[:40] or "unknown",
        "cores": int(cores or 1),
        "memory_gib": _memory_gib(),
        "system": f"{platform.system()} {platform.release()}"[:200],
        "python": platform.python_version(),
    }


def reference_workload() -> float:
    """One run of the fixed workload (interpreter loop, matrix products, a sort: what the
    envs' agents and backends spend their time on); returns its seconds."""
    rng = np.random.default_rng(12345)
    a = rng.standard_normal((192, 192))
    keys = rng.integers(0, 2**31, size=400_000)
    start = time.perf_counter()
    total = 0
    for i in range(400_000):
        total += (i * i) % 7
    for _ in range(20):
        a = np.tanh(a @ a.T / 192.0)
    np.sort(keys, kind="stable")
    assert total > 0 and np.isfinite(a).all()
    return time.perf_counter() - start


def hardware_class(print_: dict[str, Any], calibration: float) -> str:
    """``arch/Ncpu/speed±k``: the octave of the calibration figure (speed+0 is within a
    factor sqrt(2) of the reference machine, speed+1 about twice as fast). Octaves, not finer:
    one cloud VM's figure was seen to drift by +-20% between runs minutes apart."""
    bucket = round(math.log2(calibration))
    return f"{print_['machine']}/{print_['cores']}cpu/speed{bucket:+d}"


def calibrate(repeats: int = REPEATS) -> dict[str, Any]:
    """Run the reference workload ``repeats`` times and return the record a manifest
    holds: ``{"class", "calibration", "fingerprint"}``; calibration is the reference
    machine's seconds over this one's best (2.0: twice as fast)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    best = min(reference_workload() for _ in range(repeats))
    calibration = round(REFERENCE_SECONDS / best, 3)
    found = fingerprint()
    return {"class": hardware_class(found, calibration), "calibration": calibration,
            "fingerprint": found}  # fmt: skip


__all__ = ["calibrate", "fingerprint", "hardware_class", "reference_workload"]
