"""The audit log: who changed what, when, from what to what, and why.

Every mutation a service makes records one entry in the same transaction as
the change, so the log never claims a change that did not happen, nor misses
one that did:

    with catalog.transaction() as session:
        ...                                                   # the change
        audit.record(session, action="alias.set", entity_kind="model", entity_id=model_id,
                     before={"production": "1.0.0"}, after={"production": "1.1.0"})

An entry names its actor; a change made through the API also names its
origin, the token the request signed in with and the client's address
(:class:`AuditOrigin`). In-process and CLI changes have neither.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from weightbase.catalog.schema import AuditLogRow, utcnow
from weightbase.catalog.values import JSONValue, freeze_object, json_object
from weightbase.config import default_actor
from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog

__all__ = ["AuditEntry", "AuditLog", "AuditOrigin"]

_NAME = re.compile(r"^[a-z][a-z0-9_.:-]*\Z")


@dataclass(frozen=True, slots=True)
class AuditOrigin:
    """Where a change came from: the API token's public id and the client's address."""

    token_id: str | None = None
    remote_address: str | None = None


#: The origin of a change made in-process (the library, the CLI): no token, no address.
NO_ORIGIN = AuditOrigin()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change."""

    id: int
    at: datetime
    actor: str
    action: str
    entity_kind: str
    entity_id: str
    before: Mapping[str, JSONValue] | None
    after: Mapping[str, JSONValue] | None
    reason: str | None
    token_id: str | None = None
    remote_address: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain JSON-ready data."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "entity_kind": self.entity_kind,
            "entity_id": self.entity_id,
            "before": None if self.before is None else dict(self.before),
            "after": None if self.after is None else dict(self.after),
            "reason": self.reason,
            "token_id": self.token_id,
            "remote_address": self.remote_address,
        }


class AuditLog:
    """Append-only record of every change, by ``actor`` (``WEIGHTBASE_ACTOR`` or the OS user)."""

    def __init__(self, catalog: Catalog, *, actor: str | None = None) -> None:
        self._catalog = catalog
        self._actor = actor

    @property
    def actor(self) -> str:
        """Who this log records as acting when a call names no one."""
        return self._actor or default_actor()

    @property
    def origin(self) -> AuditOrigin:
        """Where the changes this log records come from (in-process: nowhere in particular)."""
        return NO_ORIGIN

    def record(
        self,
        session: Session | None,
        *,
        action: str,
        entity_kind: str,
        entity_id: str | int,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        reason: str | None = None,
        actor: str | None = None,
    ) -> AuditEntry:
        """Record one change in ``session``'s transaction (its own one when ``session`` is None).

        ``action`` is a dotted verb (``model.create``, ``alias.set``); ``before``
        and ``after`` are JSON-able snapshots of what changed.
        """
        _check_name("action", action, 128)
        _check_name("entity_kind", entity_kind, 64)
        entity = str(entity_id)
        if not entity or len(entity) > 255:
            raise ValidationError(f"entity_id must be 1 to 255 characters, not {entity!r}")
        who = (actor or self.actor).strip()
        if not who or len(who) > 255:
            raise ValidationError(f"actor must be 1 to 255 characters, not {who!r}")
        if reason is not None and not isinstance(reason, str):
            raise ValidationError(f"reason must be text, not {type(reason).__name__}")
        origin = self.origin
        values = {
            "at": utcnow(),
            "actor": who,
            "action": action,
            "entity_kind": entity_kind,
            "entity_id": entity,
            "before": None if before is None else json_object(before, what="audit 'before'"),
            "after": None if after is None else json_object(after, what="audit 'after'"),
            "reason": reason,
            "token_id": origin.token_id,
            "remote_address": _clip(origin.remote_address, 64),
        }
        if session is None:
            with self._catalog.transaction() as own_session:
                return _insert(own_session, values)
        return _insert(session, values)

    def entries(
        self,
        entity_kind: str | None = None,
        entity_id: str | int | None = None,
        *,
        action: str | None = None,
        actor: str | None = None,
        token_id: str | None = None,
        since_id: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
        session: Session | None = None,
    ) -> list[AuditEntry]:
        """Recorded entries matching every filter given, oldest first (or newest first).

        ``since_id`` pages forward: pass the last id seen to get what came after.
        """
        if limit < 1:
            raise ValidationError(f"limit must be at least 1, not {limit}")
        if entity_id is not None and entity_kind is None:
            raise ValidationError("entity_id needs entity_kind")
        query = select(AuditLogRow).limit(limit)
        query = query.order_by(AuditLogRow.id.desc() if newest_first else AuditLogRow.id)
        if entity_kind is not None:
            query = query.where(AuditLogRow.entity_kind == entity_kind)
        if entity_id is not None:
            query = query.where(AuditLogRow.entity_id == str(entity_id))
        if action is not None:
            query = query.where(AuditLogRow.action == action)
        if actor is not None:
            query = query.where(AuditLogRow.actor == actor)
        if token_id is not None:
            query = query.where(AuditLogRow.token_id == token_id)
        if since_id is not None:
            query = query.where(AuditLogRow.id > since_id)
        if session is not None:
            return [_to_entry(row) for row in session.scalars(query)]
        with self._catalog.session() as own_session:
            return [_to_entry(row) for row in own_session.scalars(query)]


def _check_name(field: str, value: str, max_length: int) -> None:
    if not isinstance(value, str) or len(value) > max_length or not _NAME.match(value):
        raise ValidationError(
            f"invalid {field} {value!r}: lower-case letters, digits and _ . : -, "
            f"starting with a letter, at most {max_length} characters"
        )


def _clip(value: str | None, max_length: int) -> str | None:
    return None if value is None else value[:max_length]


def _insert(session: Session, values: dict[str, Any]) -> AuditEntry:
    statement = insert(AuditLogRow).values(**values).returning(AuditLogRow.id)
    entry_id = session.execute(statement).scalar_one()
    return AuditEntry(
        id=entry_id,
        at=values["at"],
        actor=values["actor"],
        action=values["action"],
        entity_kind=values["entity_kind"],
        entity_id=values["entity_id"],
        before=freeze_object(values["before"]),
        after=freeze_object(values["after"]),
        reason=values["reason"],
        token_id=values["token_id"],
        remote_address=values["remote_address"],
    )


def _to_entry(row: AuditLogRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        entity_kind=row.entity_kind,
        entity_id=row.entity_id,
        before=freeze_object(None if row.before is None else dict(row.before)),
        after=freeze_object(None if row.after is None else dict(row.after)),
        reason=row.reason,
        token_id=row.token_id,
        remote_address=row.remote_address,
    )
