"""Seed 003's deploy endpoints: ``POST /deploy/{model}``, ``GET …/status``, ``DELETE``, more."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from tests.api.support import OWNED, Server, assert_error

DEPLOYED = "org/deployed"


@pytest.fixture
def deployed(server: Server) -> Iterator[str]:
    """A model of its own with two versions, removed after the test."""
    server.wb.models.push(DEPLOYED, {"w": np.ones((3, 2), dtype=np.float32)})
    server.wb.models.push(DEPLOYED, {"w": np.zeros((3, 2), dtype=np.float32)})
    server.wb.models.set_alias(DEPLOYED, "candidate", "0.2.0")
    try:
        yield DEPLOYED
    finally:  # out of the model listings the other tests page through
        server.wb.models.delete(DEPLOYED, force=True)


def test_deploy_status_scale_history_and_delete(
    deployed: str, editor: httpx.Client, viewer: httpx.Client
) -> None:
    body = {
        "version": "0.1.0",
        "environment": "staging",
        "config": {"batchSize": 16, "scaling": {"minReplicas": 1, "maxReplicas": 3}},
        "reason": "first",
    }
    made = editor.post(f"/deploy/{deployed}", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "pending"
    assert made.json()["config"]["batch_size"] == 16
    status = viewer.get(f"/deploy/{deployed}/status")
    assert status.status_code == 200, status.text
    assert status.json() == made.json()
    scaled = editor.post(f"/deploy/{deployed}/-/scale", json={"replicas": 3})
    assert scaled.json()["replicas"] == 3, scaled.text
    running = editor.post(f"/deploy/{deployed}/-/status", json={"status": "running"})
    assert running.json()["status"] == "running", running.text
    health = viewer.get(f"/deploy/{deployed}/-/health", params={"environment": "staging"})
    assert health.json()["healthy"] is True
    listed = viewer.get("/deploy", params={"model": deployed}).json()["items"]
    assert [item["id"] for item in listed] == [made.json()["id"]]
    stopped = editor.delete(f"/deploy/{deployed}", params={"reason": "done"})
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped"
    history = viewer.get(f"/deploy/{deployed}/-/history").json()["items"]
    assert [event["action"] for event in history] == ["deploy", "scale", "status", "undeploy"]


def test_deploy_by_alias(deployed: str, editor: httpx.Client) -> None:
    made = editor.post(f"/deploy/{deployed}", json={"alias": "candidate"})
    assert made.json()["version"] == "0.2.0", made.text
    both = editor.post(f"/deploy/{deployed}", json={"alias": "candidate", "version": "0.1.0"})
    assert_error(both, 422, "validation_error")


def test_bad_input_is_a_clear_error(deployed: str, editor: httpx.Client) -> None:
    error = assert_error(
        editor.post(f"/deploy/{deployed}", json={"config": {"scaling": {"targetCPU": 500}}}),
        422,
        "validation_error",
    )
    assert "scaling.target_cpu" in error["message"]
    assert_error(editor.post(f"/deploy/{deployed}", json={"version": "9.9.9"}), 404, "not_found")
    assert_error(editor.get(f"/deploy/{deployed}/status"), 404, "not_found")
    assert_error(editor.delete(f"/deploy/{deployed}"), 404, "not_found")
    assert_error(editor.post("/deploy/org/nobody", json={}), 404, "not_found")


def test_production_without_approval_is_403(
    deployed: str, editor: httpx.Client, server: Server
) -> None:
    server.wb.approvals.set_policy(
        deployed, approvers=["ana"], required_approvals=1, require_approval_for_production=True
    )
    refused = editor.post(f"/deploy/{deployed}", json={"environment": "production"})
    error = assert_error(refused, 403, "approval_required")
    assert "needs an approved request" in error["message"]


def test_viewers_read_and_only_owners_deploy(viewer: httpx.Client, editor: httpx.Client) -> None:
    assert_error(viewer.post(f"/deploy/{OWNED}", json={}), 403, "permission_denied")
    assert_error(editor.post(f"/deploy/{OWNED}", json={}), 403, "permission_denied")
    assert viewer.get("/deploy").status_code == 200
