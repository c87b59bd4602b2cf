"""Every route is behind the token check: 401 without a valid token, 403 beyond the role."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.api.support import DATASET, MODEL, OWNED, Server, assert_error

_VALUES = {
    "model": MODEL,
    "name": DATASET,
    "version": "0.1.0",
    "alias": "production",
    "run_id": "1",
    "experiment": "default",
    "webhook_id": "1",
}
# Reads only an admin may do: a viewer is refused them too.
_ADMIN_READS = re.compile(r"^/api/v1/webhooks\b")


def _operations(root: httpx.Client) -> list[tuple[str, str]]:
    document = root.get("/api/v1/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        concrete = re.sub(r"\{(\w+)\}", lambda match: _VALUES.get(match[1], "x"), path)
        found += [(method.upper(), concrete) for method in operations]
    return found


def test_every_api_route_needs_a_token(root: httpx.Client) -> None:
    operations = _operations(root)
    assert len(operations) >= 30
    for method, path in operations:
        response = root.request(method, path, json={})
        error = assert_error(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer", (method, path)
        assert "token" in error["message"]


def test_a_viewer_reads_everywhere_and_changes_nothing(root: httpx.Client, server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.tokens['viewer']}"}
    for method, path in _operations(root):
        response = root.request(method, path, json={}, headers=headers)
        if method == "GET" and not _ADMIN_READS.match(path):
            assert response.status_code != 401, (method, path)
            assert response.status_code != 403, (method, path)
        else:
            assert_error(response, 403, "permission_denied")


@pytest.mark.parametrize(
    "header",
    ["Bearer wb_unknown", "Basic dXNlcjpwYXNz", "Bearer", "Bearer  \t x"],
)
def test_bad_credentials_are_401(root: httpx.Client, header: str) -> None:
    response = root.get("/api/v1/models", headers={"Authorization": header})
    assert_error(response, 401, "not_authenticated")


def test_anonymous_is_refused_by_default(anonymous: httpx.Client) -> None:
    assert_error(anonymous.get("/models"), 401, "not_authenticated")


@pytest.mark.usefixtures("anonymous_read")
def test_anonymous_reads_when_the_server_allows_them(anonymous: httpx.Client) -> None:
    assert anonymous.get("/models").status_code == 200
    assert anonymous.get(f"/models/{MODEL}/-/versions/0.1.0").status_code == 200
    assert_error(
        anonymous.post(f"/models/{MODEL}/-/tags", json={"add": ["x"]}), 401, "not_authenticated"
    )


def test_a_server_without_a_token_service_refuses_tokens(
    editor: httpx.Client, server: Server
) -> None:
    before = server.app.state.authenticator
    server.app.state.authenticator = None
    try:
        error = assert_error(editor.get("/models"), 401, "not_authenticated")
    finally:
        server.app.state.authenticator = before
    assert "no token service" in error["message"]


def test_a_model_with_an_owner_is_changed_by_its_owner_only(
    editor: httpx.Client, server: Server
) -> None:
    assert editor.get(f"/models/{OWNED}").status_code == 200
    error = assert_error(
        editor.post(f"/models/{OWNED}/-/tags", json={"add": ["mine"]}), 403, "permission_denied"
    )
    assert OWNED in error["message"]
    admin = {"Authorization": f"Bearer {server.tokens['admin']}"}
    tagged = editor.post(f"/models/{OWNED}/-/tags", json={"add": ["ok"]}, headers=admin)
    assert tagged.json()["tags"] == ["ok"]


def test_a_revoked_token_is_refused_on_the_next_request(root: httpx.Client, server: Server) -> None:
    new = server.wb.access.tokens.create("viewer-user", name="short-lived")
    headers = {"Authorization": f"Bearer {new.secret}"}
    assert root.get("/api/v1/models", headers=headers).status_code == 200
    server.wb.access.tokens.revoke(new.token.token_id)
    error = assert_error(root.get("/api/v1/models", headers=headers), 401, "not_authenticated")
    assert "revoked" in error["message"]
