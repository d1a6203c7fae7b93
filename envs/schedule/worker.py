"""The Halide worker process: lowers a pipeline, schedules it, JIT-compiles it and times it.

Started by :class:`optgym.envs.schedule.measure.HalideWorker` as
``python -m optgym.envs.schedule.worker`` with ``HL_NUM_THREADS`` set. Requests and replies
are length-prefixed pickles on a private copy of stdout / on stdin (fd 1 itself goes to
stderr, so nothing Halide prints can corrupt a reply). A crash in Halide or in JIT code (an
abort, a segfault) ends only this process.

Timing protocol: one warm-up call, whose output is checked against the NumPy reference,
more calls until ``WARM_S`` seconds have passed, then the minimum of at least ``samples``
timed back-to-back calls, more while they add up to less than ``MIN_TIMED_S`` seconds, in
CPU time with one Halide thread and in wall time with more (see ``CLOCKS``). A
schedule whose warm-up takes longer than ``slow_limit_s`` is timed once more and no further
("early stop").
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import time
import traceback
from typing import Any, BinaryIO

HEADER = struct.Struct("<Q")
# Seconds of back-to-back runs before timing. On a shared VM an idle core comes back slow
# (cold caches, lower clock); measured on this project's 2-core machine, timing right after
# one warm-up run spread by up to 3x across processes on a memory-bound pipeline.
WARM_S = 0.2
# Timed runs go on past ``samples`` until they add up to this many seconds (at most
# MAX_SAMPLES runs): the minimum of 15 runs of a 0.3 ms kernel (5 ms of timing) moved by
# 30-50% between processes on the loaded 2-core machine; over 0.1 s it is far steadier.
MIN_TIMED_S = 0.1
MAX_SAMPLES = 2000
# What a run's time is read from: "cpu" is the process's CPU time, right for one Halide
# thread (the calling thread does all the work) and blind to the time the OS gives other
# processes: on the loaded 2-core machine the wall-clock minimum of a 7 ms naive run came out
# 10 ms (every run preempted at least once), its CPU time 7.0 ms. Several threads need "wall".
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
TIMES_KEPT = 64
AUTOSCHEDULERS = {
    "Adams2019": "libautoschedule_adams2019.so",
    "Li2018": "libautoschedule_li2018.so",
    "Mullapudi2016": "libautoschedule_mullapudi2016.so",
    "Anderson2021": "libautoschedule_anderson2021.so",
}


def write_message(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def read_message(stream: BinaryIO) -> Any:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        raise EOFError
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def time_pipeline(
    lowered: Any,
    target: Any,
    reference: Any,
    samples: int = 15,
    slow_limit_s: float | None = None,
    min_time_s: float = MIN_TIMED_S,
    clock: str = "wall",
) -> dict[str, Any]:
    """Compile a scheduled pipeline, run it once (checking the output against
    ``reference`` unless None), then time at least ``samples`` runs, more until they add up
    to ``min_time_s`` seconds (one run only, past ``slow_limit_s``), on ``clock`` (see
    :data:`CLOCKS`)."""
    now = CLOCKS[clock]
    from optgym.datasets.schedule.ops import outputs_match
    from optgym.envs.schedule.lower import to_numpy

    start = time.perf_counter()
    lowered.pipeline.compile_jit(target)
    compile_s = time.perf_counter() - start
    buf = lowered.output_buffer()
    start = now()
    lowered.realize(buf)
    warmup = now() - start
    ok = None if reference is None else bool(outputs_match(to_numpy(buf), reference))
    n = 1 if slow_limit_s is not None and warmup > slow_limit_s else samples
    if n > 1:  # keep the core busy on this pipeline until it runs at its steady speed
        until = time.perf_counter() + WARM_S
        while time.perf_counter() < until:
            lowered.realize(buf)
    times: list[float] = []
    total = 0.0
    while len(times) < n or (n > 1 and total < min_time_s and len(times) < MAX_SAMPLES):
        start = now()
        lowered.realize(buf)
        times.append(now() - start)
        total += times[-1]
    return {
        "time_s": min(times),
        "times": times[:TIMES_KEPT],  # the result line keeps a few; the minimum is over all
        "timed_runs": len(times),
        "timed_s": total,
        "warmup_s": warmup,
        "output_ok": ok,
        "compile_s": compile_s,
        "early_stop": n < samples,
    }


# Paired timing (``time_paired``): rounds of a short burst of the reference schedule and
# one of the candidate, in alternating order, each burst the minimum of at least
# PAIR_MIN_RUNS runs that add up to PAIR_BURST_S seconds (one run of a naive schedule that
# takes 80 ms is a burst); the figure is the median of the rounds' ratios. A slow spell of
# the host then slows both sides of the rounds it falls in.
PAIR_ROUNDS = 15
PAIR_BURST_S = 0.01
PAIR_MIN_RUNS = 1


def _burst(
    lowered: Any, buf: Any, now: Any, seconds: float, min_runs: int
) -> tuple[float, int, float]:
    """(minimum, count, sum) of back-to-back runs: at least ``min_runs``, more until they add
    up to ``seconds`` (at most MAX_SAMPLES)."""
    best, total, runs = float("inf"), 0.0, 0
    while runs < min_runs or (total < seconds and runs < MAX_SAMPLES):
        start = now()
        lowered.realize(buf)
        took = now() - start
        best, total, runs = min(best, took), total + took, runs + 1
    return best, runs, total


def time_paired(
    candidate: Any,
    reference: Any,
    target: Any,
    expected: Any,
    rounds: int = PAIR_ROUNDS,
    slow_limit_s: float | None = None,
    burst_s: float = PAIR_BURST_S,
    clock: str = "wall",
) -> dict[str, Any]:
    """Time a candidate schedule against a reference schedule of the same pipeline in the
    same process: both compiled and run once (the candidate's output checked against
    ``expected`` unless None), warmed up in turn, then ``rounds`` rounds of one burst each
    (see :data:`PAIR_BURST_S`), the reference first in even rounds and the candidate first
    in odd ones. ``ratio`` is the median over rounds of reference / candidate (how many
    times faster the candidate is); ``time_s`` and ``reference_s`` are each side's minimum
    over all its runs. A candidate whose first run takes longer than ``slow_limit_s`` gets
    one round of single runs ("early stop")."""
    import statistics

    from optgym.datasets.schedule.ops import outputs_match
    from optgym.envs.schedule.lower import to_numpy

    now = CLOCKS[clock]
    start = time.perf_counter()
    candidate.pipeline.compile_jit(target)
    compile_s = time.perf_counter() - start
    reference.pipeline.compile_jit(target)
    bufs = candidate.output_buffer(), reference.output_buffer()
    start = now()
    candidate.realize(bufs[0])
    warmup = now() - start
    ok = None if expected is None else bool(outputs_match(to_numpy(bufs[0]), expected))
    reference.realize(bufs[1])
    early = slow_limit_s is not None and warmup > slow_limit_s
    if early:
        rounds, burst_s, min_runs = 1, 0.0, 1
    else:
        min_runs = PAIR_MIN_RUNS
        until = time.perf_counter() + WARM_S
        while time.perf_counter() < until:  # both at their steady speed before timing
            candidate.realize(bufs[0])
            reference.realize(bufs[1])
    ratios, cand, ref, runs, timed = [], [], [], 0, 0.0
    for r in range(rounds):
        order = (reference, candidate) if r % 2 == 0 else (candidate, reference)
        got = {}
        for lowered in order:
            buf = bufs[0] if lowered is candidate else bufs[1]
            got[id(lowered)], n, took = _burst(lowered, buf, now, burst_s, min_runs)
            runs, timed = runs + n, timed + took
        cand.append(got[id(candidate)])
        ref.append(got[id(reference)])
        ratios.append(ref[-1] / cand[-1])
    return {
        "time_s": min(cand),
        "reference_s": min(ref),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "times": cand[:TIMES_KEPT],
        "reference_times": ref[:TIMES_KEPT],
        "timed_runs": runs,
        "timed_s": timed,
        "warmup_s": warmup,
        "output_ok": ok,
        "compile_s": compile_s,
        "early_stop": early,
    }


class Measurer:
    """Holds the Halide module, the loaded autoscheduler plugins and per-pipeline data."""

    def __init__(self) -> None:
        import halide as hl

        self.hl = hl
        self.target = hl.get_jit_target_from_environment()
        self._plugins: set[str] = set()
        self._data: dict[str, tuple[Any, Any]] = {}

    def _load_plugin(self, name: str) -> None:
        if name in self._plugins:
            return
        if name not in AUTOSCHEDULERS:
            raise ValueError(
                f"unknown autoscheduler {name!r}; allowed: {', '.join(AUTOSCHEDULERS)}"
            )
        lib = os.path.join(os.path.dirname(self.hl.__file__), "lib64", AUTOSCHEDULERS[name])
        self.hl.load_plugin(lib)
        self._plugins.add(name)

    def _spec_data(self, spec_json: str):
        if spec_json not in self._data:
            from optgym.datasets.schedule.ops import input_data, reference_output
            from optgym.datasets.schedule.spec import PipelineSpec

            spec = PipelineSpec.from_json(spec_json)
            self._data = {spec_json: (spec, input_data(spec), reference_output(spec))}
        return self._data[spec_json]

    def _scheduled(self, spec: Any, data: Any, kind: Any, clamp: bool) -> tuple[Any, Any]:
        """The pipeline lowered and scheduled by ``kind`` ("naive", an autoscheduler or
        stage actions), and the autoscheduler's schedule source (None otherwise)."""
        from optgym.envs.schedule.actions import apply_schedule
        from optgym.envs.schedule.lower import apply_naive, lower

        lowered = lower(spec, data, clamp_inputs=clamp)
        source = None
        if kind == "naive":
            apply_naive(lowered)
        elif isinstance(kind, tuple) and kind[0] == "autoscheduler":
            _, name, params = kind
            self._load_plugin(name)
            result = lowered.pipeline.apply_autoscheduler(
                self.target, self.hl.AutoschedulerParams(name, dict(params))
            )
            source = result.schedule_source
        else:
            apply_schedule(lowered, kind)
        return lowered, source

    def measure(self, request: dict[str, Any]) -> dict[str, Any]:
        """Time ``request["schedule"]`` alone, or against ``request["pair"]`` (a reference
        schedule) with :func:`time_paired`."""
        hl = self.hl
        spec, data, reference = self._spec_data(request["spec"])
        expected = reference if request.get("check", True) else None
        for clamp in (False, True):
            lowered, source = self._scheduled(spec, data, request["schedule"], clamp)
            try:
                if request.get("pair") is not None:
                    paired, _ = self._scheduled(spec, data, request["pair"], clamp)
                    result = time_paired(
                        lowered,
                        paired,
                        self.target,
                        expected,
                        int(request.get("rounds", PAIR_ROUNDS)),
                        request.get("slow_limit_s"),
                        clock=request.get("clock", "wall"),
                    )
                    break
                result = time_pipeline(
                    lowered,
                    self.target,
                    expected,
                    int(request.get("samples", 15)),
                    request.get("slow_limit_s"),
                    float(request.get("min_time_s", MIN_TIMED_S)),
                    request.get("clock", "wall"),
                )
                break
            except hl.HalideError as e:
                # Partial tiles computed past the needed region read inputs out of bounds:
                # run that schedule again with inputs clamped to their edges.
                if clamp or "Input buffer" not in str(e) or "is accessed at" not in str(e):
                    raise
        result["clamped_inputs"] = clamp
        return dict(result, schedule_source=source)


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever Halide or JIT code prints goes to stderr
    inp = sys.stdin.buffer
    measurer = Measurer()
    write_message(
        out,
        {"target": measurer.target.to_string(), "threads": os.environ.get("HL_NUM_THREADS")},
    )
    while True:
        try:
            request = read_message(inp)
        except EOFError:
            return
        try:
            reply = {"ok": True, "result": measurer.measure(request)}
        except Exception as e:  # a compile error or a bad request ends this request only
            reply = {
                "ok": False,
                "error": f"{type(e).__name__}: {e}".strip(),
                "traceback": traceback.format_exc(limit=3),
            }
        write_message(out, reply)


if __name__ == "__main__":
    main()
