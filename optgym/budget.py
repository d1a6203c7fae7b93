"""Budgets in the units the papers count, and one meter that enforces them.

Each problem counts its own unit of work (LLVM: compilation calls, one per pass run) next to
steps and wall time. The budget wrapper and the agents share :class:`BudgetMeter`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

UNITS = ("calls", "steps", "seconds")


@dataclass(frozen=True)
class Budget:
    """Limits per episode; ``None`` means unlimited in that unit."""

    calls: int | None = None
    steps: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str) -> Budget:
        """``"calls=2000,seconds=60"`` -> Budget; ``ValueError`` names the bad part."""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in UNITS:
                raise ValueError(
                    f"bad budget item {part!r}; expected UNIT=NUMBER with UNIT one of "
                    f"{', '.join(UNITS)}, e.g. 'calls=2000,seconds=60'"
                )
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"budget {key} must be a number, got {value!r}") from None
            if number <= 0:
                raise ValueError(f"budget {key} must be positive, got {value!r}")
            values[key] = number
        return cls(
            calls=int(values["calls"]) if "calls" in values else None,
            steps=int(values["steps"]) if "steps" in values else None,
            seconds=values.get("seconds"),
        )

    def require_limit(self, who: str) -> None:
        """``ValueError`` unless some unit is limited (for agents that search until the
        budget is spent)."""
        if self.calls is None and self.steps is None and self.seconds is None:
            raise ValueError(f"{who} needs a budget (calls, steps or seconds)")

    def __str__(self) -> str:
        parts = [f"{k}={v:g}" for k, v in asdict(self).items() if v is not None]
        return ",".join(parts) or "unlimited"


class BudgetMeter:
    """Counts work against a :class:`Budget`; ``exhausted`` once any unit is spent."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self.calls = 0
        self.steps = 0
        self.start = time.monotonic()

    def charge(self, calls: int = 0, steps: int = 0) -> None:
        self.calls += calls
        self.steps += steps

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.start

    def remaining_calls(self) -> float:
        return float("inf") if self.budget.calls is None else self.budget.calls - self.calls

    def room(self, reserve: int = 0) -> int:
        """Units of work (each one call and one step) still allowed, ``reserve`` kept back;
        0 once the budget is exhausted, a large number when calls and steps are unlimited."""
        if self.exhausted:
            return 0
        b, left = self.budget, float(1 << 30)
        if b.calls is not None:
            left = min(left, b.calls - self.calls - reserve)
        if b.steps is not None:
            left = min(left, b.steps - self.steps - reserve)
        return int(max(0, left))

    @property
    def exhausted(self) -> bool:
        b = self.budget
        return (
            (b.calls is not None and self.calls >= b.calls)
            or (b.steps is not None and self.steps >= b.steps)
            or (b.seconds is not None and self.seconds >= b.seconds)
        )

    def used(self) -> dict[str, float]:
        return {"calls": self.calls, "steps": self.steps, "seconds": round(self.seconds, 4)}
