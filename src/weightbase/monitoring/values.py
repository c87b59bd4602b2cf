"""The checks of what monitoring's callers give: numbers, counts, times with a zone, and
sampled columns named as a drift report's reference names them."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from weightbase.errors import ValidationError

__all__ = ["moment", "positional", "positive", "whole"]


def positive(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{field} must be a positive number, not {value!r}", field=field)
    if value <= 0:
        raise ValidationError(f"{field} must be positive, not {value!r}", field=field)
    return float(value)


def whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{field} must be {low} to {high}, not {value!r}", field=field)
    return value


def moment(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"{field} must be a time with its zone", field=field)
    return value


_ELEMENT = re.compile(r"(.+)\[(\d+)\]")


def positional(columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Columns of one OIP tensor's elements (``x[0]``, ``x[1]``…) named by position
    (``0``, ``1``…), as the features of a tensor dataset's split are; others as they are."""
    features = [name for name in columns if name != "prediction"]
    found = [_ELEMENT.fullmatch(name) for name in features]
    if not features or not all(found) or len({m.group(1) for m in found if m}) != 1:
        return columns
    renamed = {m.group(2): columns[m.group(0)] for m in found if m}
    if "prediction" in columns:
        renamed["prediction"] = columns["prediction"]
    return renamed
