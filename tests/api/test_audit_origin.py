"""Every change made through the API records who made it, with which token, from where."""

from __future__ import annotations

import httpx
from tests.api.support import MODEL, Server


def _token_id(secret: str) -> str:
    return secret.split("_")[1]


def test_a_mutation_records_user_token_and_address(editor: httpx.Client, server: Server) -> None:
    tagged = editor.post(f"/models/{MODEL}/-/tags", json={"add": ["origin-checked"]})
    assert tagged.status_code == 200, tagged.text
    entries = editor.get("/audit", params={"action": "tag.add", "limit": 500}).json()["items"]
    entry = next(e for e in reversed(entries) if "origin-checked" in str(e["after"]))
    assert entry["actor"] == "editor-user"
    assert entry["token_id"] == _token_id(server.tokens["editor"])
    assert entry["remote_address"] == "127.0.0.1"


def test_the_audit_log_finds_what_a_token_changed(editor: httpx.Client, server: Server) -> None:
    editor.put(f"/models/{MODEL}/-/aliases/by-token", json={"version": "0.1.0"})
    token_id = _token_id(server.tokens["editor"])
    found = server.wb.audit.entries(token_id=token_id, limit=500)
    assert found
    assert {entry.actor for entry in found} == {"editor-user"}


def test_a_change_in_process_has_no_token_nor_address(server: Server) -> None:
    server.wb.models.tag(MODEL, "in-process")
    entry = server.wb.audit.entries(newest_first=True, limit=1)[0]
    assert entry.token_id is None
    assert entry.remote_address is None
    assert entry.actor != "editor-user"
