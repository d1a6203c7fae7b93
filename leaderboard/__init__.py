"""The leaderboard: submissions, their verification, the board, hidden rounds, signing.

Its files (entries, rounds, the verifier's public key) live in the board folder,
:func:`board_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path


def board_dir() -> Path:
    """The board folder: ``$OPTGYM_BOARD``, else this package's ``board/``."""
    env = os.environ.get("OPTGYM_BOARD")
    return Path(env) if env else Path(__file__).resolve().parent / "board"


__all__ = ["board_dir"]
