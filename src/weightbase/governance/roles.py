"""Who may do what: the four roles, the four actions and per-model ownership, as data.

principal = Principal("ada", "editor", token_id="3f9c0a1b2d4e", teams=frozenset({"nlp"}))
can(principal, "write", model_owner="grace", model_team="nlp")     # True: ada is in nlp
can(principal, "write", model_owner="grace", model_team="vision")  # False: read only
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

from weightbase.errors import PermissionDenied, ValidationError

__all__ = [
    "ACTIONS",
    "OWNED_ACTIONS",
    "ROLES",
    "ROLE_ACTIONS",
    "Action",
    "Principal",
    "Role",
    "can",
    "check_role",
    "require",
]

Role = Literal["viewer", "editor", "approver", "admin"]
Action = Literal["read", "write", "approve", "admin"]

#: The roles, from the least to the most a user may do (each may do what those before may).
ROLES: tuple[Role, ...] = get_args(Role)
#: ``read`` anything; ``write``: push, log, tag, alias, update; ``approve``: decide approval
#: requests; ``admin``: users, roles, tokens of others, policies, delete.
ACTIONS: tuple[Action, ...] = get_args(Action)

#: What each role may do anywhere, before a model's ownership narrows it.
ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = MappingProxyType(
    {
        "viewer": frozenset({"read"}),
        "editor": frozenset({"read", "write"}),
        "approver": frozenset({"read", "write", "approve"}),
        "admin": frozenset(ACTIONS),
    }
)

#: The actions a model's owner and team keep to themselves (admins excepted): others
#: with the role for them may still read the model, but not change it.
OWNED_ACTIONS: frozenset[Action] = frozenset({"write"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user, their role and teams, and the token they signed in with."""

    user: str
    role: Role
    token_id: str | None = None
    teams: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        check_role(self.role)
        object.__setattr__(self, "teams", frozenset(self.teams))

    def to_dict(self) -> dict[str, Any]:
        """The principal as plain JSON-ready data."""
        return {
            "user": self.user,
            "role": self.role,
            "token_id": self.token_id,
            "teams": sorted(self.teams),
        }


def check_role(role: str) -> Role:
    """``role`` if it is one of :data:`ROLES`; ``ValidationError`` otherwise."""
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}: one of {', '.join(ROLES)}", role=role)
    return role


def _check_action(action: str) -> Action:
    if action not in ACTIONS:
        raise ValidationError(
            f"unknown action {action!r}: one of {', '.join(ACTIONS)}", action=action
        )
    return action


def can(
    principal: Principal,
    action: str,
    *,
    model_owner: str | None = None,
    model_team: str | None = None,
    model_approvers: Collection[str] = (),
) -> bool:
    """Whether ``principal`` may do ``action``, on a model with this owner, team and approvers.

    An admin may do anything. Anyone else needs the action in their role's
    :data:`ROLE_ACTIONS`; then, on a model with an owner or a team, an owned
    action (``write``) is only for its owner and the team's members, and on a
    model that names approvers, only they may ``approve``.
    """
    checked = _check_action(action)
    if principal.role == "admin":
        return True
    if checked not in ROLE_ACTIONS[principal.role]:
        return False
    if checked in OWNED_ACTIONS and (model_owner is not None or model_team is not None):
        return principal.user == model_owner or (
            model_team is not None and model_team in principal.teams
        )
    if checked == "approve" and model_approvers:
        return principal.user in model_approvers
    return True


def require(
    principal: Principal,
    action: str,
    *,
    model: str | None = None,
    model_owner: str | None = None,
    model_team: str | None = None,
    model_approvers: Collection[str] = (),
) -> None:
    """``PermissionDenied`` unless :func:`can` allows it; ``model`` is named in the message."""
    if can(
        principal,
        action,
        model_owner=model_owner,
        model_team=model_team,
        model_approvers=model_approvers,
    ):
        return
    where = f" on model {model!r}" if model is not None else ""
    raise PermissionDenied(
        f"{principal.user} ({principal.role}) may not {action}{where}",
        user=principal.user,
        role=principal.role,
        action=action,
        model=model,
    )
