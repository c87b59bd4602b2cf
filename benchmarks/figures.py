"""A benchmark row's figure: one value per round (or why it was not run), reported as the
median and the range, and met only when every round clears the target."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Self

__all__ = ["Figure", "Target"]

#: A target: the bound and whether a figure must stay at or under it (``"max"``) or reach it
#: (``"min"``).
Target = tuple[float, str]


@dataclass(frozen=True, slots=True)
class Figure:
    """One row's figure, measured once per round, or why it was not run."""

    values: tuple[float, ...] = ()
    not_run: str | None = None

    @classmethod
    def skipped(cls, reason: str) -> Self:
        return cls(not_run=reason)

    @property
    def ran(self) -> bool:
        return self.not_run is None and bool(self.values)

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def clears(self, target: Target | None) -> bool | None:
        """Whether every round clears ``target`` (the whole range, not the median); None
        where there is no target or the row was not run."""
        if target is None or not self.ran:
            return None
        bound, kind = target
        return self.high <= bound if kind == "max" else self.low >= bound

    def rounds_clearing(self, target: Target) -> int:
        """How many rounds clear ``target``."""
        return sum(1 for value in self.values if Figure((value,)).clears(target))

    def to_dict(self) -> dict[str, Any]:
        if not self.ran:
            return {"not_run": self.not_run or "not run: no rounds"}
        return {"median": self.median, "min": self.low, "max": self.high, "rounds": self.values}
