"""Draw a new benchmark on every reset: training on a dataset split, not one instance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np


class BenchmarkSampler(gym.Wrapper):
    """On each ``reset()`` without a ``benchmark`` option, draw one of ``benchmarks`` (URIs)
    uniformly at random and reset on it.

    The draws come from the sampler's own generator, seeded by ``seed`` (or, when ``seed``
    is None, by the first ``reset(seed=...)``), so a run gives the same sequence of
    benchmarks on any machine. In a vector env give each sub-env its own sampler and seed
    (``optgym.train.make_vec_env`` does): sub-envs then draw different benchmarks. A reset
    that names a benchmark (``options={"benchmark": uri}``) uses it and draws nothing.

    >>> env = BenchmarkSampler(gym.make("optgym/PassOrdering-v0"),
    ...                        ["generator://csmith-v0/2000", "generator://csmith-v0/2001"], 0)
    """

    def __init__(self, env: gym.Env, benchmarks: Sequence[str], seed: int | None = None):
        super().__init__(env)
        uris = list(benchmarks)
        if not uris:
            raise ValueError("BenchmarkSampler needs at least one benchmark URI")
        bad = [u for u in uris if not isinstance(u, str) or "://" not in u]
        if bad:
            raise ValueError(
                f"BenchmarkSampler takes benchmark URIs (scheme://dataset-vN/name); "
                f"{len(bad)} of the {len(uris)} given are not"
            )
        self.benchmarks = uris
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self.current: str | None = None

    def draw(self) -> str:
        """The next benchmark URI of the sequence."""
        if self._rng is None:
            self._rng = np.random.default_rng(0)
        return self.benchmarks[int(self._rng.integers(len(self.benchmarks)))]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if self._rng is None and seed is not None:
            self._rng = np.random.default_rng(seed)
        options = dict(options or {})
        if "benchmark" not in options:
            options["benchmark"] = self.draw()
        self.current = options["benchmark"]
        return self.env.reset(seed=seed, options=options)
