"""Access control: users, API tokens, who owns each model, and who may do what.

    access = wb.access
    access.users.add("ada", role="editor", teams=["nlp"])
    new = access.tokens.create("ada", name="laptop")     # new.secret is shown this once
    principal = access.authenticate(new.secret)          # Principal("ada", "editor", …)
    access.set_owner("bert", owner="grace", team="nlp")
    access.require(principal, "write", model="bert")     # ada is in nlp: allowed

The rules themselves are data in ``governance.roles``; users and tokens have
their own modules. This one adds per-model ownership and puts the parts together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weightbase.catalog.schema import ModelGovernanceRow, UserRow
from weightbase.errors import NotFound
from weightbase.governance.roles import (
    ACTIONS,
    OWNED_ACTIONS,
    ROLE_ACTIONS,
    ROLES,
    Action,
    Principal,
    Role,
    can,
    require,
)
from weightbase.governance.tokens import ApiToken, NewToken, Tokens
from weightbase.governance.users import User, Users, check_user_name, user_row

if TYPE_CHECKING:
    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder

__all__ = [
    "ACTIONS",
    "OWNED_ACTIONS",
    "ROLES",
    "ROLE_ACTIONS",
    "Access",
    "Action",
    "ApiToken",
    "ModelOwnership",
    "NewToken",
    "Principal",
    "Role",
    "Tokens",
    "User",
    "Users",
    "can",
    "require",
]


@dataclass(frozen=True, slots=True)
class ModelOwnership:
    """A model's owner and team (who may change it), its approvers and approval policy."""

    model: str
    owner: str | None = None
    team: str | None = None
    approvers: tuple[str, ...] = ()
    required_approvals: int = 1
    require_approval_for_production: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The ownership as plain JSON-ready data."""
        return {
            "model": self.model,
            "owner": self.owner,
            "team": self.team,
            "approvers": list(self.approvers),
            "required_approvals": self.required_approvals,
            "require_approval_for_production": self.require_approval_for_production,
        }


class Access:
    """``users``, ``tokens``, model ownership and the checks a server makes on every call.

    ``model_id`` turns a model's name into its id (the registry's lookup, so
    this module reads no registry table); an unknown model is its ``NotFound``.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        recorder: ChangeRecorder,
        model_id: Callable[[str], int],
    ) -> None:
        self._catalog = catalog
        self._recorder = recorder
        self._model_id = model_id
        self.users = Users(catalog, recorder=recorder)
        self.tokens = Tokens(catalog, recorder=recorder)

    def authenticate(self, secret: str) -> Principal:
        """Who the API token ``secret`` signs in as (see :meth:`Tokens.authenticate`)."""
        return self.tokens.authenticate(secret)

    # -- ownership -------------------------------------------------------------------

    def ownership(self, model: str) -> ModelOwnership:
        """Model ``model``'s owner, team and approval policy (none set: no owner, no team)."""
        model_id = self._model_id(model)
        with self._catalog.session() as session:
            found = session.execute(
                select(ModelGovernanceRow, UserRow.name)
                .outerjoin(UserRow, UserRow.id == ModelGovernanceRow.owner_id)
                .where(ModelGovernanceRow.model_id == model_id)
            ).one_or_none()
        if found is None:
            return ModelOwnership(model)
        row, owner = found
        return ModelOwnership(
            model=model,
            owner=owner,
            team=row.team,
            approvers=tuple(row.approvers or ()),
            required_approvals=row.required_approvals,
            require_approval_for_production=row.require_approval_for_production,
        )

    def set_owner(
        self,
        model: str,
        owner: str | None,
        team: str | None = None,
        *,
        reason: str | None = None,
    ) -> ModelOwnership:
        """Make user ``owner`` and team ``team`` the ones who may change ``model``.

        ``None`` clears either; with neither set, every editor may change it.
        The owner must be a user (``NotFound`` otherwise).
        """
        if team is not None:
            check_user_name(team, what="team")
        model_id = self._model_id(model)
        with self._catalog.transaction() as session:
            owner_id = None if owner is None else user_row(session, owner).id
            row = session.get(ModelGovernanceRow, model_id)
            if row is None:
                row = ModelGovernanceRow(model_id=model_id, approvers=[], required_approvals=1)
                session.add(row)
                before: dict[str, Any] = {"owner": None, "team": None}
            else:
                old_owner = None
                if row.owner_id is not None:
                    old_owner = session.scalar(
                        select(UserRow.name).where(UserRow.id == row.owner_id)
                    )
                before = {"owner": old_owner, "team": row.team}
            after = {"owner": owner, "team": team}
            row.owner_id = owner_id
            row.team = team
            if before != after:
                self._recorder.record(
                    session,
                    "model.set_owner",
                    "model",
                    model_id,
                    before=before,
                    after=after,
                    reason=reason,
                    event="model_owner_set",
                    payload={"model": model, **after},
                )
        return self.ownership(model)

    # -- checks ----------------------------------------------------------------------

    def can(self, principal: Principal, action: str, model: str | None = None) -> bool:
        """Whether ``principal`` may do ``action`` (on ``model``, by its ownership, when given)."""
        if model is None:
            return can(principal, action)
        try:
            owned = self.ownership(model)
        except NotFound:  # not created yet (a push creates it): no owner narrows it
            return can(principal, action)
        return can(
            principal,
            action,
            model_owner=owned.owner,
            model_team=owned.team,
            model_approvers=owned.approvers,
        )

    def require(self, principal: Principal, action: str, model: str | None = None) -> None:
        """``PermissionDenied`` unless :meth:`can` allows it."""
        if model is None:
            require(principal, action)
            return
        owned = self.ownership(model)
        require(
            principal,
            action,
            model=model,
            model_owner=owned.owner,
            model_team=owned.team,
            model_approvers=owned.approvers,
        )
