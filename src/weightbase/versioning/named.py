"""Named, soft-deleted entities (models, datasets): finding, creating and recording changes.

A name is unique among live rows; deleting one (``deleted_at``) frees the name.
Every change to an entity is recorded against it (``entity_kind`` is the
entity's kind, ``entity_id`` its row id), so its history is one indexed query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Select, select

from weightbase.catalog.rows import insert_or_ignore
from weightbase.catalog.schema import DatasetRow, ModelRow, utcnow
from weightbase.errors import NotFound, ValidationError
from weightbase.names import check_entity_name
from weightbase.versioning.pages import Page
from weightbase.versioning.semver import BumpPart, new_version, next_version

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.governance.audit import AuditEntry

__all__ = ["NamedEntities"]

RowT = TypeVar("RowT", ModelRow, DatasetRow)
T = TypeVar("T")

#: The longest page a listing returns.
MAX_PAGE = 1000


class NamedEntities(Generic[RowT]):
    """The live rows of one kind of entity, unique by name, and their change records."""

    def __init__(self, row: type[RowT], kind: str, *, recorder: ChangeRecorder) -> None:
        self.row: type[RowT] = row
        self.kind = kind
        self._recorder = recorder

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

    def check_new_version(
        self, catalog: Catalog, version_row: Any, name: str, version: str | None, part: BumpPart
    ) -> str | None:
        """``version`` canonical (or None), once it or the bump of ``part`` is within bounds.

        Called before a new version's content is written, so that a number out
        of bounds stores nothing; the number is taken again when the row is.
        """
        if version is not None:
            return new_version(version)
        with catalog.session() as session:
            row = self.live(session, name)
            owner = getattr(version_row, f"{self.kind}_id")
            taken = (
                []
                if row is None
                else list(session.scalars(select(version_row.version).where(owner == row.id)))
            )
        next_version(taken, None, part, what=name)
        return None

    def insert(self, session: Session, name: str) -> RowT:
        """Insert the row, or find the one another writer inserted first; locked either way."""
        now = utcnow()
        inserted = insert_or_ignore(session, self.row, name=name, created_at=now, updated_at=now)
        row = self.live(session, name, lock=True)
        assert row is not None
        if inserted is not None:
            self.record(
                session,
                row.id,
                f"{self.kind}.create",
                after={"name": name},
                event=f"{self.kind}_created",
                payload={self.kind: name, "id": row.id},
            )
        return row

    def matching(self, name: str | None, *, limit: int) -> Select[RowT]:
        """Live rows whose name contains ``name`` (any case), for :meth:`page`; checks ``limit``."""
        if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        query = select(self.row).where(self.row.deleted_at.is_(None))
        if name:
            pattern = name.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
            query = query.where(self.row.name.ilike(f"%{pattern}%", escape="\\"))
        return query

    def page(
        self,
        session: Session,
        query: Select[RowT],
        *,
        limit: int,
        after: str | None,
        records: Callable[[Session, list[RowT]], list[T]],
    ) -> Page[T]:
        """One page of ``query``'s rows by name, after the name ``after``, as ``records``."""
        if after is not None:
            query = query.where(self.row.name > after)
        rows = list(session.scalars(query.order_by(self.row.name).limit(limit + 1)))
        found = records(session, rows[:limit])
        more = len(rows) > limit
        return Page(tuple(found), rows[limit - 1].name if more else None)

    def version_names(
        self, session: Session, version_row: Any, ids: Iterable[int]
    ) -> dict[int, str]:
        """``name@version`` of each version row id among ``ids`` (of ``version_row``'s table)."""
        owner = getattr(version_row, f"{self.kind}_id")
        query = (
            select(version_row.id, self.row.name, version_row.version)
            .join(self.row, self.row.id == owner)
            .where(version_row.id.in_(list(ids)))
        )
        return {row_id: f"{name}@{number}" for row_id, name, number in session.execute(query)}

    def record(
        self,
        session: Session,
        entity_id: int,
        action: str,
        *,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        reason: str | None = None,
        event: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Record one change to the entity ``entity_id`` in ``session``'s transaction."""
        return self._recorder.record(
            session,
            action,
            self.kind,
            entity_id,
            before=before,
            after=after,
            reason=reason,
            event=event,
            payload=payload,
        )
