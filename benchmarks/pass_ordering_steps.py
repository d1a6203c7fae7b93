"""Steps per second of PassOrdering-v0: against its floor, an ``opt-19`` subprocess per step,
and (given an installation) CompilerGym itself, on an idle machine and with CPU-bound
processes beside it.

The episode (CompilerGym's speed test): the 124 actions once each in order, with the
Autophase observation and the IrInstructionCountOz reward. This VM's speed drifts by a
fifth within seconds, so what is compared is measured in turns: ``--rounds`` rounds, each
one episode of every contender, and each figure is the best round (as CompilerGym's own
figure is the best of its episodes). Programs:

* ``crc32``: cBench's ``crc32.bc`` as CompilerGym 0.2.5 ships it (in its wheel, under
  ``compiler_gym/third_party/cbench/cbench-v1/``). It is not part of OptGym: give
  ``--crc32 FILE``, or ``--compiler-gym PYTHON``, an interpreter that imports CompilerGym
  0.2.5, which is then timed on the same episode (``cbench-v1/crc32``) in a process of its
  own, with this process's environment: CompilerGym fetches its LLVM files on first use,
  so offline point ``COMPILER_GYM_SITE_DATA`` at a prepared copy. Without either, the
  first csmith-v0 test program with 150-350 instructions stands in, and the output says
  so.
* ``large1``, ``large2``: the first two csmith-v0 test programs with at least 2,000
  instructions.

What is measured, per program:

* the **floor**: the same pipelines in one worker process, no channel, no observation
  (``native.profile``: LLVM's pass builder kept, analyses dropped between steps, exactly
  as a step runs them), with the worker's own times for the parts of a step: pipeline
  set-up, the passes, the instruction count, the features (InstCount and Autophase);
* the **env**: ``env.step`` on the unwrapped env, its time split into the worker's share
  (its own clock, sent with each reply), the channel (a round trip that does no work,
  measured apart) and the rest in this process (the env's bookkeeping, the reward);
* the **reference**: one ``opt-19 -passes=...`` process per step, the observation read
  from its output, as a subprocess-per-step service does;
* **under load**: the env and CompilerGym again with ``--load`` CPU-bound processes
  running beside them (2 by default, as under ``optgym bench --workers 2``).

Usage: python benchmarks/pass_ordering_steps.py [--rounds 10] [--crc32 FILE]
           [--compiler-gym PYTHON] [--load 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym

import optgym  # noqa: F401  registers the env
from optgym.envs.passes import actions, native
from optgym.envs.passes.backend import LlvmSession

OBSERVATION = "Autophase"
REWARD = "IrInstructionCountOz"
N = len(actions.PIPELINES)

COMPILER_GYM_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import compiler_gym
    root = os.path.dirname(compiler_gym.__file__)
    if sys.argv[1] == "path":
        path = os.path.join(root, "third_party", "cbench", "cbench-v1", "crc32.bc")
        print(json.dumps({"path": path}))
        sys.exit(0)
    env = compiler_gym.make("llvm-v0", observation_space="Autophase",
                            reward_space="IrInstructionCountOz", benchmark="cbench-v1/crc32")
    try:
        print("ready", flush=True)
        for line in sys.stdin:  # one episode per line
            env.reset(benchmark="cbench-v1/crc32")
            start = time.perf_counter()
            for action in range(env.action_space.n):
                env.step(action)
            print(time.perf_counter() - start, flush=True)
    finally:
        env.close()
    """
)


class CompilerGym:
    """CompilerGym 0.2.5 in a process of its own, one episode on crc32 per request."""

    def __init__(self, python: str):
        self.proc = subprocess.Popen(
            [python, "-c", COMPILER_GYM_SCRIPT, "serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("CompilerGym did not start (its error is above)")

    def episode(self) -> float:
        """Seconds of one episode."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("CompilerGym failed (its error is above)")
        return float(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _busy() -> None:
    while True:
        pass


@contextmanager
def cpu_load(processes: int):
    """``processes`` CPU-bound processes running for the duration."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_busy, daemon=True) for _ in range(processes)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()


def pick_programs(env, crc32: Path | None) -> dict[str, tuple[str, Path, int]]:
    """name -> (URI, file, instructions)."""
    chosen: dict[str, tuple[str, Path, int]] = {}
    if crc32 is not None:
        uri = f"file://{crc32.resolve()}"
        env.reset(options={"benchmark": uri})
        chosen["crc32"] = (uri, crc32, int(env.observation["IrInstructionCount"][0]))
    large: list[tuple[str, Path, int]] = []
    dataset = env.datasets.dataset("generator://csmith-v0")
    for uri in dataset.benchmark_uris("test"):
        env.reset(options={"benchmark": uri})
        n = int(env.observation["IrInstructionCount"][0])
        item = (uri, env.datasets.benchmark(uri).path, n)
        if "crc32" not in chosen and 150 <= n <= 350:
            chosen["crc32"] = item
            print(f"crc32: not given (--crc32 or --compiler-gym); {uri} stands in for it")
        elif n >= 2000 and len(large) < 2:
            large.append(item)
        if "crc32" in chosen and len(large) == 2:
            break
    chosen["large1"], chosen["large2"] = large
    for key, (uri, _, n) in chosen.items():
        print(f"{key}: {uri} ({n} instructions)")
    return chosen


def round_trip(env, count: int = 2000) -> float:
    """Seconds of a request that does no work in the worker, less the worker's share."""
    session: LlvmSession = env._session
    best = float("inf")
    for _ in range(3):
        worker = 0.0
        start = time.perf_counter()
        for _ in range(count):
            session.run("", ())
            worker += session.channel.worker_seconds
        best = min(best, (time.perf_counter() - start - worker) / count)
    return best


def env_episode(env, uri: str) -> tuple[float, float]:
    """Seconds of one episode of the env, and the worker's share of it."""
    env.reset(options={"benchmark": uri})
    channel = env._session.channel
    worker = 0.0
    start = time.perf_counter()
    for a in range(N):
        info = env.step(a)[4]
        worker += channel.worker_seconds
        assert "error" not in info, info
    return time.perf_counter() - start, worker


def env_seconds(env, uri: str) -> float:
    return env_episode(env, uri)[0]


def subprocess_episode(session: LlvmSession, bitcode: Path) -> float:
    """Seconds of the episode with one opt-19 process per step and the observation read
    from each step's output."""
    with tempfile.TemporaryDirectory() as tmp:
        current = Path(tmp) / "0.bc"
        current.write_bytes(bitcode.read_bytes())
        start = time.perf_counter()
        for i, pipeline in enumerate(actions.PIPELINES):
            nxt = Path(tmp) / f"{i + 1}.bc"
            if pipeline:
                subprocess.run(
                    ["opt-19", f"-passes={pipeline}", str(current), "-o", str(nxt)],
                    check=True, cwd=tmp, capture_output=True,
                )  # fmt: skip
            else:
                nxt.write_bytes(current.read_bytes())
            session.load(nxt.read_bytes(), False)
            session.observe((OBSERVATION, "IrInstructionCount"))
            current = nxt
        return time.perf_counter() - start


def compiler_gym_crc32(python: str) -> Path:
    run = subprocess.run(
        [python, "-c", COMPILER_GYM_SCRIPT, "path"], capture_output=True, text=True, timeout=600
    )
    if run.returncode != 0:
        raise SystemExit(f"cannot import CompilerGym with {python}:\n{run.stderr[-2000:]}")
    return Path(json.loads(run.stdout.strip().splitlines()[-1])["path"])


def us(seconds: float) -> str:
    return f"{seconds / N * 1e6:.1f} us"


def in_turns(rounds: int, **contenders: Callable[[], Any]) -> dict[str, list[Any]]:
    """``rounds`` rounds of one call of each contender, in turn: name -> its results."""
    out: dict[str, list[Any]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            out[name].append(run())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--crc32", type=Path, help="CompilerGym's cbench-v1/crc32.bc")
    parser.add_argument("--compiler-gym", metavar="PYTHON",
                        help="a Python interpreter that imports CompilerGym 0.2.5")  # fmt: skip
    parser.add_argument("--load", type=int, default=2, help="CPU-bound processes beside")
    args = parser.parse_args()
    crc32 = args.crc32
    if crc32 is None and args.compiler_gym:
        crc32 = compiler_gym_crc32(args.compiler_gym)
    env = gym.make("optgym/PassOrdering-v0", observation_space=OBSERVATION,
                   reward_space=REWARD).unwrapped  # fmt: skip
    programs = pick_programs(env, crc32)
    figures: list[str] = []
    best_rate: dict[str, float] = {}
    for key, (uri, path, _) in programs.items():
        turns = in_turns(
            args.rounds if key == "crc32" else max(2, args.rounds // 4),
            floor=partial(native.profile, path, list(actions.PIPELINES), 1),
            env=partial(env_episode, env, uri),
        )  # fmt: skip
        floor = {part: min(f[part] for f in turns["floor"]) for part in turns["floor"][0]}
        total, worker = min(turns["env"])
        channel = round_trip(env) * N
        python = total - worker - channel
        reference = subprocess_episode(env._session, path)
        best_rate[key] = N / total
        print(f"\n{key}: one step, averaged over the {N} actions (best round)")
        print(f"  floor (set-up + passes, one process) {us(floor['floor'])}")
        print(f"    pipeline set-up     {us(floor['setup'])}")
        print(f"    the passes          {us(floor['passes'])}")
        print(f"    instruction count   {us(floor['inst_count'])}")
        print(f"    InstCount+Autophase {us(floor['features'])}")
        print(f"  env.step              {us(total)} ({best_rate[key]:.0f} steps/s)")
        print(f"    in the worker       {us(worker)}")
        print(f"    the channel         {us(channel)}")
        print(f"    this process (env bookkeeping, reward) {us(python)}")
        print(f"  opt-19 per step       {us(reference)} ({N / reference:.1f} steps/s)")
        target = " (target: >= 6000)" if key == "crc32" else " (target: none)"
        figures.append(f"steps_per_second_{key}: {best_rate[key]:.0f}{target}")
        figures.append(f"floor_ratio_{key}: {total / floor['floor']:.2f} (target: <= 1.5)")
        figures.append(f"speedup_vs_subprocess_{key}: {reference / total:.1f} (target: >= 30)")
    uri = programs["crc32"][0]
    cg = CompilerGym(args.compiler_gym) if args.compiler_gym else None
    rates: dict[str, dict[str, float]] = {}
    try:
        for state in ("idle", "loaded"):
            contenders: dict[str, Callable[[], Any]] = {"env": partial(env_seconds, env, uri)}
            if cg is not None:
                contenders["compiler_gym"] = cg.episode
            with cpu_load(args.load if state == "loaded" else 0):
                turns = in_turns(args.rounds, **contenders)
            rates[state] = {name: N / min(times) for name, times in turns.items()}
    finally:
        if cg is not None:
            cg.close()
        env.close()
    print(f"\ncrc32, in turns with CompilerGym: {rates['idle']['env']:.0f} steps/s idle, "
          f"{rates['loaded']['env']:.0f} with {args.load} CPU-bound processes beside")  # fmt: skip
    figures.append(f"steps_per_second_crc32_loaded: {rates['loaded']['env']:.0f} (target: none)")
    if cg is not None:
        idle, loaded = rates["idle"]["compiler_gym"], rates["loaded"]["compiler_gym"]
        print(f"CompilerGym: {idle:.0f} steps/s idle, {loaded:.0f} loaded")
        figures.append(f"compiler_gym_steps_per_second_idle: {idle:.0f} (target: reference)")
        figures.append(f"compiler_gym_steps_per_second_loaded: {loaded:.0f} (target: reference)")
        figures.append(f"speedup_vs_compiler_gym_idle: {rates['idle']['env'] / idle:.2f} "
                       "(target: >= 3)")  # fmt: skip
        figures.append(f"speedup_vs_compiler_gym_loaded: {rates['loaded']['env'] / loaded:.2f} "
                       "(target: >= 2)")  # fmt: skip
    else:
        print("CompilerGym: not timed (give --compiler-gym PYTHON)")
    print("\n".join(figures))


if __name__ == "__main__":
    main()
