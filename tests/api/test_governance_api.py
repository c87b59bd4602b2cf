"""Approvals and compliance over the API: policies, requests, decisions, reports."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from tests.api.support import MODEL, Server, assert_error

GOVERNED = "org/governed"


@pytest.fixture
def second_approver(server: Server) -> Iterator[httpx.Client]:
    """A client of another user with the approver role."""
    server.wb.access.users.add("approver-two", role="approver")
    secret = server.wb.access.tokens.create("approver-two", name="tests").secret
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def approver(server: Server) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.tokens['approver']}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=30) as client:
        yield client


def test_a_version_reaches_production_once_two_approvers_approve(
    admin: httpx.Client,
    editor: httpx.Client,
    viewer: httpx.Client,
    approver: httpx.Client,
    second_approver: httpx.Client,
    server: Server,
) -> None:
    server.wb.models.push(GOVERNED, {"w": np.ones(4, dtype=np.float32)})
    try:
        policy_path = f"/models/{GOVERNED}/-/approval-policy"
        assert viewer.get(policy_path).json()["approvers"] == []
        policy = {
            "approvers": ["approver-user", "approver-two"],
            "required_approvals": 2,
            "require_approval_for_production": True,
            "reason": "regulated",
        }
        assert_error(editor.put(policy_path, json=policy), 403, "permission_denied")
        assert_error(approver.put(policy_path, json=policy), 403, "permission_denied")
        assert_error(
            admin.put(policy_path, json={"required_approvals": 0}), 422, "validation_error"
        )
        set_ = admin.put(policy_path, json=policy)
        assert set_.status_code == 200, set_.text
        assert set_.json() == {
            "model": GOVERNED,
            "approvers": ["approver-user", "approver-two"],
            "required_approvals": 2,
            "require_approval_for_production": True,
        }
        assert viewer.get(policy_path).json() == set_.json()

        stage = f"/models/{GOVERNED}/-/versions/0.1.0/stage"
        assert_error(editor.post(stage, json={"stage": "production"}), 403, "approval_required")

        ask = {"version": f"{GOVERNED}@0.1.0", "target": "production", "comment": "ready"}
        assert_error(viewer.post("/approvals", json=ask), 403, "permission_denied")
        made = editor.post("/approvals", json=ask)
        assert made.status_code == 201, made.text
        request = made.json()
        assert (request["requested_by"], request["status"], request["comment"]) == (
            "editor-user",
            "pending",
            "ready",
        )
        assert_error(editor.post("/approvals", json=ask), 409, "conflict")
        listed = viewer.get("/approvals", params={"model": GOVERNED, "status": "pending"}).json()
        assert [item["id"] for item in listed["items"]] == [request["id"]]
        assert listed["next"] is None
        assert (
            viewer.get("/approvals", params={"model": GOVERNED, "status": "approved"}).json()[
                "items"
            ]
            == []
        )
        assert_error(viewer.get("/approvals", params={"status": "lost"}), 422, "validation_error")

        decisions = f"/approvals/{request['id']}/decisions"
        approve = {"decision": "approved", "comment": "checked"}
        assert_error(editor.post(decisions, json=approve), 403, "permission_denied")
        assert_error(viewer.post(decisions, json=approve), 403, "permission_denied")
        outsider = assert_error(admin.post(decisions, json=approve), 403, "permission_denied")
        assert "not an approver" in outsider["message"]
        assert_error(approver.post(decisions, json={"decision": "maybe"}), 422, "validation_error")
        first = approver.post(decisions, json=approve)
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "pending"
        assert_error(approver.post(decisions, json=approve), 409, "conflict")
        assert_error(editor.post(stage, json={"stage": "production"}), 403, "approval_required")

        second = second_approver.post(decisions, json={"decision": "approved"})
        assert second.json()["status"] == "approved"
        read = viewer.get(f"/approvals/{request['id']}").json()
        assert read["status"] == "approved"
        assert [(d["approver"], d["decision"], d["comment"]) for d in read["decisions"]] == [
            ("approver-user", "approved", "checked"),
            ("approver-two", "approved", None),
        ]
        promoted = editor.post(stage, json={"stage": "production"})
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["stage"] == "production"
        assert_error(viewer.get("/approvals/999999"), 404, "not_found")
        assert_error(viewer.get("/models/org/nothing-here/-/approval-policy"), 404, "not_found")
        entries = server.wb.audit.entries("model", server.wb.models.get(GOVERNED).id)
        actors = [(e.action, e.actor) for e in entries if e.action.startswith("approval.")]
        assert actors == [
            ("approval.request", "editor-user"),
            ("approval.decide", "approver-user"),
            ("approval.decide", "approver-two"),
        ]
    finally:  # out of the model listings the other tests page through
        server.wb.models.delete(GOVERNED, force=True)


def test_compliance_reports_are_stored_and_listed(
    editor: httpx.Client, viewer: httpx.Client
) -> None:
    path = f"/models/{MODEL}/-/versions/0.1.0/compliance"
    policies = [
        {"check": "metric", "metric": "accuracy", "at_least": 0.5},
        {"check": "fairness", "metric": "accuracy_gap", "below": 0.6},
    ]
    fairness = {
        "predictions": [1, 0, 1, 1, 0, 0],
        "labels": [1, 0, 0, 1, 0, 1],
        "groups": ["a", "a", "a", "b", "b", "b"],
    }
    assert_error(
        viewer.post(path, json={"policies": policies, "fairness": fairness}),
        403,
        "permission_denied",
    )
    made = editor.post(path, json={"policies": policies, "fairness": fairness})
    assert made.status_code == 201, made.text
    report = made.json()
    assert (report["model"], report["version"], report["created_by"]) == (
        MODEL,
        "0.1.0",
        "editor-user",
    )
    assert [(r["check"], r["passed"]) for r in report["results"]] == [
        ("metric", True),
        ("fairness", True),
    ]
    assert report["results"][1]["figures"]["per_group_accuracy"] == {
        "a": pytest.approx(2 / 3),
        "b": pytest.approx(2 / 3),
    }
    assert (report["risk_level"], report["passed"]) == ("low", True)
    unproven = editor.post(path, json={"policies": policies, "fairness": None}).json()
    assert unproven["results"][1]["passed"] is None
    assert (unproven["risk_level"], unproven["passed"]) == ("high", False)
    history = viewer.get(path).json()
    assert [item["risk_level"] for item in history["items"]] == ["low", "high"]
    assert history["next"] is None
    bad = editor.post(path, json={"policies": [{"check": "vibes"}]})
    assert_error(bad, 422, "validation_error")
    assert_error(editor.post(path, json={"policies": []}), 422, "validation_error")
    assert_error(viewer.get(f"/models/{MODEL}/-/versions/9.9.9/compliance"), 404, "not_found")


def test_governance_routes_need_a_token(anonymous: httpx.Client) -> None:
    assert_error(anonymous.get("/approvals"), 401, "not_authenticated")
    assert_error(anonymous.post("/approvals", json={}), 401, "not_authenticated")
    assert_error(anonymous.post("/approvals/1/decisions", json={}), 401, "not_authenticated")
    assert_error(
        anonymous.put(f"/models/{MODEL}/-/approval-policy", json={}), 401, "not_authenticated"
    )
    compliance = f"/models/{MODEL}/-/versions/0.1.0/compliance"
    assert_error(anonymous.get(compliance), 401, "not_authenticated")


def test_approval_requests_page_with_a_cursor(
    server: Server, editor: httpx.Client, viewer: httpx.Client
) -> None:
    name = "org/paged-approvals"
    try:
        for index in range(3):
            weights = {"w": np.full(4, float(index), dtype=np.float32)}
            version = server.wb.models.push(name, weights)
            made = editor.post("/approvals", json={"version": version.ref, "target": "production"})
            assert made.status_code == 201, made.text
        whole = viewer.get("/approvals", params={"model": name}).json()["items"]
        assert len(whole) == 3
        paged, cursor = [], None
        while True:
            params = {"model": name, "limit": 1, **({"after": cursor} if cursor else {})}
            body = viewer.get("/approvals", params=params).json()
            paged += body["items"]
            cursor = body["next"]
            if cursor is None:
                break
        assert paged == whole  # newest first, each once
    finally:
        server.wb.models.delete(name, force=True)
