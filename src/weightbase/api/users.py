"""``/api/v1/users``, ``/api/v1/tokens`` and a model's ``/-/owner``: access control, for admins.

Thin over ``wb.access``. A token's secret is in the answer to its ``POST`` and
nowhere else; a revoked token is refused from the next request on. Every
change is audited by the service, with the admin as the actor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, MAX_LIMIT, workspace
from weightbase.governance.access import ApiToken, ModelOwnership, User
from weightbase.governance.roles import Role
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(prefix=API_PREFIX, tags=["users"])

Wb = Annotated[Workspace, Depends(workspace)]
Admin = [Depends(access("admin"))]
_USER = "/users/{user}"
_OWNER = "/models/{model:entity_name}/-/owner"


class UserOut(BaseModel):
    """A user: their role, teams, and whether they are disabled."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    display_name: str | None
    role: Role
    teams: list[str]
    disabled: bool
    disabled_at: datetime | None
    created_at: datetime
    created_by: str | None


class UserPage(BaseModel):
    """One page of users by name; pass ``next`` back as ``after`` (null: the last page)."""

    items: list[UserOut]
    next: str | None


class TokenOut(BaseModel):
    """An API token as listed: its public id, owner and dates, never its secret."""

    token_id: str
    user: str
    name: str
    description: str | None
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked: bool
    expired: bool


class NewTokenOut(TokenOut):
    """A token just created, with its secret: shown in this answer once, never again."""

    secret: str


class TokenPage(BaseModel):
    """Tokens, oldest first (one page)."""

    items: list[TokenOut]
    next: str | None = None


class OwnershipOut(BaseModel):
    """A model's owner and team (who may change it), its approvers and approval policy."""

    model_config = ConfigDict(from_attributes=True)

    model: str
    owner: str | None
    team: str | None
    approvers: list[str]
    required_approvals: int
    require_approval_for_production: bool


class NewUserBody(BaseModel):
    """A user to add."""

    name: str
    role: Role = "viewer"
    teams: list[str] = Field(default_factory=list)
    display_name: str | None = None


class RoleBody(BaseModel):
    """A user's new role."""

    role: Role
    reason: str | None = None


class TeamsBody(BaseModel):
    """The teams a user is a member of, exactly (an empty list: none)."""

    teams: list[str]
    reason: str | None = None


class ReasonBody(BaseModel):
    """Why, for the audit log."""

    reason: str | None = None


class NewTokenBody(BaseModel):
    """A token for ``user``, lasting until revoked, ``expires_at`` or ``expires_in_days``."""

    user: str
    name: str
    description: str | None = None
    expires_at: datetime | None = None
    expires_in_days: Annotated[int | None, Field(gt=0)] = None


class OwnerBody(BaseModel):
    """A model's owner (a user) and team; null clears either."""

    owner: str | None = None
    team: str | None = None
    reason: str | None = None


def _user(found: User) -> UserOut:
    return UserOut.model_validate(found)


def _token(found: ApiToken) -> TokenOut:
    return TokenOut(
        token_id=found.token_id,
        user=found.user,
        name=found.name,
        description=found.description,
        created_at=found.created_at,
        created_by=found.created_by,
        last_used_at=found.last_used_at,
        expires_at=found.expires_at,
        revoked_at=found.revoked_at,
        revoked=found.revoked,
        expired=found.expired(),
    )


def _ownership(found: ModelOwnership) -> OwnershipOut:
    return OwnershipOut.model_validate(found)


# -- users ----------------------------------------------------------------------------


@router.get("/users", dependencies=Admin)
def list_users(
    wb: Wb,
    include_disabled: bool = True,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> UserPage:
    """Users by name, after the name ``after``; the disabled ones too unless told not to."""
    found = wb.access.users.list(include_disabled=include_disabled)
    if after is not None:
        found = [user for user in found if user.name > after]
    shown = found[:limit]
    more = len(found) > limit
    return UserPage(items=[_user(user) for user in shown], next=shown[-1].name if more else None)


@router.post("/users", status_code=201, dependencies=Admin)
def add_user(body: NewUserBody, wb: Wb) -> UserOut:
    """Add a user (201); a name that is taken is 409."""
    added = wb.access.users.add(
        body.name, role=body.role, display_name=body.display_name, teams=body.teams
    )
    return _user(added)


@router.get(_USER, dependencies=Admin)
def get_user(user: str, wb: Wb) -> UserOut:
    """A user."""
    return _user(wb.access.users.get(user))


@router.put(_USER + "/role", dependencies=Admin)
def set_role(user: str, body: RoleBody, wb: Wb) -> UserOut:
    """Give a user another role; the last enabled admin keeps theirs (409)."""
    return _user(wb.access.users.set_role(user, body.role, reason=body.reason))


@router.put(_USER + "/teams", dependencies=Admin)
def set_teams(user: str, body: TeamsBody, wb: Wb) -> UserOut:
    """Make a user a member of exactly these teams."""
    return _user(wb.access.users.set_teams(user, body.teams, reason=body.reason))


@router.post(_USER + "/disable", dependencies=Admin)
def disable_user(user: str, wb: Wb, body: ReasonBody | None = None) -> UserOut:
    """Disable a user: their tokens are refused from the next request on."""
    reason = body.reason if body is not None else None
    return _user(wb.access.users.disable(user, reason=reason))


@router.post(_USER + "/enable", dependencies=Admin)
def enable_user(user: str, wb: Wb, body: ReasonBody | None = None) -> UserOut:
    """Enable a user again: their tokens not revoked or expired work again."""
    reason = body.reason if body is not None else None
    return _user(wb.access.users.enable(user, reason=reason))


# -- tokens ---------------------------------------------------------------------------


@router.get("/tokens", dependencies=Admin)
def list_tokens(wb: Wb, user: str | None = None, include_revoked: bool = False) -> TokenPage:
    """Every user's tokens (or one user's), oldest first; never a secret."""
    found = wb.access.tokens.list(user, include_revoked=include_revoked)
    return TokenPage(items=[_token(token) for token in found])


@router.post("/tokens", status_code=201, dependencies=Admin)
def create_token(body: NewTokenBody, wb: Wb) -> NewTokenOut:
    """A new token for any user (201), with its secret: shown in this answer once, never again."""
    expires_in = None if body.expires_in_days is None else timedelta(days=body.expires_in_days)
    new = wb.access.tokens.create(
        body.user,
        name=body.name,
        description=body.description,
        expires_at=body.expires_at,
        expires_in=expires_in,
    )
    return NewTokenOut(**_token(new.token).model_dump(), secret=new.secret)


@router.delete("/tokens/{token_id}", status_code=204, dependencies=Admin)
def revoke_token(token_id: str, wb: Wb, reason: str | None = None) -> Response:
    """Revoke a token (204): it is refused from the next request on."""
    wb.access.tokens.revoke(token_id, reason=reason)
    return Response(status_code=204)


# -- model ownership ------------------------------------------------------------------


@router.get(_OWNER, dependencies=[Depends(access())])
def get_owner(model: str, wb: Wb) -> OwnershipOut:
    """A model's owner and team (none set: every editor may change it)."""
    return _ownership(wb.access.ownership(model))


@router.put(_OWNER, dependencies=Admin)
def set_owner(model: str, body: OwnerBody, wb: Wb) -> OwnershipOut:
    """Make a user and a team the ones who may change a model (admin); null clears either."""
    return _ownership(wb.access.set_owner(model, body.owner, body.team, reason=body.reason))
