"""Users, API tokens and model ownership through ``wb.access``, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from weightbase.catalog.schema import ApiTokenRow, Base, utcnow
from weightbase.errors import (
    AuthenticationError,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from weightbase.governance.access import Access, ModelOwnership, Principal
from weightbase.governance.tokens import hash_secret
from weightbase.workspace import Workspace


@pytest.fixture
def access(workspace: Workspace) -> Access:
    return workspace.access


def _everything_stored(workspace: Workspace) -> str:
    """Every row of every catalog table, as one text."""
    parts = []
    with workspace.catalog.session() as session:
        for table in Base.metadata.sorted_tables:
            parts += [repr(tuple(row)) for row in session.execute(sa.select(table))]
    return "\n".join(parts)


# -- users ----------------------------------------------------------------------------------


def test_add_get_and_list_users(access: Access, workspace: Workspace) -> None:
    ada = access.users.add("ada", role="admin", display_name="Ada L.", teams=["nlp", "ml", "nlp"])
    access.users.add("grace")
    assert (ada.name, ada.role, ada.teams, ada.display_name) == (
        "ada",
        "admin",
        ("ml", "nlp"),
        "Ada L.",
    )
    assert ada.created_by == "test-user"
    assert not ada.disabled
    assert access.users.get("ada") == ada
    assert [user.name for user in access.users.list()] == ["ada", "grace"]
    assert access.users.get("grace").role == "viewer"
    assert ada.to_dict()["teams"] == ["ml", "nlp"]
    entries = workspace.audit.entries("user", action="users.add")
    assert [(e.actor, e.after) for e in entries] == [
        ("test-user", {"name": "ada", "role": "admin", "teams": ["ml", "nlp"]}),
        ("test-user", {"name": "grace", "role": "viewer", "teams": []}),
    ]


def test_bad_users_are_refused(access: Access) -> None:
    access.users.add("ada")
    with pytest.raises(Conflict, match="already exists"):
        access.users.add("ada", role="admin")
    with pytest.raises(ValidationError, match="invalid user name"):
        access.users.add("no spaces")
    with pytest.raises(ValidationError, match="unknown role 'root'"):
        access.users.add("bob", role="root")
    with pytest.raises(ValidationError, match="invalid team name"):
        access.users.add("bob", teams=["a team"])
    with pytest.raises(ValidationError, match="list of names"):
        access.users.add("bob", teams="nlp")
    with pytest.raises(ValidationError, match="display name"):
        access.users.add("bob", display_name=" ")
    with pytest.raises(NotFound, match="no user named 'bob'"):
        access.users.get("bob")
    assert [user.name for user in access.users.list()] == ["ada"]


def test_roles_teams_disable_and_enable_are_audited(access: Access, workspace: Workspace) -> None:
    access.users.add("root", role="admin")
    access.users.add("ada", role="viewer")
    assert access.users.set_role("ada", "editor", reason="joins the team").role == "editor"
    assert access.users.set_role("ada", "editor").role == "editor"  # no change, no entry
    assert access.users.set_teams("ada", ["nlp"]).teams == ("nlp",)
    assert access.users.set_teams("ada", ["nlp"]).teams == ("nlp",)
    disabled = access.users.disable("ada", reason="left")
    assert disabled.disabled
    assert access.users.disable("ada").disabled_at == disabled.disabled_at
    assert [u.name for u in access.users.list(include_disabled=False)] == ["root"]
    assert not access.users.enable("ada").disabled
    assert not access.users.enable("ada").disabled
    actions = [
        (e.action, e.before, e.after, e.reason)
        for e in workspace.audit.entries("user")
        if e.action != "users.add"
    ]
    assert actions == [
        (
            "users.set_role",
            {"name": "ada", "role": "viewer"},
            {"name": "ada", "role": "editor"},
            "joins the team",
        ),
        ("users.set_teams", {"name": "ada", "teams": []}, {"name": "ada", "teams": ["nlp"]}, None),
        (
            "users.disable",
            {"name": "ada", "disabled": False},
            {"name": "ada", "disabled": True},
            "left",
        ),
        (
            "users.enable",
            {"name": "ada", "disabled": True},
            {"name": "ada", "disabled": False},
            None,
        ),
    ]
    with workspace.catalog.session() as session:
        events = session.execute(sa.text("SELECT type FROM events ORDER BY id")).scalars().all()
    assert events == [
        "user_added",
        "user_added",
        "user_role_changed",
        "user_teams_changed",
        "user_disabled",
        "user_enabled",
    ]


def test_the_last_enabled_admin_stays(access: Access) -> None:
    access.users.add("root", role="admin")
    with pytest.raises(Conflict, match="last enabled admin"):
        access.users.set_role("root", "editor")
    with pytest.raises(Conflict, match="last enabled admin"):
        access.users.disable("root")
    access.users.add("ada", role="admin")
    access.users.disable("ada")
    with pytest.raises(Conflict, match="last enabled admin"):
        access.users.disable("root")
    assert access.users.set_role("ada", "viewer").role == "viewer"  # disabled: not counted
    access.users.set_role("ada", "admin")
    access.users.enable("ada")
    assert access.users.set_role("root", "viewer").role == "viewer"
    assert access.users.get("ada").role == "admin"


# -- tokens ---------------------------------------------------------------------------------


def test_a_token_signs_in_as_its_user(access: Access) -> None:
    access.users.add("ada", role="editor", teams=["nlp"])
    new = access.tokens.create("ada", name="laptop", description="for pushes")
    assert new.secret.startswith(f"wb_{new.token.token_id}_")
    assert len(new.secret) > 50
    assert new.secret not in repr(new)
    principal = access.authenticate(new.secret)
    assert principal == Principal(
        "ada", "editor", token_id=new.token.token_id, teams=frozenset({"nlp"})
    )
    token = access.tokens.get(new.token.token_id)
    assert token.last_used_at is not None
    assert (token.user, token.name, token.description) == ("ada", "laptop", "for pushes")
    assert "secret" not in token.to_dict()
    # a second call within the minute does not write again
    access.authenticate(new.secret)
    assert access.tokens.get(new.token.token_id).last_used_at == token.last_used_at


def test_the_secret_is_stored_and_logged_nowhere(
    access: Access, workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    access.users.add("ada", role="editor")
    new = access.tokens.create("ada", name="ci")
    access.authenticate(new.secret)
    access.tokens.revoke(new.token.token_id)
    # after "wb_" and the token id: the random part may itself hold "_"
    random_part = new.secret.split("_", 2)[2][-40:]
    assert len(random_part) == 40
    stored = _everything_stored(workspace)
    assert new.token.token_id in stored
    assert random_part not in stored
    assert new.secret not in stored
    assert random_part not in caplog.text
    with workspace.catalog.session() as session:
        row = session.scalars(sa.select(ApiTokenRow)).one()
    assert row.secret_hash == hash_secret(new.secret)
    for entry in workspace.audit.entries("api_token"):
        assert random_part not in repr(entry.to_dict())
        assert row.secret_hash not in repr(entry.to_dict())
    created = workspace.audit.entries("api_token", new.token.token_id, action="tokens.create")
    assert [e.after for e in created] == [{"user": "ada", "name": "ci", "expires_at": None}]


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "not-a-token",
        "wb_0123456789ab_short",
        "wb_0123456789AB_" + "x" * 43,
        "Bearer wb_0123456789ab_" + "x" * 43,
    ],
)
def test_malformed_tokens_are_refused(access: Access, secret: str) -> None:
    with pytest.raises(AuthenticationError, match="not a weightbase API token"):
        access.authenticate(secret)


def test_unknown_ids_and_wrong_secrets_are_refused(access: Access) -> None:
    access.users.add("ada", role="editor")
    new = access.tokens.create("ada", name="laptop")
    forged = new.secret[:-1] + ("a" if new.secret[-1] != "a" else "b")
    with pytest.raises(AuthenticationError, match=r"^invalid API token$") as refused:
        access.authenticate(forged)
    assert isinstance(refused.value, PermissionDenied)
    unknown = "wb_" + "0" * 12 + new.secret[15:]
    with pytest.raises(AuthenticationError, match=r"^invalid API token$"):
        access.authenticate(unknown)
    assert access.tokens.get(new.token.token_id).last_used_at is None


def test_revocation_takes_effect_on_the_next_call(access: Access, workspace: Workspace) -> None:
    access.users.add("ada", role="editor")
    kept = access.tokens.create("ada", name="kept")
    new = access.tokens.create("ada", name="lost")
    assert access.authenticate(new.secret).user == "ada"
    revoked = access.tokens.revoke(new.token.token_id, reason="laptop stolen")
    assert revoked.revoked
    with pytest.raises(AuthenticationError, match="was revoked"):
        access.authenticate(new.secret)
    assert access.authenticate(kept.secret).user == "ada"
    assert access.tokens.revoke(new.token.token_id).revoked_at == revoked.revoked_at
    entries = workspace.audit.entries("api_token", action="tokens.revoke")
    assert [(e.entity_id, e.reason) for e in entries] == [(new.token.token_id, "laptop stolen")]
    with pytest.raises(NotFound):
        access.tokens.revoke("ffffffffffff")


def test_expired_tokens_are_refused(access: Access, workspace: Workspace) -> None:
    access.users.add("ada", role="editor")
    new = access.tokens.create("ada", name="short", expires_in=timedelta(hours=1))
    assert new.token.expires_at is not None
    assert not new.token.expired()
    assert access.authenticate(new.secret).user == "ada"
    with workspace.catalog.transaction() as session:
        session.execute(sa.update(ApiTokenRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(AuthenticationError, match="has expired"):
        access.authenticate(new.secret)
    assert access.tokens.get(new.token.token_id).expired()
    later = datetime(2999, 1, 1, tzinfo=UTC)
    assert access.tokens.create("ada", name="long", expires_at=later).token.expires_at == later


def test_a_disabled_users_tokens_fail_until_enabled(access: Access) -> None:
    access.users.add("root", role="admin")
    access.users.add("ada", role="editor")
    new = access.tokens.create("ada", name="laptop")
    access.users.disable("ada")
    with pytest.raises(AuthenticationError, match="'ada' is disabled"):
        access.authenticate(new.secret)
    with pytest.raises(Conflict, match="disabled"):
        access.tokens.create("ada", name="another")
    access.users.enable("ada")
    assert access.authenticate(new.secret).user == "ada"


def test_a_role_change_applies_on_the_next_call(access: Access) -> None:
    access.users.add("root", role="admin")
    access.users.add("ada", role="viewer")
    new = access.tokens.create("ada", name="laptop")
    assert access.authenticate(new.secret).role == "viewer"
    access.users.set_role("ada", "approver")
    assert access.authenticate(new.secret).role == "approver"


def test_listing_tokens(access: Access) -> None:
    access.users.add("ada", role="editor")
    access.users.add("grace", role="viewer")
    first = access.tokens.create("ada", name="one").token
    second = access.tokens.create("grace", name="two").token
    third = access.tokens.create("ada", name="three").token
    access.tokens.revoke(third.token_id)
    assert [t.token_id for t in access.tokens.list()] == [first.token_id, second.token_id]
    assert [t.name for t in access.tokens.list("ada")] == ["one"]
    assert [t.name for t in access.tokens.list("ada", include_revoked=True)] == ["one", "three"]
    with pytest.raises(NotFound):
        access.tokens.list("nobody")
    with pytest.raises(NotFound, match="no API token"):
        access.tokens.get("ffffffffffff")
    with pytest.raises(NotFound):
        access.tokens.create("nobody", name="x")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": " "}, "token name"),
        ({"name": "x" * 256}, "token name"),
        ({"name": "t", "expires_in": timedelta(0)}, "must be positive"),
        ({"name": "t", "expires_at": datetime(2999, 1, 1)}, "timezone-aware"),
        ({"name": "t", "expires_at": datetime(2000, 1, 1, tzinfo=UTC)}, "not in the future"),
        (
            {
                "name": "t",
                "expires_in": timedelta(1),
                "expires_at": datetime(2999, 1, 1, tzinfo=UTC),
            },
            "not both",
        ),
    ],
)
def test_bad_token_requests_are_refused(
    access: Access, kwargs: dict[str, object], message: str
) -> None:
    access.users.add("ada", role="editor")
    with pytest.raises(ValidationError, match=message):
        access.tokens.create("ada", **kwargs)  # type: ignore[arg-type]
    assert access.tokens.list(include_revoked=True) == []


# -- model ownership --------------------------------------------------------------------------


def test_ownership_decides_who_may_change_a_model(access: Access, workspace: Workspace) -> None:
    workspace.models.create("bert")
    access.users.add("grace", role="editor")
    assert access.ownership("bert") == ModelOwnership("bert")
    ada = Principal("ada", "editor", teams=frozenset({"nlp"}))
    bob = Principal("bob", "editor", teams=frozenset({"vision"}))
    assert access.can(ada, "write", "bert")
    assert access.can(bob, "write", "bert")
    owned = access.set_owner("bert", "grace", "nlp", reason="nlp team's model")
    assert owned.to_dict() == {
        "model": "bert",
        "owner": "grace",
        "team": "nlp",
        "approvers": [],
        "required_approvals": 1,
        "require_approval_for_production": False,
    }
    assert access.can(ada, "write", "bert")
    assert not access.can(bob, "write", "bert")
    assert access.can(bob, "read", "bert")
    assert access.can(bob, "write")
    access.require(ada, "write", "bert")
    access.require(bob, "read")
    with pytest.raises(PermissionDenied, match="bob \\(editor\\) may not write on model 'bert'"):
        access.require(bob, "write", "bert")
    access.set_owner("bert", None, "vision")
    assert access.ownership("bert").owner is None
    assert access.can(bob, "write", "bert")
    assert not access.can(ada, "write", "bert")
    access.set_owner("bert", None, "vision")  # no change, no entry
    entries = workspace.audit.entries("model", action="model.set_owner")
    assert [(e.before, e.after, e.reason) for e in entries] == [
        ({"owner": None, "team": None}, {"owner": "grace", "team": "nlp"}, "nlp team's model"),
        ({"owner": "grace", "team": "nlp"}, {"owner": None, "team": "vision"}, None),
    ]


def test_ownership_names_real_users_and_models(access: Access, workspace: Workspace) -> None:
    workspace.models.create("bert")
    with pytest.raises(NotFound, match="no user named 'nobody'"):
        access.set_owner("bert", "nobody")
    with pytest.raises(NotFound):
        access.set_owner("missing", None, "nlp")
    with pytest.raises(NotFound):
        access.ownership("missing")
    with pytest.raises(ValidationError, match="invalid team name"):
        access.set_owner("bert", None, "a team")
    assert access.ownership("bert") == ModelOwnership("bert")
