"""Version numbers have a bound, and a version past it is refused before anything is stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from typer.testing import CliRunner

import weightbase
from weightbase.cli import ExitCode, app
from weightbase.datasets import from_numpy
from weightbase.errors import ValidationError
from weightbase.versioning.semver import MAX_VERSION_PART, bump, new_version, next_version
from weightbase.workspace import Workspace

TOP = MAX_VERSION_PART
OUT_OF_BOUNDS = [
    f"{TOP + 1}.0.0",
    f"0.{TOP + 1}.0",
    f"0.0.{TOP + 1}",
    "9223372036854775807.0.0",
    "99999999999999999999.0.0",
]


def _weights(seed: int) -> dict[str, np.ndarray]:
    return {"w": np.random.default_rng(seed).standard_normal(8).astype(np.float32)}


def _stored(workspace: Workspace) -> tuple[object, ...]:
    store = workspace.store
    return (
        sorted(store.snapshots()),
        sorted(store.refs().items()),
        sorted(info.key for info in store.objects.list("")),
    )


def test_the_bound_is_the_catalogs_integer_columns() -> None:
    assert MAX_VERSION_PART == 2**31 - 1
    assert new_version(f"v{TOP}.{TOP}.{TOP}") == f"{TOP}.{TOP}.{TOP}"


@pytest.mark.parametrize("text", OUT_OF_BOUNDS)
def test_a_new_version_past_the_bound_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValidationError, match=f"at most {TOP}") as caught:
        new_version(text)
    assert caught.value.bound == TOP
    with pytest.raises(ValidationError, match=f"at most {TOP}"):
        next_version([], text, "minor", what="m")


@pytest.mark.parametrize(
    ("latest", "part"),
    [(f"{TOP}.0.0", "major"), (f"1.{TOP}.0", "minor"), (f"1.2.{TOP}", "patch")],
)
def test_a_bump_past_the_bound_is_refused_naming_it(latest: str, part: str) -> None:
    with pytest.raises(ValidationError, match=f"cannot bump {part} of {latest}.*at most {TOP}"):
        bump(latest, part)  # type: ignore[arg-type]


def test_a_bump_up_to_the_bound_is_allowed() -> None:
    assert bump(f"{TOP - 1}.5.5", "major") == f"{TOP}.0.0"
    assert bump(f"{TOP}.0.0", "minor") == f"{TOP}.1.0"


@pytest.mark.parametrize("text", OUT_OF_BOUNDS)
def test_pushing_a_version_past_the_bound_stores_nothing(workspace: Workspace, text: str) -> None:
    workspace.models.push("m", _weights(0), version="1.0.0")
    before = _stored(workspace)
    with pytest.raises(ValidationError, match=f"at most {TOP}"):
        workspace.models.push("m", _weights(1), version=text)
    assert _stored(workspace) == before
    assert [v.version for v in workspace.models.versions("m")] == ["1.0.0"]


def test_bumping_a_model_past_the_bound_stores_nothing(workspace: Workspace) -> None:
    workspace.models.push("m", _weights(0), version=f"{TOP}.0.0")
    before = _stored(workspace)
    with pytest.raises(ValidationError, match=f"cannot bump major of {TOP}.0.0"):
        workspace.models.push("m", _weights(1), bump="major")
    assert _stored(workspace) == before
    assert workspace.models.push("m", _weights(1), bump="minor").version == f"{TOP}.1.0"


def test_registering_a_dataset_version_past_the_bound_stores_nothing(
    workspace: Workspace,
) -> None:
    rng = np.random.default_rng(0)
    workspace.datasets.register("d", from_numpy(rng.random((8, 2))), version=f"1.{TOP}.0")
    before = _stored(workspace)
    with pytest.raises(ValidationError, match=f"at most {TOP}"):
        workspace.datasets.register("d", from_numpy(rng.random((8, 2))), version=OUT_OF_BOUNDS[-1])
    with pytest.raises(ValidationError, match=f"cannot bump minor of 1.{TOP}.0"):
        workspace.datasets.register("d", from_numpy(rng.random((8, 2))))
    assert _stored(workspace) == before


@pytest.mark.parametrize(
    "args",
    [
        ["--version", "99999999999999999999.0.0"],
        ["--version", "9223372036854775807.0.0"],
        ["--bump", "major"],
    ],
)
def test_the_cli_refuses_with_one_line_and_stores_nothing(
    weightbase_home: Path, tmp_path: Path, args: list[str]
) -> None:
    runner = CliRunner()
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    save_file(_weights(0), str(first))
    save_file(_weights(1), str(second))
    pushed = runner.invoke(app, ["models", "push", "m", str(first), "--version", f"{TOP}.0.0"])
    assert pushed.exit_code == 0, pushed.output
    with weightbase.open(weightbase_home) as workspace:
        before = _stored(workspace)
    result = runner.invoke(app, ["models", "push", "m", str(second), *args])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"at most {TOP}" in result.output
    assert not isinstance(result.exception, OverflowError)
    with weightbase.open(weightbase_home) as workspace:
        assert _stored(workspace) == before
