"""The fuzz suite's budget, and the one property every parser of outside input must keep.

Every test here runs in the default test run with a small budget (the whole suite in
well under a minute); ``WEIGHTBASE_FUZZ_EXAMPLES=5000 pytest tests/fuzz -m fuzz`` gives
each test that many examples instead (docs/testing.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings

from weightbase.errors import WeightbaseError

#: Examples per test unless ``WEIGHTBASE_FUZZ_EXAMPLES`` says otherwise.
DEFAULT_EXAMPLES = 100
EXAMPLES_VARIABLE = "WEIGHTBASE_FUZZ_EXAMPLES"
_T = TypeVar("_T")


def fuzz_examples(scale: float = 1.0) -> int:
    """Examples for one test: the budget, times ``scale`` for a test whose examples are dear."""
    budget = int(os.environ.get(EXAMPLES_VARIABLE) or DEFAULT_EXAMPLES)
    return max(1, int(budget * scale))


def fuzz_settings(*, deadline_s: float = 3.0, scale: float = 1.0) -> settings:
    """Hypothesis settings for a fuzz test: the budget and a per-example deadline.

    The deadline catches an example that is slow; ``pytest-timeout`` (set per test by
    :func:`pytest_collection_modifyitems`) catches one that never returns.
    """
    return settings(
        max_examples=fuzz_examples(scale),
        deadline=timedelta(seconds=deadline_s),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``fuzz``, with a timeout that grows with the budget."""
    here = Path(__file__).parent
    limit = max(300, fuzz_examples() * 5)
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.fuzz)
            item.add_marker(pytest.mark.timeout(limit))


def refused_or(call: Callable[[], _T]) -> _T | None:
    """``call()``'s result, or None when it raised a ``WeightbaseError``.

    Any other exception propagates: that is the bug the fuzz suite looks for.
    """
    try:
        return call()
    except WeightbaseError:
        return None


def _tree(root: Path) -> set[str]:
    found = set()
    for folder, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.join(folder, name))
    return found


class Sandbox:
    """A fresh folder per example, under a root that is checked for files written elsewhere."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._count = 0

    @contextmanager
    def folder(self) -> Iterator[Path]:
        """A new empty folder; after the example, nothing new may exist outside it."""
        self._count += 1
        target = self.root / f"example-{self._count}"
        before = _tree(self.root)
        cwd_before = set(os.listdir("."))
        target.mkdir()
        try:
            yield target
        finally:
            after = _tree(self.root)
            cwd_after = set(os.listdir("."))
            inside = str(target) + os.sep
            outside = sorted(
                p for p in after - before if p != str(target) and not p.startswith(inside)
            )
            shutil.rmtree(target, ignore_errors=True)
        assert not outside, f"files written outside the example's folder: {outside}"
        assert cwd_after <= cwd_before | {".hypothesis"}, sorted(cwd_after - cwd_before)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    """Per-test root for per-example folders (see :class:`Sandbox`)."""
    return Sandbox(tmp_path)


@pytest.fixture(autouse=True)
def _no_stray_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point ``tempfile`` at the test's own folder, so a spooled file is seen by the check."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    yield
    leftover = sorted(os.listdir(spool))
    assert not leftover, f"temporary files left behind: {leftover}"
