"""``/api/v1/webhooks``: subscriptions and deliveries, for admins only; the secret shown once."""

from __future__ import annotations

import httpx
import pytest
from tests.api.support import Server, assert_error


def test_an_admin_subscribes_lists_reads_and_removes(admin: httpx.Client, server: Server) -> None:
    made = admin.post(
        "/webhooks",
        json={
            "url": "http://127.0.0.1:9/hook",
            "event_types": ["run_started"],
            "description": "ci",
        },
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    assert len(hook["secret"]) >= 16
    assert (hook["url"], hook["event_types"], hook["description"]) == (
        "http://127.0.0.1:9/hook",
        ["run_started"],
        "ci",
    )
    try:
        listed = admin.get("/webhooks").json()
        assert [item["id"] for item in listed["items"]] == [hook["id"]]
        assert listed["next"] is None
        assert "secret" not in admin.get(f"/webhooks/{hook['id']}").text
        assert admin.get(f"/webhooks/{hook['id']}/deliveries").json()["items"] == []
        assert_error(
            admin.get(f"/webhooks/{hook['id']}/deliveries", params={"status": "lost"}),
            422,
            "validation_error",
        )
    finally:
        assert admin.delete(f"/webhooks/{hook['id']}", params={"reason": "done"}).status_code == 204
    assert_error(admin.get(f"/webhooks/{hook['id']}"), 404, "not_found")
    assert_error(admin.delete(f"/webhooks/{hook['id']}"), 404, "not_found")
    removed = server.wb.audit.entries("webhook", hook["id"])
    assert [(entry.action, entry.actor) for entry in removed][-1] == (
        "webhook.remove",
        "admin-user",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/hook", "event_types": ["*"]},
        {"url": "http://127.0.0.1:9/hook", "event_types": []},
        {"url": "http://127.0.0.1:9/hook", "event_types": ["Not An Event"]},
    ],
)
def test_a_bad_subscription_is_422(admin: httpx.Client, body: dict[str, object]) -> None:
    assert_error(admin.post("/webhooks", json=body), 422, "validation_error")
    assert admin.get("/webhooks").json()["items"] == []


@pytest.mark.parametrize("role", ["viewer", "editor", "approver"])
def test_only_admins_see_or_change_webhooks(role: str, server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.tokens[role]}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=30) as client:
        assert_error(client.get("/webhooks"), 403, "permission_denied")
        assert_error(client.get("/webhooks/1/deliveries"), 403, "permission_denied")
        body = {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
        assert_error(client.post("/webhooks", json=body), 403, "permission_denied")
        assert_error(client.delete("/webhooks/1"), 403, "permission_denied")


def test_webhooks_need_a_token(anonymous: httpx.Client) -> None:
    assert_error(anonymous.get("/webhooks"), 401, "not_authenticated")
