"""The options and arguments that several commands share: ``--seeds`` and the executor
options of ``optgym bench``, ``optgym train`` and ``optgym leaderboard run`` and ``rerun``
(:mod:`optgym.cli`, :mod:`optgym.leaderboard.cli`), and where ``--agent mymod:MyAgent``
finds ``mymod``.

>>> parse_seeds("0-3,7")
[0, 1, 2, 3, 7]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from optgym.result_line import MAX_SEED

#: The most seeds one ``--seeds`` may name (each is an episode per agent and benchmark).
MAX_SEEDS = 100_000
_SEED_ITEM = re.compile(r"(0|[1-9][0-9]*)(?:-(0|[1-9][0-9]*))?")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"``, ``"0-9"`` (inclusive) or a mix such as ``"0-4,10"``."""
    seeds: dict[int, None] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _SEED_ITEM.fullmatch(part)
        lo, hi = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (0, -1)
        if not m or hi < lo:
            raise ValueError(
                f"bad seed {part!r} in --seeds; expected non-negative integers or ranges, "
                "e.g. 0,1,2 or 0-9"
            )
        if hi >= MAX_SEED:
            raise ValueError(f"seed {hi} in --seeds is too large; seeds are below 2**63")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise ValueError(f"--seeds names more than {MAX_SEEDS} seeds")
        seeds.update(dict.fromkeys(range(lo, hi + 1)))
    if not seeds:
        raise ValueError("no seed in --seeds; e.g. 0,1,2 or 0-9")
    return list(seeds)


def allow_local_plugins() -> None:
    """Let ``--agent mymod:MyAgent`` import ``mymod.py`` from the working directory (the
    episodes' processes inherit ``sys.path``). The folder goes last on the path: a module
    there never stands in for an installed one (a ``queue.py`` is not the standard
    library's). Only the commands that run the user's own agents call this; ``validate``
    and the leaderboard's ``verify``, ``add`` and ``rerun`` import nothing from it."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)


def executor_options(
    p: argparse.ArgumentParser,
    what: str,
    timeout: float | None = None,
    memory: str = "default: four times the problem's memory request",
) -> None:
    """The options that choose where ``what`` run (:mod:`optgym.executors`); ``timeout``
    is the default wall-time limit of each (default :data:`~optgym.executors.DEFAULT_TIMEOUT`;
    0: none), ``memory`` says what the memory limit is without ``--memory-limit``."""
    from optgym.executors import DEFAULT_TIMEOUT

    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    p.set_defaults(default_timeout=timeout)
    p.add_argument("--workers", type=int, default=1, help=f"parallel {what} (default 1)")
    p.add_argument(
        "--executor",
        default="local",
        help="local (default: each in its own process), ray (a Ray cluster) or inline "
        "(in this process, no limits)",
    )
    p.add_argument(
        "--address", default=None, help="Ray cluster address (default: start Ray on this machine)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"wall-time limit of each of the {what} (default {timeout:g}; 0: none)",
    )
    p.add_argument(
        "--memory-limit",
        type=float,
        default=None,
        metavar="MIB",
        help=f"resident-memory limit of each of the {what}, its backends included "
        f"({memory}; 0: none)",
    )


def executor_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`optgym.bench.run_bench` that :func:`executor_options`
    parsed; ``ValueError`` for limits the chosen executor cannot enforce."""
    if args.executor == "inline" and (args.timeout is not None or args.memory_limit is not None):
        raise ValueError(
            "the inline executor runs in this process: it cannot enforce --timeout or "
            "--memory-limit; use --executor local (the default)"
        )
    timeout = args.default_timeout if args.timeout is None else args.timeout
    return {
        "workers": args.workers, "executor": args.executor, "address": args.address,
        "timeout": timeout or None, "memory_mb": args.memory_limit,
    }  # fmt: skip


__all__ = [
    "MAX_SEEDS", "allow_local_plugins", "executor_options", "executor_settings", "parse_seeds",
]  # fmt: skip
