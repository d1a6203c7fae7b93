"""CompilerGym's state CSV (``benchmark,reward,walltime,commandline``), both ways.

The commandline column is an ``opt`` invocation with CompilerGym's flag names:
``opt -sroa -gvn input.bc -o output.bc``. A leading ``-Oz``/``-O3`` stands for the env's
reference pipeline. The CSV names no reward space: the reader takes it as an argument.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from optgym.envs.passes.actions import FLAGS, action_index, flatten
from optgym.state import EpisodeState

HEADER = ("benchmark", "reward", "walltime", "commandline")
_REFERENCE_FLAGS = {"-Oz": "Oz", "-O3": "O3"}


def commandline(actions: Iterable[int | str], reference: str | None = None) -> str:
    """``opt <flags> input.bc -o output.bc`` for a reference and a list of actions (a pass
    sequence among them gives its passes)."""
    ref = {"Oz": ["-Oz"], "O3": ["-O3"]}.get(reference or "", [])
    flags = ref + [FLAGS[a] if isinstance(a, int) else a for a in flatten(actions)]
    return " ".join(["opt", *flags, "input.bc", "-o", "output.bc"])


def write_csv(states: Iterable[EpisodeState], path: str | Path) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for s in states:
            out.writerow(
                [
                    s.benchmark,
                    repr(float(s.reward)),
                    f"{s.walltime:.6f}",
                    commandline(s.actions, s.reference),
                ]
            )


def parse_commandline(text: str) -> tuple[str | None, list[int]]:
    """(reference, action indices) of an ``opt ... input.bc -o output.bc`` command line."""
    words = text.split()
    if not words or words[0] != "opt":
        raise ValueError(f"commandline must start with 'opt', got {text!r}")
    words = words[1:]
    if len(words) >= 3 and words[-2] == "-o":
        words = words[:-3]  # input.bc -o output.bc
    reference = None
    if words and words[0] in _REFERENCE_FLAGS:
        reference = _REFERENCE_FLAGS[words.pop(0)]
    return reference, [action_index(w) for w in words]


def read_csv(
    path: str | Path,
    reward_space: str = "IrInstructionCountOz",
    env_id: str = "optgym/PassOrdering-v0",
) -> list[EpisodeState]:
    """States from a CompilerGym CSV; ``ValueError`` naming the row that is malformed."""
    states = []
    with Path(path).open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or tuple(h.strip() for h in header) != HEADER:
            raise ValueError(f"{path}: header must be {','.join(HEADER)}, got {header}")
        for lineno, row in enumerate(rows, 2):
            if not row:
                continue
            if len(row) != len(HEADER):
                raise ValueError(f"{path}:{lineno}: expected {len(HEADER)} columns, got {len(row)}")
            try:
                reference, actions = parse_commandline(row[3])
                states.append(
                    EpisodeState(
                        env_id=env_id,
                        benchmark=row[0],
                        reward_space=reward_space,
                        actions=actions,
                        reward=float(row[1]),
                        reference=reference,
                        walltime=float(row[2]),
                    )
                )
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: {e}") from None
    return states
