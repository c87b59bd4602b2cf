"""Fixtures for the tracking tests: a run tracker on a fresh workspace, each database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.conftest import remote_variants

from weightbase.tracking import RunTracker
from weightbase.workspace import Workspace


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that take ``remote_or_embedded`` run embedded and against a live server."""
    remote_variants(metafunc)


@pytest.fixture
def tracker(workspace: Workspace) -> Iterator[RunTracker]:
    """A run tracker on the workspace's catalog and store, with audit, events and lineage."""
    return RunTracker(
        workspace.catalog,
        workspace.store,
        recorder=workspace.recorder,
        lineage=workspace.lineage,
        flush_interval=0.2,
    )
