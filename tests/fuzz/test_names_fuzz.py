"""Fuzzing every checker of names, tags, references and version strings.

Any string gives a result or a ``ValidationError``; what a checker accepts keeps its rule
(a name it accepts matches the name pattern, a version it accepts parses back to itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz.conftest import fuzz_settings, refused_or

from weightbase.governance.roles import check_role
from weightbase.governance.users import check_user_name
from weightbase.names import check_entity_name, check_tag, split_ref, split_version
from weightbase.registry.aliases import check_alias, check_stage
from weightbase.registry.models import check_model_name
from weightbase.tensors.manifest import validate_name
from weightbase.tensors.objects import validate_key
from weightbase.tracking.params import check_tags
from weightbase.tracking.reads import check_run_id
from weightbase.tracking.records import check_name
from weightbase.versioning.semver import (
    MAX_VERSION_PART,
    bump,
    canonical_version,
    latest_version,
    new_version,
    next_version,
    parse_version,
    sort_versions,
    version_columns,
    version_key,
)

_PIECES = st.sampled_from(
    [
        "a",
        "Z",
        "0",
        "9",
        ".",
        "..",
        "/",
        "-",
        "_",
        "@",
        " ",
        "\n",
        "\x00",
        "\x1b[31m",
        "é",
        "\u202e",
    ]
)
NEARLY_NAMES = st.lists(_PIECES | st.text(max_size=3), max_size=12).map("".join)
_NUMBER = st.sampled_from(["0", "1", "01", "42", str(MAX_VERSION_PART), str(2**31), "9" * 30, ""])
NEARLY_VERSIONS = st.tuples(
    st.sampled_from(["", "v", "V", " "]),
    st.lists(_NUMBER, min_size=1, max_size=4).map(".".join),
    st.sampled_from(["", "-rc.1", "-alpha", "-0", "-01", "-", "-a..b", "-ü"]),
    st.sampled_from(["", "+build.5", "+", "+x y", "\n"]),
).map("".join)
TEXTS = st.text() | NEARLY_NAMES | NEARLY_VERSIONS
NOT_TEXT = st.none() | st.integers() | st.binary(max_size=4) | st.lists(st.integers(), max_size=2)


@fuzz_settings(deadline_s=2)
@given(name=TEXTS | NOT_TEXT, what=st.sampled_from(["model", "dataset"]))
def test_an_entity_name_is_checked(name: Any, what: str) -> None:
    checked = refused_or(lambda: check_entity_name(name, what=what))
    if checked is not None:
        assert checked == name
        assert 0 < len(name) <= 255
        assert all(part and part[0].isascii() and part[0].isalnum() for part in name.split("/"))


_TEXT_CHECKERS: dict[str, Callable[[Any], object]] = {
    "check_user_name": check_user_name,
    "check_role": check_role,
    "check_alias": check_alias,
    "check_stage": check_stage,
    "check_model_name": check_model_name,
    "tensor validate_name": validate_name,
    "object validate_key": validate_key,
    "metric check_name": check_name,
    "check_run_id": check_run_id,
    "check_tags": lambda tag: check_tags([tag]),
}


@pytest.mark.parametrize("checker", list(_TEXT_CHECKERS))
@fuzz_settings(deadline_s=2, scale=0.3)
@given(text=TEXTS)
def test_every_other_name_checker_accepts_or_refuses(checker: str, text: str) -> None:
    refused_or(lambda: _TEXT_CHECKERS[checker](text))


@fuzz_settings(deadline_s=2)
@given(tag=TEXTS | NOT_TEXT)
def test_a_tag_is_checked(tag: Any) -> None:
    checked = refused_or(lambda: check_tag(tag))
    if checked is not None:
        assert checked == checked.strip()
        assert not any(ord(c) < 32 for c in checked)


@fuzz_settings(deadline_s=2)
@given(text=TEXTS, version=st.none() | TEXTS)
def test_a_reference_splits(text: str, version: str | None) -> None:
    split = refused_or(lambda: split_ref(text))
    if split is not None:
        name, ref = split
        assert text == (name if ref is None else f"{name}@{ref}")
    refused_or(lambda: split_version(text, version))


@fuzz_settings(deadline_s=2)
@given(text=TEXTS | NOT_TEXT)
def test_a_version_string_parses_or_is_refused(text: Any) -> None:
    parsed = refused_or(lambda: parse_version(text))
    if parsed is None:
        return
    canonical = canonical_version(text)
    assert canonical_version(canonical) == canonical
    assert version_key(text) == version_key(canonical)
    stored = refused_or(lambda: new_version(text))
    if stored is not None:
        assert version_columns(stored)["version"] == stored


@fuzz_settings(deadline_s=2)
@given(
    versions=st.lists(TEXTS, max_size=5),
    part=st.sampled_from(["major", "minor", "patch"]),
    explicit=st.none() | TEXTS,
)
def test_version_lists_sort_and_bump_or_are_refused(
    versions: list[str], part: Any, explicit: str | None
) -> None:
    refused_or(lambda: sort_versions(versions))
    refused_or(lambda: latest_version(versions))
    refused_or(lambda: latest_version(versions, stable_only=True))
    refused_or(lambda: bump(versions[0] if versions else None, part))
    refused_or(lambda: next_version(versions, explicit, part, what="model"))
