"""Measuring schedules: a contained Halide worker process and a measurement database.

:class:`HalideWorker` runs :mod:`optgym.envs.schedule.worker` in a child process; a crash
there (an abort in Halide, a segfault in JIT code) becomes a :class:`WorkerCrash`, a hang
past the timeout or a compile error a :class:`MeasureError`, and the next request after a
crash or a hang starts a fresh worker.

:class:`MeasurementCache` is an SQLite file of measurements keyed by pipeline (the spec's
sha256), schedule, host (Halide's JIT target and the CPU model), Halide version, thread
count and timing protocol (samples, warm-up, minimum timed seconds): the env's ``cache``
mode reads it before it measures. Every row carries an integrity tag
(:func:`optgym.integrity.tag` of its key fields and value): a row edited or planted in the
file does not match, is ignored with a warning, measured again and overwritten. Before
SQLite opens it, the file (and its journal) must be a regular file or absent: a link, FIFO,
device or folder there is replaced, with a warning, when it lies in OptGym's cache, and
refused elsewhere; SQLite never follows it or waits on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from optgym import integrity
from optgym.envs.schedule.worker import (
    MIN_TIMED_S,
    PAIR_BURST_S,
    PAIR_MIN_RUNS,
    PAIR_ROUNDS,
    WARM_S,
    read_message,
    write_message,
)

TAG_PURPOSE = "schedule-measurement"
_COLUMNS = ("pipeline", "schedule", "host", "halide", "threads", "protocol", "value", "created",
            "tag")  # fmt: skip


class MeasureError(RuntimeError):
    """A schedule could not be measured: compile error, crash, timeout or wrong output."""


class WorkerCrash(MeasureError):
    """The worker process died (a signal or an exit in Halide or in JIT code) or was gone
    before the request: a failure of the backend, not a verdict on the schedule. The next
    request starts a fresh worker."""


class WorkerTimeout(MeasureError):
    """The worker gave no reply within the timeout and was killed (a hung or stopped
    process, or a schedule too slow to time): not remembered as the pipeline's outcome."""


@dataclass(frozen=True)
class Measurement:
    time_s: float  # minimum over the timed samples
    times: list[float]
    output_ok: bool | None
    compile_s: float
    early_stop: bool
    cached: bool = False
    schedule_source: str | None = None
    clamped_inputs: bool = False  # rerun with inputs clamped to their edges (see worker)
    timed_runs: int = 0  # how many runs the minimum is over (``times`` keeps the first few)
    timed_s: float = 0.0  # what those runs added up to on the clock
    # paired timing (``Timer.measure_paired``): the median over rounds of reference time /
    # this schedule's time, the reference's minimum, and each round's ratio
    ratio: float | None = None
    reference_s: float | None = None
    ratios: list[float] | None = None


def halide_version() -> str:
    return metadata.version("halide")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


class HalideWorker:
    """A Halide worker process with ``threads`` Halide threads, restarted after a crash."""

    def __init__(self, threads: int = 1, timeout_s: float = 300.0):
        self.threads = threads
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen | None = None
        self.target: str | None = None
        self.restarts = 0

    def _start(self) -> None:
        if self.target is not None:
            self.restarts += 1
        env = dict(os.environ, HL_NUM_THREADS=str(self.threads))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "optgym.envs.schedule.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        hello = self._read(60.0)
        self.target = hello["target"]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def _read(self, timeout: float) -> Any:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            raise WorkerTimeout(
                f"the Halide worker gave no reply in {timeout:.0f} s; killed it (a fresh one "
                "starts on the next call)"
            )
        try:
            return read_message(self.proc.stdout)
        except (EOFError, OSError):
            code = self.proc.wait()
            self.proc = None
            why = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            raise WorkerCrash(
                f"the Halide worker crashed ({why}); it restarts on the next call"
            ) from None

    def request(self, message: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """Send one request and return its result; ``MeasureError`` on any failure
        (``WorkerCrash`` when the worker died, ``WorkerTimeout`` past ``timeout_s``, default
        the worker's)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            write_message(self.proc.stdin, message)
        except (BrokenPipeError, OSError):
            self.proc = None
            raise WorkerCrash("the Halide worker died before the request") from None
        reply = self._read(self.timeout_s if timeout_s is None else timeout_s)
        if not reply["ok"]:
            raise MeasureError(reply["error"])
        return reply["result"]

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
            self.proc = None

    def __del__(self) -> None:
        try:
            self.kill()
        except Exception:
            pass


def schedule_key(schedule: Any) -> str:
    """A canonical string for a schedule: ``"naive"``, an autoscheduler or stage actions."""
    if schedule == "naive":
        return "naive"
    if isinstance(schedule, tuple) and schedule and schedule[0] == "autoscheduler":
        return "autoscheduler:" + schedule[1] + ":" + json.dumps(dict(schedule[2]), sort_keys=True)
    return json.dumps(schedule, sort_keys=True)


class MeasurementCache:
    """Measurements in an SQLite file (the ``cache`` mode's embedded database), each row
    with an integrity tag: a row that does not match it is treated as missing."""

    def __init__(self, path: str | os.PathLike, host: str, threads: int, protocol: str = ""):
        self.path = Path(path)
        self.protocol = protocol
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.threads = threads
        self.version = halide_version()
        self._check_files()
        try:
            self.db = self._open()
        except sqlite3.DatabaseError:  # not an SQLite file, or another table: start afresh
            warnings.warn(
                f"the measurement cache {self.path} is not one this package writes (a "
                "damaged or planted file): replacing it with an empty one",
                stacklevel=2,
            )
            self.path.unlink()
            self.db = self._open()

    def _check_files(self) -> None:
        """Make sure SQLite opens only regular files: the database and its journals must
        each be one or be absent (``lstat``: a link is not followed). Anything else is
        removed with a warning in OptGym's cache (it is a cache: measured again), and
        refused with ``ValueError`` naming it elsewhere (a path the user gave)."""
        from optgym.datasets.cache import cache_dir, clear_planted_folder
        from optgym.datasets.files import file_kind

        for suffix in ("", "-journal", "-wal", "-shm"):
            path = self.path.with_name(self.path.name + suffix)
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:
                continue
            if stat.S_ISREG(mode):
                continue
            kind = file_kind(mode)
            if not Path(os.path.abspath(path)).is_relative_to(os.path.abspath(cache_dir())):
                raise ValueError(
                    f"the measurement cache {path} is a {kind}, not a regular file; name a "
                    "regular file (or a new one) for cache_path"
                )
            warnings.warn(
                f"the measurement cache {path} is a {kind}, not a regular file (planted): "
                "replacing it with an empty one",
                stacklevel=3,
            )
            if stat.S_ISDIR(mode):
                clear_planted_folder(path)
            else:
                path.unlink()  # the link or FIFO itself, never what it names

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS measurements (pipeline TEXT, schedule TEXT,"
                " host TEXT, halide TEXT, threads INTEGER, protocol TEXT, value TEXT,"
                " created REAL, tag TEXT,"
                " PRIMARY KEY (pipeline, schedule, host, halide, threads, protocol))"
            )
            columns = [c[1] for c in db.execute("PRAGMA table_info(measurements)")]
            if "tag" not in columns:  # a file from before tags: its rows no longer match
                db.execute("ALTER TABLE measurements ADD COLUMN tag TEXT")
                columns.append("tag")
            if columns != [*_COLUMNS]:
                raise sqlite3.DatabaseError(f"unexpected columns in {self.path}")
            db.commit()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _key(self, spec_json: str, schedule: Any) -> tuple:
        pipeline = hashlib.sha256(spec_json.encode()).hexdigest()
        key = schedule_key(schedule)
        return (pipeline, key, self.host, self.version, self.threads, self.protocol)

    @staticmethod
    def _signed(key: tuple, value: str) -> bytes:
        """The canonical bytes a row's tag covers: every key field and the value."""
        return json.dumps([*key, value], separators=(",", ":"), ensure_ascii=True).encode()

    def get(self, spec_json: str, schedule: Any) -> Measurement | None:
        """The stored measurement, or None when there is none or (with a warning) when its
        row does not match its integrity tag or holds no valid measurement."""
        key = self._key(spec_json, schedule)
        row = self.db.execute(
            "SELECT value, tag FROM measurements WHERE pipeline=? AND schedule=? AND host=?"
            " AND halide=? AND threads=? AND protocol=?",
            key,
        ).fetchone()
        if row is None:
            return None
        value, tag = row
        m = None
        if isinstance(value, str) and integrity.matches(self._signed(key, value), TAG_PURPOSE, tag):
            m = _measurement(value)
        if m is None:
            warnings.warn(
                f"a measurement in {self.path} does not match its integrity tag (edited, or "
                "not written by this installation): measuring it again",
                stacklevel=2,
            )
        return m

    def put(self, spec_json: str, schedule: Any, m: Measurement) -> None:
        key = self._key(spec_json, schedule)
        value = json.dumps(dict(asdict(m), cached=False), sort_keys=True)
        tag = integrity.tag(self._signed(key, value), TAG_PURPOSE)
        self.db.execute(
            "INSERT OR REPLACE INTO measurements (pipeline, schedule, host, halide, threads,"
            " protocol, value, created, tag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, value, time.time(), tag),
        )
        self.db.commit()

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]


def _measurement(value: str) -> Measurement | None:
    """A stored value as a cache hit, or None unless it is a well-formed measurement with a
    finite positive time."""
    try:
        obj = json.loads(value)
        names = {f.name for f in fields(Measurement)}
        if not isinstance(obj, dict) or not set(obj) <= names:
            return None
        m = Measurement(**dict(obj, cached=True))
    except (ValueError, TypeError):
        return None
    if not _positive(m.time_s):
        return None
    if m.ratio is not None or m.reference_s is not None or m.ratios is not None:
        ratios = m.ratios if isinstance(m.ratios, list) else [None]
        if not (_positive(m.ratio) and _positive(m.reference_s) and ratios):
            return None
        if not all(_positive(r) for r in ratios):
            return None
    return m


def _positive(t: Any) -> bool:
    """Whether ``t`` is a finite number > 0 (not a bool)."""
    return not isinstance(t, bool) and isinstance(t, (int, float)) and 0 < t < float("inf")


class Timer:
    """Measures schedules of pipelines through a worker, optionally through a cache."""

    def __init__(
        self,
        threads: int = 1,
        samples: int = 15,
        cache_path: str | os.PathLike | None = None,
        timeout_s: float = 300.0,
    ):
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.worker = HalideWorker(threads, timeout_s)
        self.samples = samples
        self.threads = threads
        self.cache_path = cache_path
        self._cache: MeasurementCache | None = None
        self.measurements = 0  # real measurements made (cache hits excluded)
        self.seconds = 0.0  # wall time spent in real measurements

    @property
    def clock(self) -> str:
        """The worker's clock: CPU time for one thread (immune to other processes taking
        the core), wall time for several (see ``worker.CLOCKS``)."""
        return "cpu" if self.threads == 1 else "wall"

    @property
    def host(self) -> str:
        if self.worker.target is None:
            self.worker._start()
        return f"{self.worker.target}|{cpu_model()}"

    @property
    def cache(self) -> MeasurementCache | None:
        if self.cache_path is not None and self._cache is None:
            protocol = (
                f"samples={self.samples},warm={WARM_S},min_s={MIN_TIMED_S},clock={self.clock}"
            )
            self._cache = MeasurementCache(self.cache_path, self.host, self.threads, protocol)
        return self._cache

    def measure(
        self,
        spec_json: str,
        schedule: Any,
        slow_limit_s: float | None = None,
        fresh: bool = False,
    ) -> Measurement:
        """Time ``schedule`` ("naive", ``("autoscheduler", name, params)`` or a dict of stage
        name -> StageSchedule); ``MeasureError`` on a compile error, crash or timeout (never
        stored). ``fresh``: measure even when the cache holds it (and store the new one)."""
        request = {"spec": spec_json, "schedule": schedule, "samples": self.samples}
        return self._through_cache(spec_json, _jsonable(schedule), request, slow_limit_s, fresh)

    def measure_paired(
        self,
        spec_json: str,
        schedule: Any,
        reference: Any,
        slow_limit_s: float | None = None,
        fresh: bool = False,
        timeout_s: float | None = None,
    ) -> Measurement:
        """Time ``schedule`` against ``reference`` (both as for :meth:`measure`) in rounds
        in one worker (:func:`optgym.envs.schedule.worker.time_paired`): the measurement's
        ``ratio`` is how many times faster ``schedule`` ran than ``reference`` (median over
        rounds), ``time_s`` and ``reference_s`` each side's minimum. Cached under the pair
        and the pairing's settings. ``timeout_s``: seconds this measurement may take,
        compiling included (default the worker's); past them the worker is killed
        (``WorkerTimeout``)."""
        request = {"spec": spec_json, "schedule": schedule, "pair": reference}
        key = paired_key(schedule, reference)
        return self._through_cache(spec_json, key, request, slow_limit_s, fresh, timeout_s)

    def _through_cache(
        self,
        spec_json: str,
        key: Any,
        request: dict[str, Any],
        slow_limit_s: float | None,
        fresh: bool,
        timeout_s: float | None = None,
    ) -> Measurement:
        """The cache's measurement under ``key`` (unless ``fresh``; a paired one only if it
        holds a ratio), else the worker's reply to ``request`` (output checked, on this
        timer's clock), stored under ``key``."""
        cache = self.cache
        if cache is not None and not fresh:
            hit = cache.get(spec_json, key)
            if hit is not None and ("pair" not in request or hit.ratio is not None):
                return hit
        m = _from_result(
            self._request(
                {**request, "check": True, "slow_limit_s": slow_limit_s, "clock": self.clock},
                timeout_s,
            )
        )
        if cache is not None:
            cache.put(spec_json, key, m)
        return m

    def _request(self, request: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            return self.worker.request(request, timeout_s)
        finally:
            self.seconds += time.perf_counter() - start
            self.measurements += 1

    def close(self) -> None:
        self.worker.close()


_PAIR_PROTOCOL = f"rounds={PAIR_ROUNDS},burst_s={PAIR_BURST_S},min_runs={PAIR_MIN_RUNS}"


def paired_key(schedule: Any, reference: Any) -> list[Any]:
    """What the cache keeps a paired measurement of ``schedule`` against ``reference``
    under (the pairing's settings included)."""
    return ["paired", _PAIR_PROTOCOL, _jsonable(reference), _jsonable(schedule)]


def _from_result(result: dict[str, Any]) -> Measurement:
    """A worker's reply as a measurement."""
    return Measurement(
        time_s=result["time_s"],
        times=result["times"],
        output_ok=result["output_ok"],
        compile_s=result["compile_s"],
        early_stop=result["early_stop"],
        schedule_source=result["schedule_source"],
        clamped_inputs=result.get("clamped_inputs", False),
        timed_runs=result.get("timed_runs", len(result["times"])),
        timed_s=result.get("timed_s", sum(result["times"])),
        ratio=result.get("ratio"),
        reference_s=result.get("reference_s"),
        ratios=result.get("ratios"),
    )


def _jsonable(schedule: Any) -> Any:
    if isinstance(schedule, dict):
        return {k: v.key() if hasattr(v, "key") else v for k, v in schedule.items()}
    return schedule
