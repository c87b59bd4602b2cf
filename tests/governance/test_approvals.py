"""Approval policies, requests and decisions, and the production check they feed."""

from __future__ import annotations

import numpy as np
import pytest

from weightbase.errors import (
    ApprovalRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from weightbase.workspace import Workspace


def _weights(seed: int) -> dict[str, np.ndarray]:
    return {"w": np.random.default_rng(seed).standard_normal((8, 8)).astype(np.float32)}


@pytest.fixture
def governed(workspace: Workspace) -> Workspace:
    """A model ``bert`` with two versions whose production needs two of three approvers."""
    workspace.models.push("bert", _weights(0))
    workspace.models.push("bert", _weights(1))
    workspace.approvals.set_policy(
        "bert",
        approvers=["ana", "ben", "cy"],
        required_approvals=2,
        require_approval_for_production=True,
    )
    return workspace


def test_without_a_policy_production_is_open(workspace: Workspace) -> None:
    version = workspace.models.push("free", _weights(0))
    assert workspace.approvals.policy("free").require_approval_for_production is False
    assert workspace.models.promote(version, "production").stage == "production"
    workspace.models.set_alias("free", "production", version.version)


def test_production_needs_an_approved_request(governed: Workspace) -> None:
    wb = governed
    with pytest.raises(ApprovalRequired, match=r"bert@0\.2\.0 needs an approved request") as info:
        wb.models.promote("bert@0.2.0", "production")
    assert info.value.context == {"model": "bert", "version": "0.2.0"}
    with pytest.raises(ApprovalRequired):
        wb.models.set_alias("bert", "production", "0.2.0")
    with pytest.raises(ApprovalRequired):
        wb.models.push("bert", _weights(2), stage="production")
    with pytest.raises(ApprovalRequired):
        wb.models.push("bert", _weights(3), aliases=["production"])
    assert wb.models.version("bert@0.2.0").stage == "development"
    assert [v.version for v in wb.models.versions("bert")] == ["0.1.0", "0.2.0"]
    wb.models.promote("bert@0.2.0", "staging")  # other stages stay open
    wb.models.set_alias("bert", "candidate", "0.2.0")

    request = wb.approvals.request("bert@0.2.0", comment="beats 0.1.0", requested_by="dee")
    assert (request.status, request.target, request.requested_by) == (
        "pending",
        "production",
        "dee",
    )
    first = wb.approvals.decide(request.id, "approved", approver="ana", comment="ok")
    assert first.status == "pending"
    with pytest.raises(ApprovalRequired):
        wb.models.promote("bert@0.2.0", "production")
    second = wb.approvals.decide(request.id, "approved", approver="ben")
    assert second.status == "approved"
    assert second.decided_at is not None
    assert [(d.approver, d.decision) for d in second.decisions] == [
        ("ana", "approved"),
        ("ben", "approved"),
    ]
    assert wb.models.promote("bert@0.2.0", "production").stage == "production"
    wb.models.set_alias("bert", "production", "0.2.0")
    with pytest.raises(ApprovalRequired):  # approval is per version
        wb.models.rollback("bert", to="0.1.0", reason="regression")


def test_one_rejection_rejects_and_decisions_are_checked(governed: Workspace) -> None:
    wb = governed
    request = wb.approvals.request("bert@0.2.0", requested_by="ana")
    with pytest.raises(Conflict, match="pending request"):
        wb.approvals.request("bert@0.2.0")
    with pytest.raises(PermissionDenied, match="not an approver"):
        wb.approvals.decide(request.id, "approved", approver="mallory")
    with pytest.raises(PermissionDenied, match="their own request"):
        wb.approvals.decide(request.id, "approved", approver="ana")
    with pytest.raises(ValidationError, match="decision"):
        wb.approvals.decide(request.id, "maybe", approver="ben")  # type: ignore[arg-type]
    wb.approvals.decide(request.id, "approved", approver="ben")
    with pytest.raises(Conflict, match="already decided"):
        wb.approvals.decide(request.id, "approved", approver="ben")
    rejected = wb.approvals.decide(request.id, "rejected", approver="cy", comment="bias")
    assert rejected.status == "rejected"
    with pytest.raises(Conflict, match="already rejected"):
        wb.approvals.decide(request.id, "approved", approver="ana")
    with pytest.raises(NotFound):
        wb.approvals.decide(999, "approved", approver="ben")
    with pytest.raises(NotFound):
        wb.approvals.get(999)

    again = wb.approvals.request("bert@0.2.0", requested_by="ana")  # a new try after rejection
    assert [r.id for r in wb.approvals.requests("bert")] == [again.id, request.id]
    assert [r.id for r in wb.approvals.requests(status="rejected")] == [request.id]
    assert wb.approvals.requests("bert", status="approved") == []
    with pytest.raises(ValidationError, match="status"):
        wb.approvals.requests(status="lost")


def test_decisions_are_audited_and_emitted(governed: Workspace) -> None:
    wb = governed
    heard: list[str] = []
    wb.events.on("*", lambda event: heard.append(event.type))
    request = wb.approvals.request("bert@0.2.0", requested_by="dee")
    wb.approvals.decide(request.id, "approved", approver="ana")
    assert heard == ["approval_requested", "approval_decided"]
    actions = [entry.action for entry in wb.models.history("bert")]
    assert actions[-3:] == ["policy.update", "approval.request", "approval.decide"]
    assert request.to_dict()["decisions"] == []
    assert wb.approvals.get(request.id).to_dict()["decisions"][0]["approver"] == "ana"


def test_policies_are_checked(governed: Workspace) -> None:
    wb = governed
    with pytest.raises(ValidationError, match="at least 1"):
        wb.approvals.set_policy("bert", required_approvals=0)
    with pytest.raises(ValidationError, match="needs 4 approvals but has 3"):
        wb.approvals.set_policy("bert", required_approvals=4)
    with pytest.raises(ValidationError, match="approver name"):
        wb.approvals.set_policy("bert", approvers=[""])
    with pytest.raises(NotFound):
        wb.approvals.policy("nobody")
    relaxed = wb.approvals.set_policy("bert", approvers="ana", required_approvals=1)
    assert relaxed.to_dict() == {
        "model": "bert",
        "approvers": ["ana"],
        "required_approvals": 1,
        "require_approval_for_production": True,
    }
    off = wb.approvals.set_policy("bert", require_approval_for_production=False)
    assert not off.require_approval_for_production
    wb.models.promote("bert@0.2.0", "production")


def test_the_approvals_commands(governed: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from weightbase.cli import app

    url = governed.catalog.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("WEIGHTBASE_CATALOG_URL", url)
    monkeypatch.setenv("WEIGHTBASE_HOME", str(governed.home))
    runner = CliRunner()

    def run(*args: str, actor: str = "dee") -> str:
        result = runner.invoke(app, ["approvals", *args], env={"WEIGHTBASE_ACTOR": actor})
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "needs approval; 2 of ana, ben, cy" in run("policy", "bert")
    made = json.loads(run("request", "bert@0.2.0", "--comment", "ready", "--json"))
    assert "pending" in run("decide", str(made["id"]), "approved", actor="ana")
    decided = json.loads(run("decide", str(made["id"]), "approved", "--json", actor="ben"))
    assert decided["status"] == "approved"
    assert "ana approved" in run("show", str(made["id"]))
    assert json.loads(run("show", str(made["id"]), "--json"))["status"] == "approved"
    assert "bert@0.2.0" in run("list", "bert")
    assert [item["id"] for item in json.loads(run("list", "--status", "approved", "--json"))] == [
        made["id"]
    ]
    changed = json.loads(run("policy", "bert", "-a", "ana", "--required", "1", "--json"))
    assert changed["approvers"] == ["ana"]
    assert "does not need" in run("policy", "bert", "--no-require-for-production")

    refused = runner.invoke(app, ["approvals", "decide", str(made["id"]), "approved"])
    assert refused.exit_code == 4  # already approved: a conflict
    promote = runner.invoke(app, ["approvals", "request", "bert@0.1.0", "--target", "staging"])
    assert promote.exit_code == 0
