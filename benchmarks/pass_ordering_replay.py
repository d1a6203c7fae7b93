"""Exact replay of random PassOrdering-v0 episodes, and their instruction counts against
``opt-19``.

Each episode: a csmith-v0 or llvm-stress-v0 test program (taken in turn), 45 random actions
(the env's step limit; an episode's actions come from its own seed), the Autophase
observation and the IrInstructionCountOz reward. Its state is then replayed in a second env
(a worker of its own, ``env.apply``), whose reward must be the very same float. Every
``--opt-every``-th episode is also run as its ``opt-19`` command line (``commandline()``) on
the program's file, and the output's instruction count must equal the env's; so are
``--debian`` random episodes on each debian-v0 program built on this machine.

Usage: python benchmarks/pass_ordering_replay.py [--episodes 1000] [--opt-every 20]
           [--debian 2]
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
from optgym.datasets.passes.debian import bitcode_path

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


def opt_agrees(env, counter, uri: str, tmp: str) -> bool:
    """Whether ``opt-19`` running the episode's command line on the program's file gives
    the instruction count the env holds."""
    out = Path(tmp) / "out.bc"
    source = env.datasets.benchmark(uri).path
    command = env.commandline(input=str(source), output=str(out))
    subprocess.run(shlex.split(command), check=True, capture_output=True, cwd=tmp)
    return count_file(counter, out) == int(env.observation["IrInstructionCount"][0])


def random_episode(env, uri: str, seed: int) -> bool:
    """45 random actions on ``uri``; False when LLVM crashed (an LLVM bug on a pass)."""
    rng = random.Random(seed)
    env.reset(options={"benchmark": uri})
    for _ in range(STEPS):
        if "error" in env.step(rng.randrange(env.action_space.n))[4]:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--opt-every", type=int, default=20)
    parser.add_argument("--debian", type=int, default=2, help="episodes per debian-v0 program")
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
            if not random_episode(env, uri, i):
                errors += 1
                continue
            state = env.state
            try:
                again = replay.apply(state)
            except RuntimeError as e:  # LLVM crashed in the replay, not in the episode
                mismatches.append(f"{uri} seed {i}: the replay failed: {e}")
                continue
            if again == state.reward:
                exact += 1
            else:
                mismatches.append(f"{uri} seed {i}: {state.reward!r} != {again!r}")
            if i % args.opt_every == 0:
                checked += 1
                agreed += opt_agrees(env, counter, uri, tmp)
        debian = env.datasets.dataset("benchmark://debian-v0")
        built = [
            f"benchmark://debian-v0/{name}"
            for name in debian.benchmark_names("test")
            if bitcode_path(name).is_file()
        ]
        debian_checked = debian_agreed = 0
        for uri in tqdm(built * args.debian, desc="debian-v0", unit="episode"):
            if random_episode(env, uri, 10_000 + debian_checked):
                debian_agreed += opt_agrees(env, counter, uri, tmp)
            debian_checked += 1
    for line in mismatches[:20]:
        print("mismatch:", line)
    replayed = args.episodes - errors
    print(f"{errors} of {args.episodes} episodes ended with an LLVM crash and were not replayed")
    print(f"replayed_exactly: {exact}/{replayed} (target: {replayed}/{replayed})")
    print(f"opt19_count_agrees: {agreed}/{checked} (target: {checked}/{checked})")
    d = debian_checked
    print(f"opt19_count_agrees_debian: {debian_agreed}/{d} (target: {d}/{d})")
    for e in (env, replay, counter):
        e.close()


if __name__ == "__main__":
    main()
