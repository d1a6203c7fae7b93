"""Text from untrusted sources (an agent's output and errors, a submission's names) made
safe to show: no control characters, escape sequences, bidirectional overrides or
invisible format characters, which could forge or hide what a terminal or page shows."""

from __future__ import annotations

import unicodedata

#: Unicode categories never shown: controls, format characters (bidirectional overrides,
#: zero-width characters), private use, surrogates, line and paragraph separators.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


def hidden(char: str) -> bool:
    """Whether ``char`` is one a display must not carry (see :data:`HIDDEN_CATEGORIES`)."""
    return unicodedata.category(char) in HIDDEN_CATEGORIES


def plain(text: str, keep: str = "") -> str:
    """``text`` without its hidden characters, except those in ``keep`` (e.g. ``"\\n"``)."""
    return "".join(c for c in text if c in keep or not hidden(c))


__all__ = ["HIDDEN_CATEGORIES", "hidden", "plain"]
