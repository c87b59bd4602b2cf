"""Named, soft-deleted catalog entities (models, datasets): finding, creating, auditing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import select

from weightbase.catalog.rows import insert_or_ignore
from weightbase.catalog.schema import DatasetRow, ModelRow, utcnow
from weightbase.errors import NotFound
from weightbase.names import check_entity_name

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.events import EventBus
    from weightbase.governance.audit import AuditLog

__all__ = ["NamedEntities"]

RowT = TypeVar("RowT", ModelRow, DatasetRow)


class NamedEntities(Generic[RowT]):
    """The live rows of one kind of entity, unique by name, and their audit trail.

    Every audit entry of an entity is recorded against it (``entity_kind`` is
    ``kind``, ``entity_id`` its row id), so its history is one indexed query.
    """

    def __init__(self, row: type[RowT], kind: str, *, audit: AuditLog, events: EventBus) -> None:
        self.row: type[RowT] = row
        self.kind = kind
        self._audit = audit
        self._events = events

    def live(self, session: Session, name: str, *, lock: bool = False) -> RowT | None:
        """The live row called ``name`` (locked for update on PostgreSQL with ``lock``)."""
        query = select(self.row).where(self.row.name == name, self.row.deleted_at.is_(None))
        if lock:
            query = query.with_for_update()
        return session.scalars(query).first()

    def require(self, session: Session, name: str, *, lock: bool = False) -> RowT:
        """The live row called ``name``; ``NotFound`` if there is none."""
        check_entity_name(name, what=self.kind)
        row = self.live(session, name, lock=lock)
        if row is None:
            raise NotFound(f"no {self.kind} called {name!r}", **{self.kind: name})
        return row

    def insert(self, session: Session, name: str) -> RowT:
        """Insert the row, or find the one another writer inserted first; locked either way."""
        now = utcnow()
        inserted = insert_or_ignore(session, self.row, name=name, created_at=now, updated_at=now)
        row = self.live(session, name, lock=True)
        assert row is not None
        if inserted is not None:
            self.record(session, row.id, f"{self.kind}.create", None, {"name": name}, None)
            self._events.emit(
                f"{self.kind}_created", {self.kind: name, "id": row.id}, session=session
            )
        return row

    def record(
        self,
        session: Session,
        entity_id: int,
        action: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        reason: str | None,
    ) -> None:
        """Write one audit entry about the entity ``entity_id`` in ``session``'s transaction."""
        self._audit.record(
            session,
            action=action,
            entity_kind=self.kind,
            entity_id=entity_id,
            before=before,
            after=after,
            reason=reason,
        )
