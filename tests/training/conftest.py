"""Fixtures for the training tests: tests that take ``remote_or_embedded`` also run remotely."""

from __future__ import annotations

import pytest
from tests.conftest import remote_variants


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that take ``remote_or_embedded`` run embedded and against a live server."""
    remote_variants(metafunc)
