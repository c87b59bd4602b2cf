"""Ethics reviews and explanations over the API: who signs off, who reads, what is said."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from tests.api.support import Server, assert_error

from weightbase.governance.ethics import DEFAULT_QUESTIONNAIRE
from weightbase.governance.explain import NOT_AVAILABLE

REVIEWED = "org/reviewed"
ANSWERS = {q.id: f"about {q.id}" for q in DEFAULT_QUESTIONNAIRE.questions if q.required}


@pytest.fixture
def approver(server: Server) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.tokens['approver']}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def reviewed(server: Server) -> Iterator[str]:
    """A model of its own with one version, removed after the test."""
    server.wb.models.push(REVIEWED, {"w": np.ones((3, 2), dtype=np.float32)})
    try:
        yield f"/models/{REVIEWED}/-/versions/0.1.0"
    finally:  # out of the model listings the other tests page through
        server.wb.models.delete(REVIEWED, force=True)


def test_the_default_questionnaire_is_served(viewer: httpx.Client) -> None:
    served = viewer.get("/ethics/questionnaire")
    assert served.status_code == 200, served.text
    body = served.json()
    assert body["name"] == DEFAULT_QUESTIONNAIRE.name
    assert body["digest"] == DEFAULT_QUESTIONNAIRE.digest
    assert [q["id"] for q in body["questions"]] == [q.id for q in DEFAULT_QUESTIONNAIRE.questions]


def test_approvers_and_admins_sign_off_reviews_that_anyone_reads(
    reviewed: str,
    viewer: httpx.Client,
    editor: httpx.Client,
    approver: httpx.Client,
    admin: httpx.Client,
    server: Server,
) -> None:
    path = f"{reviewed}/ethics-reviews"
    body = {"answers": ANSWERS, "decision": "concerns", "notes": "needs an appeal process"}
    assert viewer.get(path).json() == {"items": [], "next": None}
    assert_error(viewer.post(path, json=body), 403, "permission_denied")
    assert_error(editor.post(path, json=body), 403, "permission_denied")
    assert_error(approver.post(path, json={**body, "decision": "maybe"}), 422, "validation_error")
    incomplete = {**body, "answers": {"intended_use": "triage", "mood": "good"}}
    error = assert_error(approver.post(path, json=incomplete), 422, "validation_error")
    assert "misuse_risks" in error["context"]["missing"]
    assert error["context"]["unknown"] == ["mood"]
    assert viewer.get(path).json()["items"] == []

    first = approver.post(path, json=body)
    assert first.status_code == 201, first.text
    signed = first.json()
    assert (signed["reviewer"], signed["decision"], signed["version"]) == (
        "approver-user",
        "concerns",
        "0.1.0",
    )
    assert len(signed["signoff_digest"]) == 64
    second = admin.post(path, json={**body, "decision": "approved", "notes": None})
    assert second.status_code == 201, second.text
    listed = viewer.get(path).json()["items"]
    assert [(r["reviewer"], r["decision"]) for r in listed] == [
        ("approver-user", "concerns"),
        ("admin-user", "approved"),
    ]
    assert listed[0] == signed

    custom = {
        "name": "triage-ethics",
        "questions": [{"id": "escalation", "text": "Who sees the hard cases?"}],
    }
    made = approver.post(
        path,
        json={
            "answers": {"escalation": "a nurse"},
            "decision": "approved",
            "questionnaire": custom,
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["questionnaire"] == "triage-ethics"

    nowhere = f"/models/{REVIEWED}/-/versions/9.9.9/ethics-reviews"
    assert_error(approver.post(nowhere, json=body), 404, "not_found")
    entries = server.wb.audit.entries("model", server.wb.models.get(REVIEWED).id)
    assert [e.actor for e in entries if e.action == "ethics.review"] == [
        "approver-user",
        "admin-user",
        "approver-user",
    ]


def test_an_explanation_is_read_or_said_to_be_unavailable(
    reviewed: str, viewer: httpx.Client, server: Server
) -> None:
    path = f"{reviewed}/explanation"
    missing = viewer.get(path)
    assert missing.status_code == 200, missing.text
    assert missing.json() == {
        "model": REVIEWED,
        "version": "0.1.0",
        "available": False,
        "reason": NOT_AVAILABLE,
    }
    pytest.importorskip("shap")
    rows = np.random.default_rng(0).standard_normal((20, 2))
    server.wb.explanations.compute(
        f"{REVIEWED}@0.1.0", lambda batch: np.asarray(batch)[:, 1] * 2.0, rows, max_samples=8
    )
    found = viewer.get(path).json()
    assert found["available"] is True
    assert [a["feature"] for a in found["attributions"]] == ["x0", "x1"]
    assert found["attributions"][1]["importance"] > found["attributions"][0]["importance"]
    assert found["sample_size"] == 8
    assert_error(viewer.get("/models/org/reviewed/-/versions/9.9.9/explanation"), 404, "not_found")
