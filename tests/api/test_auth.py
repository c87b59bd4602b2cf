"""Every route is behind the token check: 401 without a valid token, 403 beyond the role.

The matrix of routes and roles is generated from the OpenAPI document, so a new route
is checked as soon as it is served: its action follows its method (``read`` for
GET, ``write`` otherwise) unless :data:`_ACTIONS` names it ``approve`` or
``admin``. A role allowed an action is let through (any status but 401, 403 or
a 5xx); one that is not gets 403. Allowed requests are made so that they
change nothing that matters: a body no route accepts (``[]``), ids that name
nothing, and a model of the test's own, made again whenever a request changed it.
"""

from __future__ import annotations

import itertools
import re

import httpx
import pytest
from tests.api.support import DATASET, MODEL, OWNED, ROLES, Server, assert_error

from weightbase.governance.roles import ROLE_ACTIONS, Action, Role

#: Routes whose action is not their method's: (method, path pattern, action). First match wins.
_ACTIONS: tuple[tuple[str, re.Pattern[str], Action], ...] = (
    ("*", re.compile(r"^/api/v1/(webhooks|users|tokens)(/|$)"), "admin"),
    ("PUT", re.compile(r"/-/(approval-policy|owner)$"), "admin"),
    ("POST", re.compile(r"^/api/v1/approvals/\{\w+\}/decisions$"), "approve"),
    ("POST", re.compile(r"/-/versions/\{\w+\}/ethics-reviews$"), "approve"),
    # deleting a model or a version is an admin's; removing an alias is an editor's
    ("DELETE", re.compile(r"^/api/v1/models/\{model\}(/-/versions/\{version\})?$"), "admin"),
    ("DELETE", re.compile(r"^/api/v1/datasets/\{dataset\}$"), "admin"),
)
#: Path values for the requests that should be let through: things that are not there.
_ABSENT = {
    "name": DATASET,
    "version": "9.9.9",
    "alias": "no-such-alias",
    "user": "no-such-user",
    "token_id": "000000000000",
    "webhook_id": "999999",
    "run_id": "999999",
    "request_id": "999999",
    "experiment": "no-such-experiment",
}
_MODELS = itertools.count()


def _documented(root: httpx.Client) -> list[tuple[str, str]]:
    """Every (method, path template) under ``/api/v1`` in the OpenAPI document."""
    document = root.get("/api/v1/openapi.json").json()
    return [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
    ]


def _action(method: str, path: str) -> Action:
    for pattern_method, pattern, action in _ACTIONS:
        if pattern_method in ("*", method) and pattern.search(path):
            return action
    return "read" if method == "GET" else "write"


def _concrete(path: str, model: str) -> str:
    values = {**_ABSENT, "model": model}
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match[1], "x"), path)


def _fresh_model(server: Server) -> str:
    name = f"matrix/model-{next(_MODELS)}"
    server.wb.models.create(name)
    return name


def test_every_api_route_needs_a_token(root: httpx.Client) -> None:
    operations = _documented(root)
    assert len(operations) >= 40
    for method, path in operations:
        response = root.request(method, _concrete(path, MODEL), json={})
        error = assert_error(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer", (method, path)
        assert "token" in error["message"]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_the_routes_its_actions_allow(
    root: httpx.Client, server: Server, role: Role
) -> None:
    headers = {"Authorization": f"Bearer {server.tokens[role]}"}
    allowed = ROLE_ACTIONS[role]
    routes = sorted(_documented(root), key=lambda route: route[0] != "GET")
    model = _fresh_model(server)
    refused, admitted = [], []
    for method, path in routes:
        action = _action(method, path)
        response = root.request(method, _concrete(path, model), json=[], headers=headers)
        where = f"{role}: {method} {path} ({action})"
        if action in allowed:
            assert response.status_code not in (401, 403), (where, response.text)
            assert response.status_code < 500, (where, response.text)
            admitted.append(where)
            if method != "GET" and response.is_success:
                # The request changed the model (a DELETE with no body): use another.
                model = _fresh_model(server)
        else:
            assert_error(response, 403, "permission_denied")
            refused.append(where)
    # Every role is refused something but the admin, and reaches something.
    assert admitted
    assert bool(refused) == (role != "admin")
    # out of the model listings the other tests page through
    for found in server.wb.models.list(name="matrix/", limit=500):
        server.wb.models.delete(found.name, force=True)


def test_the_matrix_knows_every_action() -> None:
    assert _action("GET", "/api/v1/models") == "read"
    assert _action("POST", "/api/v1/models/{model}/-/tags") == "write"
    assert _action("GET", "/api/v1/users") == "admin"
    assert _action("DELETE", "/api/v1/tokens/{token_id}") == "admin"
    assert _action("GET", "/api/v1/models/{model}/-/owner") == "read"
    assert _action("PUT", "/api/v1/models/{model}/-/owner") == "admin"
    assert _action("POST", "/api/v1/approvals/{request_id}/decisions") == "approve"
    assert _action("POST", "/api/v1/models/{model}/-/versions/{version}/ethics-reviews") == (
        "approve"
    )
    assert _action("GET", "/api/v1/webhooks/{webhook_id}/deliveries") == "admin"
    # deploying and undeploying change a model: its owner's and team's to do
    assert _action("POST", "/api/v1/deploy/{model}") == "write"
    assert _action("DELETE", "/api/v1/deploy/{model}") == "write"
    assert _action("GET", "/api/v1/deploy/{model}/status") == "read"


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
