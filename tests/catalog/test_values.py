"""JSON column values: what is normalised on the way in, and what is refused."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import date
from pathlib import PurePosixPath
from types import MappingProxyType

import pytest

from weightbase.catalog.values import freeze_object, json_object
from weightbase.errors import ValidationError


class Stage(enum.Enum):
    PRODUCTION = "production"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


class Digest:
    def __init__(self, hex_digest: str) -> None:
        self.hex_digest = hex_digest

    def to_dict(self) -> dict[str, str]:
        return {"algorithm": "sha256", "hex": self.hex_digest}


def test_rich_values_become_plain_json() -> None:
    run_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    value = json_object(
        {
            "stage": Stage.PRODUCTION,
            "path": PurePosixPath("/models/bert"),
            "run": run_id,
            "day": date(2024, 5, 6),
            "labels": {"b", "a"},
            "limits": MappingProxyType({"max": 3}),
            "point": Point(1, 2),
            "digest": Digest("ab12"),
        }
    )
    assert value == {
        "stage": "production",
        "path": "/models/bert",
        "run": "12345678-1234-5678-1234-567812345678",
        "day": "2024-05-06",
        "labels": ["a", "b"],
        "limits": {"max": 3},
        "point": {"x": 1, "y": 2},
        "digest": {"algorithm": "sha256", "hex": "ab12"},
    }


def test_the_copy_is_deep() -> None:
    original = {"nested": {"items": [1, 2]}}
    copied = json_object(original)
    copied["nested"]["items"].append(3)  # type: ignore[index,union-attr]
    assert original == {"nested": {"items": [1, 2]}}


def test_a_dataclass_class_is_not_taken_for_an_instance() -> None:
    with pytest.raises(ValidationError, match="type is not JSON serialisable"):
        json_object({"kind": Point})


@pytest.mark.parametrize("value", [["a", "list"], "text", None, 3])
def test_only_mappings_are_json_objects(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        json_object(value, what="the payload")  # type: ignore[arg-type]
    assert str(caught.value) == f"the payload must be a mapping, not {type(value).__name__}"


def test_freeze_object_gives_a_read_only_view() -> None:
    frozen = freeze_object({"a": 1})
    assert frozen == {"a": 1}
    with pytest.raises(TypeError):
        frozen["a"] = 2  # type: ignore[index]
    assert freeze_object(None) is None
