"""The authorization rules: every role, action and ownership situation, spelled out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from weightbase.errors import PermissionDenied, ValidationError
from weightbase.governance.roles import ACTIONS, ROLES, Principal, can, check_role, require

EVERYTHING = {"read", "write", "approve", "admin"}
OPEN = {
    "viewer": {"read"},
    "editor": {"read", "write"},
    "approver": {"read", "write", "approve"},
    "admin": EVERYTHING,
}

# Where ada (in team "nlp") acts, and what each role may do there.
SITUATIONS: dict[str, tuple[dict[str, Any], dict[str, set[str]]]] = {
    "no model": ({}, OPEN),
    "a model nobody owns": ({"model_owner": None, "model_team": None}, OPEN),
    "her own model": ({"model_owner": "ada"}, OPEN),
    "her own model of another team": ({"model_owner": "ada", "model_team": "vision"}, OPEN),
    "her team's model": ({"model_owner": "grace", "model_team": "nlp"}, OPEN),
    "a model with only her team set": ({"model_team": "nlp"}, OPEN),
    "someone else's model": (
        {"model_owner": "grace", "model_team": "vision"},
        {
            "viewer": {"read"},
            "editor": {"read"},
            "approver": {"read", "approve"},
            "admin": EVERYTHING,
        },
    ),
    "a model with only another owner set": (
        {"model_owner": "grace"},
        {
            "viewer": {"read"},
            "editor": {"read"},
            "approver": {"read", "approve"},
            "admin": EVERYTHING,
        },
    ),
    "a model whose approvers include her": ({"model_approvers": ["ada", "grace"]}, OPEN),
    "a model whose approvers do not include her": (
        {"model_approvers": ["grace"]},
        {
            "viewer": {"read"},
            "editor": {"read", "write"},
            "approver": {"read", "write"},
            "admin": EVERYTHING,
        },
    ),
}

CASES = [
    pytest.param(situation, role, action, id=f"{role}-{action}-{situation.replace(' ', '_')}")
    for situation in SITUATIONS
    for role in ("viewer", "editor", "approver", "admin")
    for action in sorted(EVERYTHING)
]


def test_the_roles_and_actions_are_the_documented_ones() -> None:
    assert ROLES == ("viewer", "editor", "approver", "admin")
    assert set(ACTIONS) == EVERYTHING


@pytest.mark.parametrize(("situation", "role", "action"), CASES)
def test_role_matrix(situation: str, role: str, action: str) -> None:
    where, allowed = SITUATIONS[situation]
    ada = Principal("ada", check_role(role), token_id="0123456789ab", teams=frozenset({"nlp"}))
    expected = action in allowed[role]
    assert can(ada, action, **where) is expected
    if expected:
        require(ada, action, model="bert", **where)
    else:
        with pytest.raises(PermissionDenied, match=f"ada \\({role}\\) may not {action}"):
            require(ada, action, model="bert", **where)


def test_a_viewer_mutates_nothing_anywhere() -> None:
    viewer = Principal("ada", "viewer", teams=frozenset({"nlp"}))
    for where, _ in SITUATIONS.values():
        assert [a for a in ACTIONS if can(viewer, a, **where)] == ["read"]


def test_denial_names_the_user_role_action_and_model() -> None:
    viewer = Principal("ada", "viewer")
    with pytest.raises(PermissionDenied) as denied:
        require(viewer, "write", model="bert")
    assert str(denied.value) == "ada (viewer) may not write on model 'bert'"
    assert (denied.value.user, denied.value.action, denied.value.model) == (  # type: ignore[attr-defined]
        "ada",
        "write",
        "bert",
    )
    with pytest.raises(PermissionDenied, match=r"^ada \(viewer\) may not admin$"):
        require(viewer, "admin")


def test_unknown_actions_and_roles_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown action 'delete'"):
        can(Principal("ada", "admin"), "delete")
    with pytest.raises(ValidationError, match="unknown role 'root'"):
        Principal("ada", "root")  # type: ignore[arg-type]


def test_a_principal_is_a_frozen_record() -> None:
    ada = Principal("ada", "editor", token_id="0123456789ab", teams=["nlp"])  # type: ignore[arg-type]
    assert ada.teams == frozenset({"nlp"})
    assert ada.to_dict() == {
        "user": "ada",
        "role": "editor",
        "token_id": "0123456789ab",
        "teams": ["nlp"],
    }
    with pytest.raises(AttributeError):
        ada.role = "admin"  # type: ignore[misc]
