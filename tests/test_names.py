"""The rules for the names users give models, datasets and tags, and for name@ref."""

from __future__ import annotations

import pytest

from weightbase.errors import ValidationError
from weightbase.names import check_entity_name, check_tag, split_ref


@pytest.mark.parametrize("name", ["bert", "org/bert-base", "a.b_c-1/x/9", "B" * 255])
def test_valid_entity_names_pass_unchanged(name: str) -> None:
    assert check_entity_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "/bert", "bert/", "org//bert", "-bert", "bert base", "bert@1", "b" * 256, None]
)
def test_invalid_entity_names_are_refused(name: object) -> None:
    with pytest.raises(ValidationError) as caught:
        check_entity_name(name, what="dataset")  # type: ignore[arg-type]
    assert str(caught.value).startswith(f"invalid dataset name {name!r}: ")
    assert caught.value.name == name


@pytest.mark.parametrize("tag", ["x", "needs review", "ünïcode ✓", "t" * 255])
def test_valid_tags_pass_unchanged(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", " padded", "padded ", "t" * 256, 7])
def test_tags_of_the_wrong_shape_are_refused(tag: object) -> None:
    with pytest.raises(ValidationError, match="1 to 255 characters, no surrounding spaces"):
        check_tag(tag)  # type: ignore[arg-type]


@pytest.mark.parametrize("tag", ["line\nbreak", "bell\x07"])
def test_tags_with_control_characters_are_refused(tag: str) -> None:
    with pytest.raises(ValidationError, match="control characters") as caught:
        check_tag(tag)
    assert caught.value.tag == tag


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bert", ("bert", None)),
        ("bert@1.2.0", ("bert", "1.2.0")),
        ("org/bert@production", ("org/bert", "production")),
        ("a@b@c", ("a@b", "c")),
    ],
)
def test_split_ref(text: str, expected: tuple[str, str | None]) -> None:
    assert split_ref(text) == expected


def test_a_ref_with_nothing_after_the_at_sign_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"'bert@': nothing after '@'"):
        split_ref("bert@")
