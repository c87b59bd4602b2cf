"""``/api/v1/audit`` and ``/api/v1/events``: paging by id, filters, and who acted."""

from __future__ import annotations

import httpx
from tests.api.support import MODEL, Server, assert_error


def test_audit_entries_filter_and_page(editor: httpx.Client) -> None:
    entries = editor.get("/audit", params={"limit": 2}).json()
    assert len(entries["items"]) == 2
    assert entries["next"] == str(entries["items"][-1]["id"])
    after = editor.get("/audit", params={"since_id": entries["next"], "limit": 2}).json()
    assert after["items"][0]["id"] > entries["items"][-1]["id"]
    sets = editor.get("/audit", params={"action": "alias.set"}).json()["items"]
    assert sets
    assert all(entry["action"] == "alias.set" for entry in sets)
    assert_error(editor.get("/audit", params={"entity_id": "1"}), 422, "validation_error")
    assert editor.get("/audit", params={"since_id": 10**9}).json() == {"items": [], "next": None}


def test_events_filter_and_follow(editor: httpx.Client) -> None:
    created = editor.get("/events", params={"type": "model_version_created"}).json()["items"]
    assert len(created) >= 2
    assert all(event["type"] == "model_version_created" for event in created)
    first = editor.get("/events", params={"limit": 1}).json()
    followed = editor.get("/events", params={"since_id": first["next"], "limit": 1}).json()
    assert followed["items"][0]["id"] > first["items"][0]["id"]
    assert_error(editor.get("/events", params={"type": "Not A Type"}), 422, "validation_error")


def test_a_mutation_records_the_caller_as_actor(editor: httpx.Client, server: Server) -> None:
    editor.put(f"/models/{MODEL}/-/aliases/audited", json={"version": "0.1.0"})
    entry = editor.get("/audit", params={"action": "alias.set", "limit": 500}).json()["items"][-1]
    assert entry["after"]["alias"] == "audited"
    assert entry["actor"] == "editor-user"
    # Outside a request, the same workspace records the process's own actor.
    direct = server.wb.audit.entries(action="alias.set", newest_first=True, limit=1)[0]
    assert direct.actor == "editor-user"
    assert server.app.state.workspace.audit.actor != "editor-user"
