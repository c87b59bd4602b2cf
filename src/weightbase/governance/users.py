"""Users: who may sign in with API tokens, with which role and in which teams.

A user is disabled, never deleted, so the audit log and the rows that name
them keep meaning something. The last enabled admin can be neither disabled
nor demoted, so a workspace never locks itself out.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from weightbase.catalog.schema import UserRow, utcnow
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.governance.roles import Role, check_role

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder

__all__ = ["User", "Users", "check_user_name"]

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*\Z")


def check_user_name(name: str, *, what: str = "user") -> str:
    """``name`` if it is a valid user or team name: 1 to 255 letters, digits and ``. _ @ + -``."""
    if not isinstance(name, str) or len(name) > 255 or not _USER_NAME.match(name):
        raise ValidationError(
            f"invalid {what} name {name!r}: letters, digits, '.', '_', '@', '+', '-', "
            "starting with a letter or digit, at most 255 characters",
            name=name,
        )
    return name


@dataclass(frozen=True, slots=True)
class User:
    """A user: their role, teams, and whether they are disabled."""

    id: int
    name: str
    display_name: str | None
    role: Role
    teams: tuple[str, ...]
    disabled_at: datetime | None
    created_at: datetime
    created_by: str | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def to_dict(self) -> dict[str, Any]:
        """The user as plain JSON-ready data."""
        return {
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name,
            "role": self.role,
            "teams": list(self.teams),
            "disabled": self.disabled,
            "disabled_at": None if self.disabled_at is None else self.disabled_at.isoformat(),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        return cls(
            id=row.id,
            name=row.name,
            display_name=row.display_name,
            role=check_role(row.role),
            teams=tuple(row.teams or ()),
            disabled_at=row.disabled_at,
            created_at=row.created_at,
            created_by=row.created_by,
        )


def _teams(teams: Iterable[str]) -> list[str]:
    if isinstance(teams, str):
        raise ValidationError(f"teams must be a list of names, not the text {teams!r}")
    return sorted({check_user_name(team, what="team") for team in teams})


def user_row(session: Session, name: str) -> UserRow:
    """The row of user ``name``; ``NotFound`` if there is none."""
    row = session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"no user named {name!r}", user=name)
    return row


class Users:
    """Add users, list them, change their role and teams, disable and enable them."""

    def __init__(self, catalog: Catalog, *, recorder: ChangeRecorder) -> None:
        self._catalog = catalog
        self._recorder = recorder

    def add(
        self,
        name: str,
        *,
        role: str = "viewer",
        display_name: str | None = None,
        teams: Iterable[str] = (),
    ) -> User:
        """Add user ``name``; ``Conflict`` if the name is taken."""
        check_user_name(name)
        checked_role = check_role(role)
        if display_name is not None and (not display_name.strip() or len(display_name) > 255):
            raise ValidationError(f"display name must be 1 to 255 characters: {display_name!r}")
        team_names = _teams(teams)
        with self._catalog.transaction() as session:
            if session.scalars(select(UserRow.id).where(UserRow.name == name)).first() is not None:
                raise Conflict(f"user {name!r} already exists", user=name)
            row = UserRow(
                name=name,
                display_name=display_name,
                role=checked_role,
                teams=team_names,
                created_at=utcnow(),
                created_by=self._recorder.actor,
            )
            session.add(row)
            session.flush()
            user = User.from_row(row)
            self._recorder.record(
                session,
                "users.add",
                "user",
                row.id,
                after={"name": name, "role": checked_role, "teams": team_names},
                event="user_added",
            )
        return user

    def get(self, name: str) -> User:
        """User ``name``; ``NotFound`` if there is none."""
        with self._catalog.session() as session:
            return User.from_row(user_row(session, name))

    def list(self, *, include_disabled: bool = True) -> builtins.list[User]:
        """Every user by name; ``include_disabled=False`` leaves the disabled ones out."""
        query = select(UserRow).order_by(UserRow.name)
        if not include_disabled:
            query = query.where(UserRow.disabled_at.is_(None))
        with self._catalog.session() as session:
            return [User.from_row(row) for row in session.scalars(query)]

    def set_role(self, name: str, role: str, *, reason: str | None = None) -> User:
        """Give user ``name`` the role ``role``; the last enabled admin keeps theirs."""
        new_role = check_role(role)
        with self._catalog.transaction() as session:
            row = user_row(session, name)
            old_role = row.role
            if old_role == new_role:
                return User.from_row(row)
            if old_role == "admin" and row.disabled_at is None:
                _keep_an_admin(session, name, "demote")
            row.role = new_role
            self._recorder.record(
                session,
                "users.set_role",
                "user",
                row.id,
                before={"name": name, "role": old_role},
                after={"name": name, "role": new_role},
                reason=reason,
                event="user_role_changed",
            )
            return User.from_row(row)

    def set_teams(self, name: str, teams: Iterable[str], *, reason: str | None = None) -> User:
        """Make user ``name`` a member of exactly ``teams``."""
        team_names = _teams(teams)
        with self._catalog.transaction() as session:
            row = user_row(session, name)
            old_teams = list(row.teams or ())
            if old_teams == team_names:
                return User.from_row(row)
            row.teams = team_names
            self._recorder.record(
                session,
                "users.set_teams",
                "user",
                row.id,
                before={"name": name, "teams": old_teams},
                after={"name": name, "teams": team_names},
                reason=reason,
                event="user_teams_changed",
            )
            return User.from_row(row)

    def disable(self, name: str, *, reason: str | None = None) -> User:
        """Disable user ``name``: their tokens stop working on their next use."""
        with self._catalog.transaction() as session:
            row = user_row(session, name)
            if row.disabled_at is not None:
                return User.from_row(row)
            if row.role == "admin":
                _keep_an_admin(session, name, "disable")
            row.disabled_at = utcnow()
            self._recorder.record(
                session,
                "users.disable",
                "user",
                row.id,
                before={"name": name, "disabled": False},
                after={"name": name, "disabled": True},
                reason=reason,
                event="user_disabled",
            )
            return User.from_row(row)

    def enable(self, name: str, *, reason: str | None = None) -> User:
        """Enable user ``name`` again; tokens not revoked or expired work again."""
        with self._catalog.transaction() as session:
            row = user_row(session, name)
            if row.disabled_at is None:
                return User.from_row(row)
            row.disabled_at = None
            self._recorder.record(
                session,
                "users.enable",
                "user",
                row.id,
                before={"name": name, "disabled": True},
                after={"name": name, "disabled": False},
                reason=reason,
                event="user_enabled",
            )
            return User.from_row(row)


def _keep_an_admin(session: Session, name: str, verb: str) -> None:
    """``Conflict`` unless an enabled admin other than ``name`` remains."""
    others = session.scalar(
        select(func.count())
        .select_from(UserRow)
        .where(UserRow.role == "admin", UserRow.disabled_at.is_(None), UserRow.name != name)
    )
    if not others:
        raise Conflict(
            f"cannot {verb} {name!r}: the last enabled admin (make another user admin first)",
            user=name,
        )
