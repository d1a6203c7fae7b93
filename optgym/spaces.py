"""How OptGym shows a gymnasium space in one line (``optgym envs``, the docs). A problem's own
spaces live in its package (``optgym.envs.passes.spaces``, ``optgym.envs.schedule.spaces``)."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces


def space_text(space: Any) -> str:
    """A space in one short line (``optgym envs``, the docs): a Box as
    ``Box(low..high, shape, dtype)`` (the bounds' range when they differ per element), a
    Dict item by item, anything else by its ``str`` cut to 300 characters."""
    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {space_text(v)}" for k, v in space.items()) + ")"
    if isinstance(space, spaces.Box):

        def bound(values: Any) -> str:
            lo, hi = values.min(), values.max()
            return f"{lo:g}" if lo == hi else f"[{lo:g}, {hi:g}]"

        return f"Box({bound(space.low)}..{bound(space.high)}, {space.shape}, {space.dtype})"
    text = str(space)
    return text if len(text) <= 300 else text[:297] + "..."
