"""Production deployments need the approval that promotion to production needs.

The rule is governance's (``wb.approvals``): deploying to ``production`` asks the
same check the registry asks of a move into the production stage or alias.
"""

from __future__ import annotations

import inspect
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
from weightbase.errors import ApprovalRequired
from weightbase.remote import RemoteWorkspace
from weightbase.remote.deployments import RemoteDeployments
from weightbase.serving.service import Deployments
from weightbase.workspace import Workspace


def _governed(wb: Workspace) -> None:
    wb.models.push("bert", {"w": np.ones((2, 2), dtype=np.float32)})
    wb.approvals.set_policy(
        "bert", approvers=["ana"], required_approvals=1, require_approval_for_production=True
    )


def _approve(wb: Workspace) -> None:
    request = wb.approvals.request("bert@0.1.0", requested_by="dee")
    wb.approvals.decide(request.id, "approved", approver="ana")


@pytest.fixture
def governed(workspace: Workspace) -> Workspace:
    _governed(workspace)
    return workspace


@pytest.fixture
def served(
    live_server: LiveServer, catalog_url: str, weightbase_home: Path
) -> Iterator[tuple[Workspace, Workspace]]:
    local = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        _governed(local)
        with live_server.serving(local) as remote:
            yield local, remote
    finally:
        local.close()


def test_production_needs_an_approved_request(governed: Workspace) -> None:
    wb = governed
    with pytest.raises(ApprovalRequired, match=r"bert@0\.1\.0 needs an approved request") as info:
        wb.deployments.deploy("bert@0.1.0", environment="production")
    assert info.value.context == {"model": "bert", "version": "0.1.0"}
    assert wb.deployments.list(include_stopped=True) == []
    # other environments stay open
    assert wb.deployments.deploy("bert@0.1.0", environment="staging").status == "pending"
    _approve(wb)
    made = wb.deployments.deploy("bert@0.1.0", environment="production", reason="approved")
    assert made.environment == "production"


def test_production_needs_approval_through_a_server(served: tuple[Workspace, Workspace]) -> None:
    local, remote = served
    with pytest.raises(ApprovalRequired, match="needs an approved request"):
        remote.deployments.deploy("bert@0.1.0", environment="production")
    with pytest.raises(ApprovalRequired):
        remote.deployments.deploy("bert@0.1.0", config={"environment": "production"})
    _approve(local)
    assert remote.deployments.deploy("bert@0.1.0", environment="production").status == "pending"


def test_changes_are_audited_and_emitted(governed: Workspace) -> None:
    wb = governed
    seen: list[str] = []
    for name in (
        "deployment_created",
        "deployment_updated",
        "deployment_scaled",
        "deployment_status_changed",
        "deployment_stopped",
    ):
        wb.events.on(name, lambda event, name=name: seen.append(name))
    made = wb.deployments.deploy("bert@0.1.0", environment="staging")
    wb.deployments.deploy("bert@0.1.0", environment="staging", config={"batch_size": 4})
    wb.deployments.scale("bert", 1)
    wb.deployments.set_status("bert", "running")
    wb.deployments.undeploy("bert")
    assert seen == [
        "deployment_created",
        "deployment_updated",
        "deployment_scaled",
        "deployment_status_changed",
        "deployment_stopped",
    ]
    actions = [entry.action for entry in wb.audit.entries(entity_kind="model")]
    assert [a for a in actions if a.startswith("deployment.")] == [
        "deployment.deploy",
        "deployment.deploy",
        "deployment.scale",
        "deployment.status",
        "deployment.undeploy",
    ]
    assert made.id


def test_every_public_method_of_the_service_is_overridden_remotely() -> None:
    public = {
        name
        for name in dir(Deployments)
        if not name.startswith("_") and callable(getattr(Deployments, name))
    }
    assert public >= {"deploy", "scale", "undeploy", "status", "health", "history", "list"}
    assert sorted(name for name in public if name not in vars(RemoteDeployments)) == []
    for name in public:
        remote = inspect.signature(getattr(RemoteDeployments, name))
        assert remote == inspect.signature(getattr(Deployments, name)), name


def test_the_deploy_commands_work_against_a_server(served: tuple[Workspace, Workspace]) -> None:
    local, remote = served
    assert isinstance(remote, RemoteWorkspace)
    token = str(remote.connection._client.headers["authorization"]).removeprefix("Bearer ")
    env = {"WEIGHTBASE_TOKEN": token, "WEIGHTBASE_URL": ""}

    def run(*args: str, code: int = 0) -> Any:
        result = CliRunner().invoke(app, ["--url", remote.url, "deploy", *args], env=env)
        assert result.exit_code == code, (result.output, result.exception)
        return result

    made = json.loads(run("create", "bert@0.1.0", "--env", "staging", "--json").stdout)
    assert made["status"] == "pending"
    assert local.deployments.status("bert").id == made["id"]
    run("create", "bert@0.1.0", "--env", "production", code=ExitCode.PERMISSION_DENIED)
    run("scale", "bert", "2", code=ExitCode.USAGE)
    stopped = json.loads(run("stop", "bert", "--json").stdout)
    assert stopped["status"] == "stopped"
    history = json.loads(run("history", "bert", "--json").stdout)
    assert [event["action"] for event in history] == ["deploy", "undeploy"]
