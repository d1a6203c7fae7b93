"""Try each of a list of action sequences and keep the best (e.g. a pass-sequence coreset)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import gymnasium as gym

from optgym.agents.protocol import Result, metered, solved
from optgym.budget import Budget


def read_sequences(path: str | Path) -> list[list[str]]:
    """One sequence per line, actions separated by spaces (``-sroa -gvn``); ``#`` comments."""
    out = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line.split())
    if not out:
        raise ValueError(f"{path} holds no action sequences")
    return out


@dataclass
class SequenceListAgent:
    """Runs each sequence from the start state in order until the budget is spent and
    returns the one with the best final reward. Actions are indices or action names the
    env's ``action_index`` accepts."""

    stochastic: ClassVar[bool] = False  # the seed changes nothing

    sequences: str | Path | list[list[int | str]] | None = None
    """a file of action sequences, one a line (``-sroa -gvn``), or the list itself"""

    def __post_init__(self) -> None:
        if self.sequences is None:
            raise ValueError("the sequences agent needs a list of sequences or a file of them")
        if isinstance(self.sequences, (str, Path)):
            self.sequences = read_sequences(self.sequences)
        self.sequences = [list(s) for s in self.sequences]

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        with metered(env, budget, self, benchmark=benchmark, seed=seed) as meter:
            best = base.state
            for sequence in self.sequences:
                if meter.room() == 0:
                    break
                base.reset(options={"benchmark": benchmark})
                info: dict = {}
                for action in sequence:
                    index = base.action_index(action) if isinstance(action, str) else int(action)
                    info = base.step(index)[4]
                    if "error" in info or meter.room() == 0:
                        break
                if "error" not in info and base.episode_reward > best.reward + 1e-12:
                    best = base.state
            return solved(env, meter, best)
