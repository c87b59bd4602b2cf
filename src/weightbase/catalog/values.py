"""JSON values for the catalog's JSON columns (event payloads, audit before/after).

Whatever a service passes is normalised once, on the way in: datetimes become
ISO 8601 strings, enums their values, paths and UUIDs strings, tuples and sets
lists. Anything else that JSON cannot hold is refused with a ValidationError
before anything is written.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import PurePath
from types import MappingProxyType
from typing import Any, TypeAlias

from weightbase.errors import ValidationError

__all__ = ["JSONObject", "JSONValue", "freeze_object", "json_object"]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
JSONObject: TypeAlias = "dict[str, JSONValue]"


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath | uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_object(value: Mapping[str, Any], *, what: str = "value") -> JSONObject:
    """A JSON-safe deep copy of ``value``; ``ValidationError`` if it cannot be stored as JSON."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a mapping, not {type(value).__name__}")
    if not all(isinstance(key, str) for key in value):
        raise ValidationError(f"{what} must have string keys")
    try:
        text = json.dumps(value, default=_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} cannot be stored as JSON: {exc}") from exc
    copied: JSONObject = json.loads(text)
    return copied


def freeze_object(value: JSONObject | None) -> Mapping[str, JSONValue] | None:
    """A read-only view of a JSON object, for frozen records."""
    return None if value is None else MappingProxyType(value)
