"""Reading versions by name: one statement finds the version, one more reads its tags, aliases
and metrics, the stored analysis stays in the database, and what is missing is named precisely."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

import weightbase
from weightbase.errors import NotFound, ValidationError
from weightbase.workspace import Workspace


def _weights(seed: int) -> dict[str, np.ndarray]:
    return {"w": np.full((2, 3), seed, dtype=np.float32)}


def _three_versions(workspace: Workspace) -> None:
    for seed in range(3):
        workspace.models.push("acme/m", _weights(seed))
    workspace.models.tag("acme/m@0.2.0", "validated", "candidate")
    workspace.models.set_alias("acme/m", "staging", "0.2.0")
    workspace.models.set_alias("acme/m", "champion", "0.2.0")
    workspace.models.log_metrics("acme/m@0.2.0", {"loss": 0.5, "accuracy": 0.8})
    workspace.models.log_metrics("acme/m@0.2.0", {"loss": 0.3}, dataset="eval")


def test_a_version_by_number_or_alias_has_its_tags_aliases_and_metrics(
    workspace: Workspace,
) -> None:
    _three_versions(workspace)
    by_number = workspace.models.version("acme/m@0.2.0")
    assert by_number.tags == ("candidate", "validated")
    assert by_number.aliases == ("champion", "staging")
    assert dict(by_number.metrics) == {"loss": 0.3, "accuracy": 0.8}  # the latest value wins
    assert list(by_number.metrics) == ["loss", "accuracy"]  # in the order first logged
    assert by_number.dataset_metrics == {"eval": {"loss": 0.3}}
    assert workspace.models.version("acme/m", "staging") == by_number
    assert workspace.models.version("acme/m@champion") == by_number
    assert workspace.models.version("acme/m").version == "0.3.0"  # latest
    listed = workspace.models.versions("acme/m")
    assert [found.version for found in listed] == ["0.1.0", "0.2.0", "0.3.0"]
    assert listed[1] == by_number
    assert listed[0].tags == listed[0].aliases == ()
    assert dict(listed[0].metrics) == {}


def test_what_is_missing_is_named(workspace: Workspace) -> None:
    _three_versions(workspace)
    with pytest.raises(NotFound, match="no model called 'acme/other'"):
        workspace.models.version("acme/other@0.1.0")
    with pytest.raises(NotFound, match=r"no version acme/m@0\.9\.0"):
        workspace.models.version("acme/m@0.9.0")
    with pytest.raises(NotFound, match="no version or alias 'production'"):
        workspace.models.version("acme/m", "production")
    with pytest.raises(NotFound, match="no model called 'acme/other'"):
        workspace.models.versions("acme/other")
    with pytest.raises(ValidationError):
        workspace.models.versions("bad name!")
    with pytest.raises(ValidationError):
        workspace.models.version("bad name!@0.1.0")


def test_a_deleted_version_is_read_only_when_asked_for(workspace: Workspace) -> None:
    _three_versions(workspace)
    workspace.models.delete_version("acme/m@0.3.0")
    with pytest.raises(NotFound):
        workspace.models.version("acme/m@0.3.0")
    assert [found.version for found in workspace.models.versions("acme/m")] == ["0.1.0", "0.2.0"]
    every = workspace.models.versions("acme/m", include_deleted=True)
    assert [found.version for found in every] == ["0.1.0", "0.2.0", "0.3.0"]
    workspace.models.delete_version("acme/m@0.1.0")
    workspace.models.remove_alias("acme/m", "staging")
    workspace.models.remove_alias("acme/m", "champion")
    workspace.models.delete_version("acme/m@0.2.0")
    assert workspace.models.versions("acme/m") == []  # the model lives on, with no version


def test_a_name_deleted_and_taken_again_reads_the_new_model(workspace: Workspace) -> None:
    workspace.models.push("acme/m", _weights(1))
    workspace.models.delete("acme/m", force=True)
    with pytest.raises(NotFound):
        workspace.models.version("acme/m@0.1.0")
    with pytest.raises(NotFound):
        workspace.models.versions("acme/m")
    again = workspace.models.push("acme/m", _weights(2))
    assert workspace.models.version("acme/m@0.1.0").snapshot_id == again.snapshot_id
    assert [found.id for found in workspace.models.versions("acme/m")] == [again.id]


@pytest.fixture
def embedded(catalog_url: str, weightbase_home: Path) -> Iterator[Workspace]:
    opened = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        yield opened
    finally:
        opened.close()


def test_a_read_takes_two_statements_and_leaves_the_analysis(embedded: Workspace) -> None:
    _three_versions(embedded)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    engine = embedded.catalog.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for read in (
            lambda: embedded.models.version("acme/m@0.2.0"),
            lambda: embedded.models.version("acme/m", "staging"),
            lambda: embedded.models.versions("acme/m"),
        ):
            statements.clear()
            read()
            assert len(statements) == 2, statements
            assert not any("model_versions.analysis" in text for text in statements)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # the analysis is still there for those who ask
    assert embedded.models.analysis("acme/m@0.2.0").parameters == 6


def test_a_model_lists_its_latest_version_by_semver_precedence(workspace: Workspace) -> None:
    for seed, number in enumerate(("0.9.0", "1.0.0-rc.2", "1.0.0-rc.10", "0.10.0")):
        workspace.models.push("acme/m", _weights(seed), version=number)
    workspace.models.tag("acme/m", "nlp", "baseline")
    workspace.models.set_alias("acme/m", "staging", "0.10.0")
    (found,) = workspace.models.list(limit=10).items
    assert found.latest_version == "1.0.0-rc.10"  # numeric identifiers compare as numbers
    assert found.version_count == 4
    assert found.tags == ("baseline", "nlp")
    assert dict(found.aliases) == {"staging": "0.10.0"}
    workspace.models.push("acme/m", _weights(9), version="1.0.0")
    assert workspace.models.get("acme/m").latest_version == "1.0.0"  # a release after its rcs


_PART = st.integers(0, 3)
_PRERELEASE = st.one_of(
    st.none(),
    st.lists(
        st.one_of(st.integers(0, 12).map(str), st.sampled_from(["rc", "alpha", "beta"])),
        min_size=1,
        max_size=3,
    ).map(".".join),
)
_VERSION = st.builds(
    lambda major, minor, patch, pre: f"{major}.{minor}.{patch}" + (f"-{pre}" if pre else ""),
    _PART,
    _PART,
    _PART,
    _PRERELEASE,
)


@given(st.lists(_VERSION, max_size=12, unique=True))
def test_latest_from_the_number_columns_agrees_with_semver(numbers: list[str]) -> None:
    from weightbase.registry.rows import _latest
    from weightbase.versioning.semver import latest_version, version_columns

    rows = []
    for number in numbers:
        columns = version_columns(number)
        rows.append(((columns["major"], columns["minor"], columns["patch"]), number))
    assert _latest(rows) == latest_version(numbers)
