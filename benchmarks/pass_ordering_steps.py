"""Steps per second of PassOrdering-v0 against an ``opt-19`` subprocess per step.

The episode: 124 steps, each action once in order, Autophase observation and
IrInstructionCountOz reward. Programs: the first csmith-v0 test program with 250-600
instructions ("small") and the first two with at least 2,000. The reference runs the same
pipelines with one ``opt-19 -passes=...`` process per step and reads the same observation
from its output, as a subprocess-per-step service does.

Usage: python benchmarks/pass_ordering_steps.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import gymnasium as gym

import optgym  # noqa: F401  registers the env
from optgym.envs.passes import actions, native


def pick_programs(env) -> dict[str, str]:
    small, large = None, []
    for uri in env.datasets.dataset("generator://csmith-v0").benchmark_uris("test"):
        env.reset(options={"benchmark": uri})
        n = int(env.observation["IrInstructionCount"][0])
        if small is None and 250 <= n <= 600:
            small = (uri, n)
        elif n >= 2000 and len(large) < 2:
            large.append((uri, n))
        if small and len(large) == 2:
            break
    chosen = {"small": small, "large1": large[0], "large2": large[1]}
    for key, (uri, n) in chosen.items():
        print(f"{key}: {uri} ({n} instructions)")
    return {key: uri for key, (uri, _) in chosen.items()}


def env_steps_per_second(env, uri: str, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        env.reset(options={"benchmark": uri})
        start = time.perf_counter()
        for a in range(env.action_space.n):
            info = env.step(a)[4]
            assert "error" not in info, info
        rates.append(env.action_space.n / (time.perf_counter() - start))
    return statistics.median(rates)


def subprocess_steps_per_second(bitcode: Path) -> float:
    lib = native.load()
    ic = (ctypes.c_int64 * native.INSTCOUNT_DIM)()
    ap = (ctypes.c_int64 * native.AUTOPHASE_DIM)()
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
            data = nxt.read_bytes()
            mod = lib.og_load(data, len(data), 0)
            lib.og_features(mod, ic, ap)
            lib.og_inst_count(mod)
            lib.og_free(mod)
            current = nxt
        return len(actions.PIPELINES) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env = gym.make(
        "optgym/PassOrdering-v0", observation_space="Autophase", reward_space="IrInstructionCountOz"
    ).unwrapped
    programs = pick_programs(env)
    figures = []
    for key, uri in programs.items():
        ours = env_steps_per_second(env, uri, args.repeats)
        theirs = subprocess_steps_per_second(env.datasets.benchmark(uri).path)
        print(f"{key}: env {ours:.0f} steps/s, opt-19 subprocess {theirs:.1f} steps/s")
        target = " (target: >= 4000)" if key == "small" else " (target: none)"
        figures.append(f"steps_per_second_{key}: {ours:.0f}{target}")
        figures.append(f"subprocess_steps_per_second_{key}: {theirs:.1f} (target: reference)")
        figures.append(f"speedup_vs_subprocess_{key}: {ours / theirs:.1f} (target: >= 30)")
    env.close()
    print("\n".join(figures))


if __name__ == "__main__":
    main()
