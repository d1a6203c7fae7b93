"""Budgets in the units the papers count, and one meter that enforces them.

Each problem counts its own unit of work (its env's ``work_unit``: compilations, measurements,
sub-MIP solves, plan evaluations, retrainings) next to steps and wall time. A budget's
``calls`` are that unit, whatever the problem; ``Budget.parse`` also takes the unit's own
name (``compilations=2000``). The env charges a :class:`BudgetMeter` wherever it does work
(the budget wrapper attaches one), so what an agent spends is counted, not reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

UNITS = ("calls", "steps", "seconds")

#: Work may start until the seconds budget is passed by this fraction of it (at least
#: ``SECONDS_GRACE_MIN`` seconds): one unit of work started just before the limit (a compile
#: and its timing, a sub-MIP) may run past it; work started well after it is refused.
SECONDS_GRACE = 0.1
SECONDS_GRACE_MIN = 1.0


class BudgetExceeded(RuntimeError):
    """An agent asked for work past its budget: the work was not done and the agent is
    stopped (the runner records the episode as over budget)."""


@dataclass(frozen=True)
class Budget:
    """Limits per episode; ``None`` means unlimited in that unit."""

    calls: int | None = None
    steps: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str, unit: str | None = None) -> Budget:
        """``"calls=2000,seconds=60"`` -> Budget; ``ValueError`` names the bad part.

        ``unit`` is the problem's work unit (e.g. ``"compilations"``), accepted as another
        name for ``calls``."""
        names = UNITS + ((unit,) if unit and unit not in UNITS else ())
        if text.strip() == "unlimited":  # what str() gives for no limit
            return cls()
        if not text.strip():
            raise ValueError("empty budget; e.g. 'calls=2000,seconds=60', or 'unlimited'")
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in names:
                raise ValueError(
                    f"bad budget item {part!r}; expected UNIT=NUMBER with UNIT one of "
                    f"{', '.join(names)}, e.g. 'calls=2000,seconds=60'"
                )
            if key == unit:
                key = "calls"
            if key in values:
                raise ValueError(f"budget {key} is given twice in {text!r}")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"budget {key} must be a number, got {value!r}") from None
            if not (number > 0 and math.isfinite(number)):
                raise ValueError(f"budget {key} must be a positive finite number, got {value!r}")
            if key != "seconds" and number != int(number):
                raise ValueError(f"budget {key} must be a whole number, got {value!r}")
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

    def seconds_late(self, seconds: float) -> float | None:
        """How far ``seconds`` of wall time are past the seconds budget and its grace
        (``max(SECONDS_GRACE * budget, SECONDS_GRACE_MIN)``), or None when they are not."""
        if self.seconds is None:
            return None
        late = seconds - self.seconds
        return late if late > max(SECONDS_GRACE * self.seconds, SECONDS_GRACE_MIN) else None

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
        """Count work without checking the budget (``spend`` checks)."""
        self.calls += calls
        self.steps += steps

    def check(self, calls: int = 0, steps: int = 0, unit: str = "calls") -> None:
        """``BudgetExceeded`` when the budget has no room for ``calls`` more units of work
        (named ``unit`` in the message) and ``steps`` more steps, or its seconds are spent
        (past the grace); counts nothing."""
        b = self.budget
        if b.calls is not None and self.calls + calls > b.calls:
            raise BudgetExceeded(
                f"budget {b} is spent: {calls} more {unit} asked for, {self.calls} of "
                f"{b.calls} used"
            )
        if b.steps is not None and self.steps + steps > b.steps:
            raise BudgetExceeded(
                f"budget {b} is spent: {self.steps} of {b.steps} steps used, one more asked for"
            )
        late = b.seconds_late(self.seconds)
        if late is not None:
            raise BudgetExceeded(
                f"budget {b} is spent: work asked for {late:.1f} s after its "
                f"{b.seconds:g} seconds ran out"
            )

    def spend(self, calls: int = 0, steps: int = 0, unit: str = "calls") -> None:
        """``check``, then count: what the env calls before it does work."""
        self.check(calls, steps, unit)
        self.calls += calls
        self.steps += steps

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.start

    def seconds_left(self) -> float | None:
        """Seconds until the budget's seconds and their grace run out (work still running
        then makes the episode over budget); None without a seconds budget."""
        b = self.budget
        if b.seconds is None:
            return None
        return b.seconds + max(SECONDS_GRACE * b.seconds, SECONDS_GRACE_MIN) - self.seconds

    def room(self, reserve: int = 0, seconds: bool = True) -> int:
        """Units of work (each one call and one step) still allowed, ``reserve`` kept back;
        0 once the budget is exhausted (its seconds too, unless ``seconds`` is false), a
        large number when calls and steps are unlimited."""
        if self.exhausted if seconds else self._spent_units():
            return 0
        b, left = self.budget, float(1 << 30)
        if b.calls is not None:
            left = min(left, b.calls - self.calls - reserve)
        if b.steps is not None:
            left = min(left, b.steps - self.steps - reserve)
        return int(max(0, left))

    def calls_left(self, reserve: int = 0, steps: int = 0) -> int:
        """Units of work still allowed outside steps (batched evaluations), ``reserve`` kept
        back, provided ``steps`` env steps are left too (for a final step that commits the
        result); 0 once the budget is exhausted, a large number when calls are unlimited."""
        b = self.budget
        if self.exhausted or (b.steps is not None and b.steps - self.steps < steps):
            return 0
        left = float(1 << 30) if b.calls is None else b.calls - self.calls - reserve
        return int(max(0, left))

    def _spent_units(self) -> bool:
        b = self.budget
        return (b.calls is not None and self.calls >= b.calls) or (
            b.steps is not None and self.steps >= b.steps
        )

    @property
    def exhausted(self) -> bool:
        b = self.budget
        return self._spent_units() or (b.seconds is not None and self.seconds >= b.seconds)

    def used(self) -> dict[str, float]:
        return {"calls": self.calls, "steps": self.steps, "seconds": round(self.seconds, 4)}
