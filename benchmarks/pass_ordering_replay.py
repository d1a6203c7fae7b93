"""Exact replay of random PassOrdering-v0 episodes, and their instruction counts against
``opt-19``.

Each episode: a csmith-v0 or llvm-stress-v0 test program (taken in turn), 45 random actions
(the env's step limit; an episode's actions come from its own seed), the Autophase
observation and the IrInstructionCountOz reward. Its state is then replayed in a second env
(a worker of its own, ``env.apply``), whose reward must be the very same float. Every
``--opt-every``-th episode is also run as its ``opt-19`` command line (``commandline()``) on
the program's file, and the output's instruction count must equal the env's.

Usage: python benchmarks/pass_ordering_replay.py [--episodes 1000] [--opt-every 20]
"""

from __future__ import annotations

import argparse
import random
import shlex
import subprocess
import tempfile
from pathlib import Path

import gymnasium as gym
from tqdm import tqdm

import optgym  # noqa: F401  registers the env

STEPS = 45


def programs(env, count: int) -> list[str]:
    """``count`` program URIs, csmith-v0 and llvm-stress-v0 test programs in turn."""
    sets = [
        list(env.datasets.dataset(f"generator://{name}").benchmark_uris("test"))
        for name in ("csmith-v0", "llvm-stress-v0")
    ]
    return [sets[i % 2][(i // 2) % len(sets[i % 2])] for i in range(count)]


def count_file(env, path: Path) -> int:
    """The instruction count of the bitcode file ``path``, as the env's worker counts it."""
    return env._session.load(path.read_bytes(), False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--opt-every", type=int, default=20)
    args = parser.parse_args()
    make = dict(observation_space="Autophase", reward_space="IrInstructionCountOz")
    env = gym.make("optgym/PassOrdering-v0", **make).unwrapped
    replay = gym.make("optgym/PassOrdering-v0", **make).unwrapped
    counter = gym.make("optgym/PassOrdering-v0", **make).unwrapped
    counter.reset()
    exact = errors = checked = agreed = 0
    mismatches: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        uris = programs(env, args.episodes)
        for i, uri in enumerate(tqdm(uris, desc="episodes", unit="episode")):
            rng = random.Random(i)
            env.reset(options={"benchmark": uri})
            crashed = False
            for _ in range(STEPS):
                if "error" in env.step(rng.randrange(env.action_space.n))[4]:
                    crashed = True  # an LLVM crash (an LLVM bug on this program and pass)
                    break
            if crashed:
                errors += 1
                continue
            state = env.state
            if replay.apply(state) == state.reward:
                exact += 1
            else:
                mismatches.append(f"{uri} seed {i}: {state.reward!r} != {replay.episode_reward!r}")
            if i % args.opt_every == 0:
                out = Path(tmp) / "out.bc"
                source = env.datasets.benchmark(uri).path
                command = env.commandline(input=str(source), output=str(out))
                subprocess.run(shlex.split(command), check=True, capture_output=True, cwd=tmp)
                checked += 1
                agreed += count_file(counter, out) == int(env.observation["IrInstructionCount"][0])
    for line in mismatches[:20]:
        print("mismatch:", line)
    replayed = args.episodes - errors
    print(f"{errors} of {args.episodes} episodes ended with an LLVM crash and were not replayed")
    print(f"replayed_exactly: {exact}/{replayed} (target: {replayed}/{replayed})")
    print(f"opt19_count_agrees: {agreed}/{checked} (target: {checked}/{checked})")
    for e in (env, replay, counter):
        e.close()


if __name__ == "__main__":
    main()
