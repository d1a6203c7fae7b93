"""Try each of a list of action sequences and keep the best (e.g. a pass-sequence coreset)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym

from optgym.agents.protocol import Result
from optgym.budget import Budget, BudgetMeter


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


class SequenceListAgent:
    """Runs each sequence from the start state in order until the budget is spent and
    returns the one with the best final reward. Actions are indices or action names the
    env's ``action_index`` accepts."""

    name = "sequences"

    def __init__(self, sequences: Sequence[Sequence[int | str]] | str | Path | None = None):
        if sequences is None:
            raise ValueError("the sequences agent needs a list of sequences or a file of them")
        if isinstance(sequences, (str, Path)):
            sequences = read_sequences(sequences)
        self.sequences = [list(s) for s in sequences]

    def solve(
        self, env: gym.Env, benchmark: str, budget: Budget, seed: int | None = None
    ) -> Result:
        base = env.unwrapped
        meter = BudgetMeter(budget)
        base.reset(seed=seed, options={"benchmark": benchmark})
        best = base.state
        for sequence in self.sequences:
            if meter.exhausted:
                break
            base.reset(options={"benchmark": benchmark})
            for action in sequence:
                index = base.action_index(action) if isinstance(action, str) else int(action)
                info = base.step(index)[4]
                meter.charge(calls=int(info.get("compilation_calls", 1)), steps=1)
                if "error" in info or meter.exhausted:
                    break
            if "error" not in info and base.episode_reward > best.reward + 1e-12:
                best = base.state
        return Result(state=best, budget_used=meter.used())
