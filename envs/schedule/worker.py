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

    def measure(self, request: dict[str, Any]) -> dict[str, Any]:
        from optgym.envs.schedule.actions import apply_schedule
        from optgym.envs.schedule.lower import apply_naive, lower

        hl = self.hl
        spec, data, reference = self._spec_data(request["spec"])
        kind = request["schedule"]
        for clamp in (False, True):
            lowered = lower(spec, data, clamp_inputs=clamp)
            source = None
            if kind == "naive":
                apply_naive(lowered)
            elif isinstance(kind, tuple) and kind[0] == "autoscheduler":
                _, name, params = kind
                self._load_plugin(name)
                result = lowered.pipeline.apply_autoscheduler(
                    self.target, hl.AutoschedulerParams(name, dict(params))
                )
                source = result.schedule_source
            else:
                apply_schedule(lowered, kind)
            try:
                result = time_pipeline(
                    lowered,
                    self.target,
                    reference if request.get("check", True) else None,
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
