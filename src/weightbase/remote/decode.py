"""Records back from JSON: the API's ``to_dict`` output as the dataclasses the services return.

A remote workspace hands out the same frozen records an embedded one does. The
server's JSON is each record's ``to_dict``; ``decode`` rebuilds the record from
its field types (datetimes from ISO text, tuples from lists, nested records,
enums, ``"nan"``/``"inf"`` strings as floats), ignoring keys it does not know.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, cast

from weightbase.errors import ValidationError

__all__ = ["decode", "decode_all"]

T = TypeVar("T")


@cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(cls: type[T], data: Mapping[str, Any]) -> T:
    """A ``cls`` record from its ``to_dict`` form."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = _hints(cast(Any, cls))
    values = {}
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not spec.init or spec.name not in data:
            continue
        values[spec.name] = _value(hints[spec.name], data[spec.name])
    return cls(**values)


def decode_all(cls: type[T], items: Sequence[Mapping[str, Any]]) -> list[T]:
    return [decode(cls, item) for item in items]


def _value(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _value(options[0], value) if len(options) == 1 else _first_fit(options, value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is float:
        return float(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        from_dict = getattr(kind, "from_dict", None)
        return from_dict(value) if callable(from_dict) else decode(kind, value)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], item) for item in value)
        return tuple(_value(a, item) for a, item in zip(args, value, strict=False))
    if origin in (list, Sequence, typing.Sequence):
        return [_value(args[0], item) for item in value] if args else list(value)
    if origin in (dict, Mapping, typing.Mapping):
        item_kind = args[1] if len(args) == 2 else Any
        return {key: _value(item_kind, item) for key, item in value.items()}
    return value


def _first_fit(options: list[Any], value: Any) -> Any:
    for option in options:
        if isinstance(option, type) and isinstance(value, option):
            return value
    for option in options:
        try:
            return _value(option, value)
        except (TypeError, ValueError, KeyError, ValidationError):
            continue
    return value
