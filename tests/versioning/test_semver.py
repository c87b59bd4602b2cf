"""Semantic versions: parsing, SemVer precedence, bumping."""

from __future__ import annotations

import itertools
import random

import pytest
import semver
from hypothesis import given
from hypothesis import strategies as st

from weightbase.errors import ValidationError
from weightbase.versioning.semver import (
    bump,
    canonical_version,
    latest_version,
    parse_version,
    sort_versions,
    version_key,
)

numbers = st.integers(min_value=0, max_value=10_000)
numeric_identifier = numbers.map(str)
alphanumeric_identifier = st.from_regex(r"\A[0-9A-Za-z-]*[A-Za-z-][0-9A-Za-z-]*\Z")
prerelease = st.lists(numeric_identifier | alphanumeric_identifier, min_size=1, max_size=4)
build = st.lists(st.from_regex(r"\A[0-9A-Za-z-]+\Z"), min_size=1, max_size=3)


@st.composite
def versions(draw: st.DrawFn) -> str:
    text = f"{draw(numbers)}.{draw(numbers)}.{draw(numbers)}"
    if draw(st.booleans()):
        text += "-" + ".".join(draw(prerelease))
    if draw(st.booleans()):
        text += "+" + ".".join(draw(build))
    return text


@given(versions(), st.booleans())
def test_valid_versions_parse_to_themselves(text: str, with_v: bool) -> None:
    assert canonical_version(("v" if with_v else "") + text) == text
    assert parse_version(text) == semver.Version.parse(text)


@given(versions(), versions())
def test_key_orders_by_semver_precedence(first: str, second: str) -> None:
    precedence = semver.Version.parse(first).compare(second)
    key_first, key_second = version_key(first), version_key(second)
    by_key = (key_first > key_second) - (key_first < key_second)
    if precedence != 0:
        assert by_key == precedence
    else:  # equal precedence: only build metadata may tell them apart
        assert first.partition("+")[0] == second.partition("+")[0]


@given(st.lists(versions(), min_size=1, max_size=12))
def test_sort_and_latest_agree(texts: list[str]) -> None:
    ordered = sort_versions(texts)
    for earlier, later in itertools.pairwise(ordered):
        assert semver.Version.parse(earlier).compare(later) <= 0
    newest = latest_version(texts)
    assert newest is not None
    assert all(semver.Version.parse(newest).compare(t) >= 0 for t in texts)


def test_spec_precedence_example() -> None:
    spec = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]
    shuffled = spec[:]
    random.Random(7).shuffle(shuffled)
    assert sort_versions(shuffled) == spec


def test_latest_of_nothing_and_stable_only() -> None:
    assert latest_version([]) is None
    assert latest_version(["1.0.0", "1.1.0-rc.1"]) == "1.1.0-rc.1"
    assert latest_version(["1.0.0", "1.1.0-rc.1"], stable_only=True) == "1.0.0"
    assert latest_version(["1.1.0-rc.1"], stable_only=True) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.2.3-",
        "1.2.3-rc.01",
        " 1.2.3",
        "1.2.3\n",
        "V1.2.3",
        "vv1.2.3",
        "latest",
        "1.2.x",
        "-1.2.3",
    ],
)
def test_invalid_versions_are_refused_by_name(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        canonical_version(text)
    assert caught.value.context == {"version": text}
    assert repr(text) in str(caught.value)


def test_non_strings_are_refused() -> None:
    with pytest.raises(ValidationError):
        parse_version(123)  # type: ignore[arg-type]


@given(st.text(max_size=20))
def test_any_text_either_parses_or_raises_validation_error(text: str) -> None:
    body = text[1:] if text.startswith("v") else text
    if semver.Version.is_valid(body):
        assert canonical_version(text) == str(semver.Version.parse(body))
    else:
        with pytest.raises(ValidationError) as caught:
            canonical_version(text)
        assert caught.value.context == {"version": text}


@pytest.mark.parametrize(
    ("latest", "part", "expected"),
    [
        (None, "major", "1.0.0"),
        (None, "minor", "0.1.0"),
        (None, "patch", "0.0.1"),
        ("1.2.3", "major", "2.0.0"),
        ("1.2.3", "minor", "1.3.0"),
        ("1.2.3", "patch", "1.2.4"),
        ("v1.2.3+build.5", "patch", "1.2.4"),
        ("2.0.0-rc.1", "major", "2.0.0"),
        ("1.3.0-rc.1", "major", "2.0.0"),
        ("1.3.0-rc.1", "minor", "1.3.0"),
        ("1.2.4-rc.1", "minor", "1.3.0"),
        ("1.2.4-rc.1", "patch", "1.2.4"),
    ],
)
def test_bump(latest: str | None, part: str, expected: str) -> None:
    assert bump(latest, part) == expected  # type: ignore[arg-type]


@given(versions(), st.sampled_from(["major", "minor", "patch"]))
def test_bump_always_moves_forward_to_a_release(text: str, part: str) -> None:
    bumped = bump(text, part)  # type: ignore[arg-type]
    assert version_key(bumped) > version_key(text)
    assert semver.Version.parse(bumped).prerelease is None
    assert semver.Version.parse(bumped).build is None


def test_bump_refuses_unknown_parts_and_versions() -> None:
    with pytest.raises(ValidationError, match="'build'"):
        bump("1.0.0", "build")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"'1\.0'"):
        bump("1.0", "patch")
