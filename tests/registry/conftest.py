"""The registry suite runs embedded and against a live server (``tests/remote_support.py``)."""

from __future__ import annotations

import pytest
from tests.conftest import remote_variants

from weightbase.workspace import Workspace


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def workspace(remote_or_embedded: Workspace) -> Workspace:
    """A fresh workspace on each catalog backend, embedded and remote."""
    return remote_or_embedded
