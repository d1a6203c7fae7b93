"""Which machine measured a time: a host fingerprint, a calibration figure from a fixed
reference workload, and the hardware class built from both (``optgym calibrate``).

Tasks whose scores depend on the machine (a seconds budget, measured run times) are ranked
only among entries of one hardware class: the same architecture and core count, and a
calibration figure in the same octave.

The figure is the median speed over repeated runs of the workload. A loaded machine is not
classified at all, since its speed moves by more than an octave within a minute and any
class it got would be luck: :func:`calibrate` refuses (:class:`LoadedMachineError`) when the
runs' speeds spread more than :data:`MAX_SPREAD` (interquartile range over the median), or
when other processes kept more than :data:`MAX_BUSY` of the machine's cores busy while the
runs went (a steady load slows every run alike, which no spread shows). Records made before
these rules (the best of five runs) are kept as they are: they are never classified again.

>>> record = calibrate()
>>> record["class"], record["calibration"]
('x86_64/2cpu/speed+0', 1.02)
>>> calibrate()  # while the test suite runs
Traceback (most recent call last):
LoadedMachineError: this machine is loaded: its speed spread 23% over 9 runs ...
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Seconds the reference workload took on the machine that defined speed 1 (a 2-core
#: Debian VM, the project's CI machine), best of five runs.
REFERENCE_SECONDS = 0.10
#: Runs of the workload a calibration measures (after one warm-up run, not counted).
REPEATS = 9
#: The fewest runs whose spread says anything (the quartiles of fewer are two runs apart).
MIN_REPEATS = 5
#: The largest spread of the runs' speeds (interquartile range over the median) that is
#: classified: beyond it the figure would not hold a minute later.
MAX_SPREAD = 0.10
#: The largest share of the machine's cores that other processes (and a hypervisor's steal)
#: may keep busy during the runs: a steady load slows every run alike, so no spread shows it
#: (on a 2-core VM, a test suite running beside it made the figure 0.35 instead of 1.3).
MAX_BUSY = 0.25


class LoadedMachineError(RuntimeError):
    """The machine is too loaded to classify: the runs spread, or others kept it busy."""


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


@dataclass(frozen=True)
class Speeds:
    """Repeated runs of the reference workload: each run's speed (the reference machine's
    seconds over the run's: 2.0 is twice as fast), and how busy other processes kept the
    machine meanwhile."""

    runs: tuple[float, ...]
    #: The share of the machine's cores other processes kept busy during the runs (0.5: half
    #: of them); None where the system does not say (no ``/proc/stat``).
    busy: float | None = None

    @property
    def median(self) -> float:
        """The calibration figure: the median speed (robust to a run slowed by a hiccup)."""
        return float(np.median(self.runs))

    @property
    def spread(self) -> float:
        """The interquartile range of the speeds over their median (0.05: 5%)."""
        low, high = np.percentile(self.runs, [25, 75])
        return float((high - low) / self.median)

    def problems(self) -> list[str]:
        """Why these runs cannot classify the machine; empty when they can."""
        out = []
        if self.spread > MAX_SPREAD:
            out.append(
                f"its speed spread {self.spread:.0%} over {len(self.runs)} runs of the "
                f"reference workload (interquartile range over the median {self.median:.3f}; "
                f"runs from {min(self.runs):.3f} to {max(self.runs):.3f}; at most "
                f"{MAX_SPREAD:.0%} is classified)"
            )
        if self.busy is not None and self.busy > MAX_BUSY:
            out.append(
                f"other processes kept {self.busy:.0%} of its cores busy while the workload "
                f"ran (at most {MAX_BUSY:.0%} is classified)"
            )
        return out


def busy_seconds() -> tuple[float, float] | None:
    """(CPU seconds all cores have been busy since boot, a hypervisor's steal included;
    this process's CPU seconds, all its threads), or None where ``/proc/stat`` cannot say."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        user, nice, system, _, _, irq, softirq, steal = (int(x) for x in fields[1:9])
    except (OSError, ValueError):
        return None
    ticks = user + nice + system + irq + softirq + steal
    return ticks / os.sysconf("SC_CLK_TCK"), time.process_time()


def measure(repeats: int = REPEATS) -> Speeds:
    """Run the reference workload once to warm up (caches, BLAS threads; not counted), then
    ``repeats`` times: the runs' speeds and how busy other processes kept the machine."""
    if repeats < MIN_REPEATS:
        raise ValueError(f"repeats must be at least {MIN_REPEATS} (the spread of fewer runs "
                         f"says nothing), got {repeats}")  # fmt: skip
    reference_workload()
    before, start = busy_seconds(), time.perf_counter()
    runs = tuple(REFERENCE_SECONDS / reference_workload() for _ in range(repeats))
    after, wall = busy_seconds(), time.perf_counter() - start
    busy = None
    if before is not None and after is not None and wall > 0:
        others = (after[0] - before[0]) - (after[1] - before[1])
        busy = max(others, 0.0) / (wall * fingerprint()["cores"])
    return Speeds(runs, busy)


def calibrate(repeats: int = REPEATS) -> dict[str, Any]:
    """Measure the reference workload ``repeats`` times (:func:`measure`) and return the
    record a manifest holds: ``{"class", "calibration", "fingerprint"}``; calibration is the
    median speed, the reference machine's seconds over this one's (2.0: twice as fast).

    :class:`LoadedMachineError` when the machine is loaded (:meth:`Speeds.problems`): it is
    not classified. ``ValueError`` for fewer than :data:`MIN_REPEATS` repeats."""
    speeds = measure(repeats)
    problems = speeds.problems()
    if problems:
        raise LoadedMachineError(
            f"this machine is loaded: {'; '.join(problems)}. A hardware class measured now "
            "would not hold a minute later. Run optgym calibrate (and the entry) on an idle "
            f"machine, or measure longer with --repeats {max(2 * repeats, REPEATS)}"
        )
    calibration = round(speeds.median, 3)
    found = fingerprint()
    return {"class": hardware_class(found, calibration), "calibration": calibration,
            "fingerprint": found}  # fmt: skip


__all__ = [
    "MAX_BUSY",
    "MAX_SPREAD",
    "MIN_REPEATS",
    "REPEATS",
    "LoadedMachineError",
    "Speeds",
    "busy_seconds",
    "calibrate",
    "fingerprint",
    "hardware_class",
    "measure",
    "reference_workload",
]
