"""The CLI on a server: ``weightbase --url URL …`` or ``WEIGHTBASE_URL``; the token from the env."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.remote_support import LiveServer
from typer.testing import CliRunner

import weightbase
from weightbase.cli import ExitCode, app
from weightbase.remote import RemoteWorkspace
from weightbase.workspace import Workspace


@pytest.fixture
def served(
    live_server: LiveServer, catalog_url: str, weightbase_home: Path
) -> Iterator[tuple[Workspace, RemoteWorkspace]]:
    local = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        with live_server.serving(local) as remote:
            yield local, remote
    finally:
        local.close()


def _run(remote: RemoteWorkspace, *args: str, code: int = 0, url: bool = True) -> Any:
    token = str(remote.connection._client.headers["authorization"]).removeprefix("Bearer ")
    env = {"WEIGHTBASE_TOKEN": token, "WEIGHTBASE_URL": "" if url else remote.url}
    prefix = ["--url", remote.url] if url else []
    result = CliRunner().invoke(app, [*prefix, *args], env=env)
    assert result.exit_code == code, (result.output, result.exception)
    return result


def test_push_list_and_pull_through_the_server(
    served: tuple[Workspace, RemoteWorkspace], tmp_path: Path
) -> None:
    local, remote = served
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    weights = {"w": np.arange(4096, dtype=np.float32).reshape(64, 64)}
    path = tmp_path / "w.safetensors"
    safetensors_numpy.save_file(weights, str(path))
    _run(remote, "models", "push", "org/m", str(path))
    assert local.models.version("org/m@latest").version == "0.1.0"  # it landed on the server
    listed = json.loads(_run(remote, "models", "list", "--json", url=False).stdout)
    assert [item["name"] for item in listed["models"]] == ["org/m"]
    out = tmp_path / "out.safetensors"
    _run(remote, "models", "pull", "org/m@0.1.0", str(out))
    assert np.array_equal(safetensors_numpy.load_file(str(out))["w"], weights["w"])


def test_what_needs_the_servers_machine_says_so(served: tuple[Workspace, RemoteWorkspace]) -> None:
    _, remote = served
    result = _run(remote, "store", "gc", code=ExitCode.FAILED)
    assert "remote workspace" in result.output or "server" in result.output
