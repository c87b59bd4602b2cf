"""Exit codes scripts can rely on: real commands on a real workspace, one test per code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from weightbase.cli import ExitCode, app
from weightbase.cli.exit_codes import exit_code_for
from weightbase.datasets.loaders import UnreadableFilesError
from weightbase.errors import (
    Conflict,
    DeviceError,
    IntegrityError,
    MissingExtraError,
    NotFound,
    PermissionDenied,
    StorageError,
    UnsafeFormatError,
    ValidationError,
    WeightbaseError,
)
from weightbase.tensors import TensorStore
from weightbase.tensors.read import chunk_key

safetensors_numpy = pytest.importorskip("safetensors.numpy")


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "w.safetensors"
    safetensors_numpy.save_file(
        {"fc.weight": rng.standard_normal((256, 64)).astype(np.float32)}, str(path)
    )
    return path


@pytest.fixture
def run(weightbase_home: Path) -> Any:
    """Run ``weightbase …`` in-process; expect exit ``code`` and, for an error, one line."""
    runner = CliRunner()

    def invoke(*args: str, code: ExitCode, error_line: bool = True) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        if code not in (ExitCode.OK, ExitCode.USAGE) and error_line:
            (line,) = result.stderr.strip().splitlines()
            assert line.startswith("error: "), result.stderr
        return result

    return invoke


def test_ok_is_0(run: Any, weights: Path) -> None:
    pushed = json.loads(run("models", "push", "m", str(weights), "--json", code=0).stdout)
    assert pushed["version"] == "0.1.0"


def test_a_failed_operation_is_1(run: Any, weights: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    result = run("store", "refs", "--store", str(tmp_path / "a-file"), code=ExitCode.FAILED)
    assert "cannot create the store folder" in result.stderr


def test_usage_is_2_for_bad_flags_and_refused_input(run: Any, weights: Path) -> None:
    assert "No such option" in run("models", "list", "--bogus", code=ExitCode.USAGE).stderr
    refused = run("models", "push", "m", str(weights), "--metric", "accuracy", code=2)
    assert refused.stderr.startswith("error: --metric expects key=value")
    # refused before anything was done: no model was made
    run("models", "show", "m", code=ExitCode.NOT_FOUND)


def test_not_found_is_3(run: Any) -> None:
    result = run("models", "show", "nope", code=ExitCode.NOT_FOUND)
    assert result.stderr.strip() == "error: no model called 'nope'"
    run("store", "show", "no-such-snapshot", code=ExitCode.NOT_FOUND)


def test_conflict_is_4(run: Any, weights: Path) -> None:
    run("models", "push", "m", str(weights), "--version", "1.0.0", code=ExitCode.OK)
    result = run("models", "push", "m", str(weights), "--version", "2.0.0", code=ExitCode.CONFLICT)
    assert "it cannot also be 2.0.0" in result.stderr


def test_integrity_failure_is_5(
    run: Any, weightbase_home: Path, weights: Path, tmp_path: Path
) -> None:
    pushed = json.loads(run("models", "push", "m", str(weights), "--json", code=0).stdout)
    with TensorStore.open(weightbase_home / "store") as store:
        entry = store.snapshot(pushed["snapshot_id"]).tensors["fc.weight"]
        path = store.objects.local_path(chunk_key(entry.chunks[0].digest))
    assert path is not None
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    pulled = run("models", "pull", "m@0.1.0", str(tmp_path / "out.safetensors"), code=5)
    assert "of tensor 'fc.weight' is corrupt" in pulled.stderr
    # fsck reports what it found rather than failing itself: that stays 1
    report = run("store", "fsck", "--json", code=ExitCode.FAILED, error_line=False)
    assert json.loads(report.stdout)["problems"][0]["kind"] == "corrupt-chunk"


def test_permission_denied_is_6(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = typer.Typer()

    @extra.command("forbidden")
    def forbidden() -> None:
        """A command only this test registers: roles will raise this from the server."""
        raise PermissionDenied("viewer may not push models", role="viewer")

    commands = [*app.registered_commands, *extra.registered_commands]
    monkeypatch.setattr(app, "registered_commands", commands)
    result = run("forbidden", code=ExitCode.PERMISSION_DENIED)
    assert result.stderr.strip() == "error: viewer may not push models"


class _MissingShard(NotFound):
    """A subclass the table does not name: its nearest named base decides."""


class _Both(PermissionDenied, NotFound):
    """Where two bases are named, the first in the method resolution order wins."""


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (WeightbaseError("x"), ExitCode.FAILED),
        (StorageError("x"), ExitCode.FAILED),
        (MissingExtraError("x"), ExitCode.FAILED),
        (DeviceError("x"), ExitCode.FAILED),
        (ValidationError("x"), ExitCode.USAGE),
        (UnsafeFormatError("x"), ExitCode.USAGE),
        (UnreadableFilesError("x"), ExitCode.USAGE),
        (NotFound("x"), ExitCode.NOT_FOUND),
        (_MissingShard("x"), ExitCode.NOT_FOUND),
        (Conflict("x"), ExitCode.CONFLICT),
        (IntegrityError("x"), ExitCode.INTEGRITY),
        (PermissionDenied("x"), ExitCode.PERMISSION_DENIED),
        (_Both("x"), ExitCode.PERMISSION_DENIED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else value.name,
)
def test_the_most_specific_class_decides(error: WeightbaseError, code: ExitCode) -> None:
    assert exit_code_for(error) is code


def test_the_codes_are_stable() -> None:
    # scripts compare numbers: a renumbering is a breaking change, and must be one on purpose
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "NOT_FOUND": 3,
        "CONFLICT": 4,
        "INTEGRITY": 5,
        "PERMISSION_DENIED": 6,
    }
