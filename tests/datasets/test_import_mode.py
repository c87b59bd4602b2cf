"""How pytest imports test modules: by dotted name, never by putting test folders on sys.path.

This folder shares its name with Hugging Face's ``datasets``; it must never stand in
for it. pytest imports test files with ``--import-mode=importlib`` and only the
repository root on ``sys.path`` (pyproject.toml), so ``tests/datasets`` is never
found as a namespace package called ``datasets`` by transformers, evaluate and
the rest, and this module is ``tests.datasets.test_import_mode`` everywhere.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def _installed_hf_datasets() -> importlib.metadata.Distribution | None:
    try:
        return importlib.metadata.distribution("datasets")
    except importlib.metadata.PackageNotFoundError:
        return None


def _has_transformers() -> bool:
    return importlib.util.find_spec("transformers") is not None


def _locations(name: str) -> list[Path]:
    """Where ``import name`` would load from: a module file and/or package folders."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return []
    found = [spec.origin] if spec.origin and spec.has_location else []
    found += list(spec.submodule_search_locations or ())
    return [Path(location).resolve() for location in found]


def test_no_test_folder_is_on_sys_path() -> None:
    shadowing = [entry for entry in sys.path if Path(entry or ".").resolve().is_relative_to(TESTS)]
    assert not shadowing, f"test folders on sys.path would shadow installed packages: {shadowing}"


def test_datasets_is_hugging_face_or_absent() -> None:
    locations = _locations("datasets")
    distribution = _installed_hf_datasets()
    if distribution is None:
        assert not locations, (
            f"`import datasets` finds {locations} although Hugging Face's datasets is not installed"
        )
        return
    site = Path(str(distribution.locate_file(""))).resolve()
    assert locations
    assert all(location.is_relative_to(site) for location in locations), (
        f"`import datasets` finds {locations}, not Hugging Face's datasets in {site}"
    )


def test_transformers_sees_datasets_only_when_installed() -> None:
    import_utils = pytest.importorskip("transformers.utils.import_utils")
    # newer releases cache the answer; older ones compute it once at import
    getattr(import_utils.is_datasets_available, "cache_clear", lambda: None)()
    available = import_utils.is_datasets_available()
    assert available == (_installed_hf_datasets() is not None)


def test_test_modules_import_by_their_dotted_name() -> None:
    """A process started with spawn must find a test module by name to unpickle its functions."""
    assert __name__ == "tests.datasets.test_import_mode"
    spec = importlib.util.find_spec(__name__)
    assert spec is not None
    assert spec.origin is not None
    assert Path(spec.origin).resolve() == Path(__file__).resolve()


def test_the_checks_fail_when_tests_are_put_on_sys_path(tmp_path: Path) -> None:
    """Under pytest's old default import mode this folder shadows ``datasets``, and we notice."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--import-mode=prepend",
            f"--rootdir={TESTS.parent}",
            __file__,
            "-k",
            "not fail_when and not dotted_name",
        ],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    failed = {
        line.split()[1].rpartition("::")[2]
        for line in result.stdout.splitlines()
        if line.startswith("FAILED ")
    }
    # An installed regular package wins over a namespace folder found earlier on
    # sys.path, so the folder only takes over `datasets` where the real one is absent.
    shadowed = _installed_hf_datasets() is None
    assert failed == {
        "test_no_test_folder_is_on_sys_path",
        *(["test_datasets_is_hugging_face_or_absent"] if shadowed else []),
        *(
            ["test_transformers_sees_datasets_only_when_installed"]
            if shadowed and _has_transformers()
            else []
        ),
    }, result.stdout
