"""Inference time of the shipped graph networks on a batch of 64 padded graphs.

``ProgramlExtractor`` (pass ordering) runs on the Programl graphs of two small programs
(``llvm-stress-v0`` seeds 2000 and 2001, 32 copies each, padded to 4096 nodes and 8192
edges); the reference is what the env takes to compute the same 64 observations
(``env.unwrapped.observation["Programl"]``, padded), so a forward must not be what a rollout
waits for. ``BipartiteExtractor`` (LNS) runs on 64 random variable-constraint graphs of 200
variables and 100 constraints (four nonzeros each) padded as the LNS hyperparameters pad
them; its target is under the 0.5 CPU seconds a training step's sub-MIP may take.
Each forward is the best of three after one warm-up, torch on one thread.

Usage: python benchmarks/gnn_forward.py
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch

import optgym  # noqa: F401  registers the envs
from optgym.agents.lns.gnn import BipartiteExtractor
from optgym.agents.passes.gnn import ProgramlExtractor
from optgym.wrappers import FixedScores, PaddedGraph

PROGRAMS = ("generator://llvm-stress-v0/2000", "generator://llvm-stress-v0/2001")
BATCH = 64


def as_batch(observations: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Padded observations stacked as SB3 gives them to a features extractor (floats)."""
    return {k: torch.as_tensor(np.stack([o[k] for o in observations])).float()
            for k in observations[0]}  # fmt: skip


def forward_seconds(extractor: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """Best of three inference forwards, in seconds (after one warm-up)."""
    with torch.no_grad():
        extractor(batch)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            extractor(batch)
            times.append(time.perf_counter() - start)
    return min(times)


def random_bipartite(space: gym.spaces.Dict, seed: int, n: int = 200, m: int = 100) -> dict:
    """A random padded LNS-like observation: ``n`` variables, ``m`` constraints, four
    nonzeros per constraint."""
    rng = np.random.default_rng(seed)
    obs = {k: np.zeros(s.shape, s.dtype) for k, s in space.spaces.items()}
    obs["nodes"][: n + m, 1:] = rng.random((n + m, 7))
    obs["nodes"][n : n + m, 0] = 1
    cons = np.repeat(np.arange(m), 4)
    obs["edge_index"][:, : 4 * m] = [rng.integers(0, n, 4 * m), n + cons]
    obs["edge_attr"][: 4 * m, 0] = rng.uniform(-1, 1, 4 * m)
    obs["num_nodes"][0], obs["num_edges"][0] = n + m, 4 * m
    return obs


def main() -> None:
    torch.set_num_threads(1)
    figures = []
    env = PaddedGraph(gym.make("optgym/PassOrdering-v0", observation_space="Programl"),
                      4096, 8192, truncate=True)  # fmt: skip
    try:
        observations, seconds = [], 0.0
        for program in PROGRAMS:
            env.reset(options={"benchmark": program})
            for _ in range(BATCH // len(PROGRAMS)):
                start = time.perf_counter()
                observations.append(env.observation(env.unwrapped.observation["Programl"]))
                seconds += time.perf_counter() - start
        batch = as_batch(observations)
        forward = forward_seconds(ProgramlExtractor(env.observation_space).eval(), batch)
        nodes = int(batch["num_nodes"].sum())
        print(f"ProgramlExtractor: batch of {BATCH} ({nodes} nodes): {forward * 1e3:.1f} ms; "
              f"the env computes them in {seconds * 1e3:.1f} ms")  # fmt: skip
        figures.append(f"programl_forward_ms: {forward * 1e3:.1f} (target: <= reference)")
        figures.append(f"programl_observations_ms: {seconds * 1e3:.1f} (target: reference)")
    finally:
        env.close()
    lns = FixedScores(PaddedGraph(gym.make("optgym/ILPNeighborhood-v0"), 8192, 32768), size=4096)
    try:
        space = lns.observation_space
        batch = as_batch([random_bipartite(space, seed) for seed in range(BATCH)])
        forward = forward_seconds(BipartiteExtractor(space).eval(), batch)
        print(f"BipartiteExtractor: batch of {BATCH} (300 nodes, 400 edges each): "
              f"{forward * 1e3:.1f} ms")  # fmt: skip
        figures.append(f"bipartite_forward_ms: {forward * 1e3:.1f} (target: <= 500)")
    finally:
        lns.close()
    print("\n".join(figures))


if __name__ == "__main__":
    main()
