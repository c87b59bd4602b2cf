"""``/api/v1/users``, ``/api/v1/tokens`` and a model's ``/-/owner``, on the live server."""

from __future__ import annotations

import httpx
import pytest
from tests.api.support import Server, assert_error


def _token_id(secret: str) -> str:
    return secret.split("_")[1]


def _as(server: Server, secret: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=30)


def test_an_admin_adds_shows_and_lists_users(admin: httpx.Client) -> None:
    added = admin.post("/users", json={"name": "lin", "role": "editor", "teams": ["nlp", "cv"]})
    assert added.status_code == 201, added.text
    user = added.json()
    assert user["name"] == "lin"
    assert user["role"] == "editor"
    assert user["teams"] == ["cv", "nlp"]
    assert user["disabled"] is False
    assert user["disabled_at"] is None
    assert user["created_by"] == "admin-user"
    assert admin.get("/users/lin").json() == user
    assert_error(admin.post("/users", json={"name": "lin"}), 409, "conflict")
    assert_error(admin.post("/users", json={"name": "x", "role": "owner"}), 422, "validation_error")
    assert_error(admin.post("/users", json={"name": "no spaces"}), 422, "validation_error")
    assert_error(admin.get("/users/nobody"), 404, "not_found")
    names = [item["name"] for item in admin.get("/users", params={"limit": 500}).json()["items"]]
    assert names == sorted(names)
    assert {"lin", "admin-user", "viewer-user"} <= set(names)


def test_users_are_listed_a_page_at_a_time(admin: httpx.Client) -> None:
    everyone = [item["name"] for item in admin.get("/users").json()["items"]]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "after": cursor}
        found = admin.get("/users", params=params).json()
        seen += [item["name"] for item in found["items"]]
        cursor = found["next"]
        if cursor is None:
            break
    assert seen == everyone


def test_an_admin_changes_role_and_teams(admin: httpx.Client) -> None:
    admin.post("/users", json={"name": "mo"})
    promoted = admin.put("/users/mo/role", json={"role": "approver", "reason": "reviews"})
    assert promoted.json()["role"] == "approver"
    teams = admin.put("/users/mo/teams", json={"teams": ["vision"]})
    assert teams.json()["teams"] == ["vision"]
    assert admin.put("/users/mo/teams", json={"teams": []}).json()["teams"] == []
    assert_error(admin.put("/users/mo/role", json={"role": "root"}), 422, "validation_error")
    assert_error(admin.put("/users/nobody/role", json={"role": "editor"}), 404, "not_found")
    assert_error(admin.put("/users/mo/teams", json={"teams": "vision"}), 422, "validation_error")


def test_the_last_admin_keeps_the_role(admin: httpx.Client, server: Server) -> None:
    admins = [u for u in server.wb.access.users.list(include_disabled=False) if u.role == "admin"]
    if len(admins) != 1:
        pytest.skip("another test made a second admin")
    error = assert_error(
        admin.put("/users/admin-user/role", json={"role": "editor"}), 409, "conflict"
    )
    assert "last enabled admin" in error["message"]
    assert_error(admin.post("/users/admin-user/disable"), 409, "conflict")


def test_a_disabled_users_tokens_stop_working_until_enabled(
    admin: httpx.Client, server: Server
) -> None:
    admin.post("/users", json={"name": "noor", "role": "viewer"})
    secret = admin.post("/tokens", json={"user": "noor", "name": "laptop"}).json()["secret"]
    with _as(server, secret) as noor:
        assert noor.get("/models").status_code == 200
        disabled = admin.post("/users/noor/disable", json={"reason": "left"})
        assert disabled.json()["disabled"] is True
        assert disabled.json()["disabled_at"] is not None
        error = assert_error(noor.get("/models"), 401, "not_authenticated")
        assert "disabled" in error["message"]
        assert_error(admin.post("/tokens", json={"user": "noor", "name": "x"}), 409, "conflict")
        assert admin.post("/users/noor/enable").json()["disabled"] is False
        assert noor.get("/models").status_code == 200
    listed = admin.get("/users", params={"include_disabled": False, "limit": 500}).json()
    assert "noor" in {item["name"] for item in listed["items"]}


def test_a_token_secret_is_shown_once_and_revocation_is_immediate(
    admin: httpx.Client, server: Server
) -> None:
    admin.post("/users", json={"name": "ravi", "role": "editor"})
    created = admin.post(
        "/tokens", json={"user": "ravi", "name": "ci", "description": "the CI runner"}
    )
    assert created.status_code == 201, created.text
    new = created.json()
    secret = new["secret"]
    assert secret.startswith(f"wb_{new['token_id']}_")
    assert new["user"] == "ravi"
    assert new["created_by"] == "admin-user"
    assert new["revoked"] is False
    assert new["expires_at"] is None
    listed = admin.get("/tokens", params={"user": "ravi"})
    assert [item["token_id"] for item in listed.json()["items"]] == [new["token_id"]]
    assert "secret" not in listed.json()["items"][0]
    assert secret not in listed.text
    assert secret not in admin.get("/audit", params={"limit": 500}).text
    everyone = admin.get("/tokens").json()["items"]
    assert {"ravi", "admin-user", "viewer-user"} <= {item["user"] for item in everyone}
    with _as(server, secret) as ravi:
        assert ravi.get("/models").status_code == 200
        assert (
            admin.delete(f"/tokens/{new['token_id']}", params={"reason": "leaked"}).status_code
            == 204
        )
        error = assert_error(ravi.get("/models"), 401, "not_authenticated")
        assert "revoked" in error["message"]
    assert admin.get("/tokens", params={"user": "ravi"}).json()["items"] == []
    revoked = admin.get("/tokens", params={"user": "ravi", "include_revoked": True}).json()
    assert revoked["items"][0]["revoked"] is True
    assert revoked["items"][0]["revoked_at"] is not None
    assert_error(admin.delete("/tokens/000000000000"), 404, "not_found")
    assert_error(admin.get("/tokens", params={"user": "nobody"}), 404, "not_found")


def test_a_token_can_expire(admin: httpx.Client) -> None:
    new = admin.post(
        "/tokens", json={"user": "viewer-user", "name": "short", "expires_in_days": 7}
    ).json()
    assert new["expires_at"] is not None
    assert new["expired"] is False
    assert_error(
        admin.post("/tokens", json={"user": "viewer-user", "name": "x", "expires_in_days": 0}),
        422,
        "validation_error",
    )
    assert_error(
        admin.post(
            "/tokens",
            json={"user": "viewer-user", "name": "x", "expires_at": "2001-01-01T00:00:00Z"},
        ),
        422,
        "validation_error",
    )
    assert_error(admin.post("/tokens", json={"user": "nobody", "name": "x"}), 404, "not_found")


def test_an_admin_sets_a_models_owner_and_team(
    admin: httpx.Client, editor: httpx.Client, server: Server
) -> None:
    server.wb.models.create("team/owned-by-api")
    path = "/models/team/owned-by-api/-/owner"
    assert editor.get(path).json()["owner"] is None
    owned = admin.put(path, json={"owner": "approver-user", "team": "vision"})
    assert owned.status_code == 200, owned.text
    assert owned.json() == {
        "model": "team/owned-by-api",
        "owner": "approver-user",
        "team": "vision",
        "approvers": [],
        "required_approvals": 1,
        "require_approval_for_production": False,
    }
    assert editor.get(path).json()["owner"] == "approver-user"
    assert_error(
        editor.post("/models/team/owned-by-api/-/tags", json={"add": ["x"]}),
        403,
        "permission_denied",
    )
    assert_error(editor.put(path, json={"owner": "editor-user"}), 403, "permission_denied")
    assert_error(admin.put(path, json={"owner": "nobody"}), 404, "not_found")
    assert_error(admin.put("/models/no/such-model/-/owner", json={}), 404, "not_found")
    cleared = admin.put(path, json={"owner": None, "team": None, "reason": "open to all"})
    assert cleared.json()["owner"] is None
    tagged = editor.post("/models/team/owned-by-api/-/tags", json={"add": ["x"]})
    assert tagged.status_code == 200, tagged.text


def test_every_change_is_audited_with_its_origin(admin: httpx.Client, server: Server) -> None:
    admin.post("/users", json={"name": "ines"})
    admin.put("/users/ines/role", json={"role": "editor"})
    admin.put("/users/ines/teams", json={"teams": ["nlp"]})
    admin.post("/users/ines/disable")
    admin.post("/users/ines/enable")
    token = admin.post("/tokens", json={"user": "ines", "name": "t"}).json()["token_id"]
    admin.delete(f"/tokens/{token}")
    server.wb.models.create("team/audited-owner")
    admin.put("/models/team/audited-owner/-/owner", json={"owner": "ines"})
    actions = [
        "users.add",
        "users.set_role",
        "users.set_teams",
        "users.disable",
        "users.enable",
        "tokens.create",
        "tokens.revoke",
        "model.set_owner",
    ]
    for action in actions:
        entries = admin.get("/audit", params={"action": action, "limit": 500}).json()["items"]
        assert entries, action
        entry = entries[-1]
        assert entry["actor"] == "admin-user", action
        assert entry["token_id"] == _token_id(server.tokens["admin"]), action
        assert entry["remote_address"] == "127.0.0.1", action


@pytest.mark.parametrize("role", ["viewer", "editor", "approver"])
def test_only_an_admin_manages_users_and_tokens(server: Server, role: str) -> None:
    with _as(server, server.tokens[role]) as caller:
        assert_error(caller.get("/users"), 403, "permission_denied")
        assert_error(caller.get("/tokens"), 403, "permission_denied")
        assert_error(caller.post("/users", json={"name": "sneaky"}), 403, "permission_denied")
        assert_error(
            caller.post("/tokens", json={"user": "admin-user", "name": "mine"}),
            403,
            "permission_denied",
        )
