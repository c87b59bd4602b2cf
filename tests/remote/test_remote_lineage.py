"""Lineage through a server: ``wb.lineage``, ``wb.describe`` and ``weightbase --url … lineage``."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.lineage.lineage_support import Made, record_lineage
from tests.remote_support import LiveServer
from typer.testing import CliRunner

import weightbase
from weightbase.cli import ExitCode, app
from weightbase.errors import NotFound, NotSupported, ValidationError
from weightbase.lineage import LineageService, Node, lineage_of
from weightbase.remote import RemoteWorkspace
from weightbase.remote.lineage import RemoteLineage
from weightbase.workspace import Workspace


@pytest.fixture
def served(
    live_server: LiveServer, catalog_url: str, weightbase_home: Path
) -> Iterator[tuple[Workspace, RemoteWorkspace, Made]]:
    local = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        made = record_lineage(local)
        with live_server.serving(local) as remote:
            yield local, remote, made
    finally:
        local.close()


def _run(remote: RemoteWorkspace, *args: str, code: int = 0) -> Any:
    token = str(remote.connection._client.headers["authorization"]).removeprefix("Bearer ")
    result = CliRunner().invoke(
        app, ["--url", remote.url, *args], env={"WEIGHTBASE_TOKEN": token, "WEIGHTBASE_URL": ""}
    )
    assert result.exit_code == code, (result.output, result.exception)
    return result


def test_every_public_method_of_the_service_is_overridden() -> None:
    public = {
        name
        for name in dir(LineageService)
        if not name.startswith("_") and callable(getattr(LineageService, name))
    }
    assert public >= {"add_edge", "remove_edge", "edges", "ancestors", "descendants", "graph"}
    assert sorted(name for name in public if name not in vars(RemoteLineage)) == []
    for name in public:
        remote = inspect.signature(getattr(RemoteLineage, name))
        assert remote == inspect.signature(getattr(LineageService, name)), name
    assert "relations" in vars(RemoteLineage)


def test_walks_edges_and_names_as_embedded(
    served: tuple[Workspace, RemoteWorkspace, Made],
) -> None:
    local, remote, made = served
    assert isinstance(remote.lineage, RemoteLineage)
    for node in (made.dataset, made.base, Node("run", str(made.run_id))):
        assert remote.lineage.graph(node) == local.lineage.graph(node)
        assert remote.lineage.graph(node, depth=1) == local.lineage.graph(node, depth=1)
        assert remote.lineage.ancestors(node) == local.lineage.ancestors(node)
        assert remote.lineage.descendants(node, depth=1) == local.lineage.descendants(node, depth=1)
        for direction in ("in", "out", "both"):
            assert remote.lineage.edges(node, direction=direction) == local.lineage.edges(
                node, direction=direction
            )
    only = {"fine_tuned_from"}
    assert remote.lineage.descendants(made.dataset, relations=only) == []
    assert remote.lineage.ancestors(made.tuned, relations=only) == local.lineage.ancestors(
        made.tuned, relations=only
    )
    assert remote.lineage.ancestors(made.base, depth=0) == []
    nodes = local.lineage.graph(made.dataset).nodes
    assert remote.describe(nodes) == local.describe(nodes)
    many = [*nodes, *(Node("deployment", str(i)) for i in range(250))]  # three requests
    assert remote.describe(many) == local.describe(many)
    assert remote.lineage.relations == local.lineage.relations
    with pytest.raises(ValidationError, match="unknown lineage relation"):
        remote.lineage.ancestors(made.base, relations=["no_such_relation"])


def test_lineage_of_any_node_through_the_server(
    served: tuple[Workspace, RemoteWorkspace, Made],
) -> None:
    local, remote, made = served
    for text in (
        "dataset:digits@0.1.0",
        "model:mlp@latest",
        f"run:{made.run_id}",
        f"checkpoint:{made.checkpoint}",
        str(made.tuned),
    ):
        assert lineage_of(remote, text).to_dict() == lineage_of(local, text).to_dict(), text
    for text in ("model:nope@0.1.0", "run:999", "checkpoint:runs/9/9", "deployment:7"):
        with pytest.raises(NotFound):
            lineage_of(remote, text)


def test_edges_are_added_and_removed_on_the_server(
    served: tuple[Workspace, RemoteWorkspace, Made],
) -> None:
    local, remote, made = served
    deployment = Node("deployment", "prod")
    added = remote.lineage.add_edge(deployment, made.tuned, "deployed_as")
    assert added.source == deployment
    assert remote.lineage.add_edge(deployment, made.tuned, "deployed_as") == added  # once
    assert [r.node for r in local.lineage.descendants(made.tuned)] == [deployment]
    assert local.audit.entries("lineage_edge")[-1].action == "lineage.add_edge"
    assert remote.lineage.remove_edge(deployment, made.tuned, "deployed_as") == added
    assert local.lineage.descendants(made.tuned) == []
    with pytest.raises(NotFound):
        remote.lineage.remove_edge(deployment, made.tuned, "deployed_as")
    with pytest.raises(ValidationError, match="unknown lineage relation"):
        remote.lineage.add_edge(deployment, made.tuned, "serves")
    with pytest.raises(NotSupported):
        remote.lineage.register_relation("serves")


def test_the_cli_walks_the_servers_graph(served: tuple[Workspace, RemoteWorkspace, Made]) -> None:
    local, remote, made = served
    found = json.loads(_run(remote, "lineage", "dataset:digits@0.1.0", "--json").stdout)
    assert found == lineage_of(local, "dataset:digits@0.1.0").to_dict()
    assert (
        f'"run:{made.run_id}" -> "{made.dataset}"'
        in _run(remote, "lineage", "dataset:digits@0.1.0", "--dot").stdout
    )
    assert "digits@0.1.0" in _run(remote, "lineage", "model:mlp@0.1.0").stdout
    _run(remote, "lineage", "model:nope@0.1.0", code=ExitCode.NOT_FOUND)
    _run(remote, "lineage", "nope", code=ExitCode.USAGE)
    # models lineage names its nodes through the server too
    up = json.loads(_run(remote, "models", "lineage", "mlp-tuned@0.1.0", "--json").stdout)
    assert up["nodes"][0]["name"] == "mlp@0.1.0"
