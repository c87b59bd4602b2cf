"""Small row-level helpers every domain service uses: upserts and tags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from weightbase.catalog.schema import TagRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["add_tag", "dialect_insert", "insert_or_ignore", "tags_of"]


def dialect_insert(session: Session) -> Any:
    """The ``insert`` construct of the session's database, which has ``on_conflict_*``."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def insert_or_ignore(session: Session, table: Any, **values: Any) -> int | None:
    """Insert a row unless it would break a uniqueness rule; the new id, or None if ignored."""
    statement = (
        dialect_insert(session)(table).values(**values).on_conflict_do_nothing().returning(table.id)
    )
    inserted: int | None = session.execute(statement).scalar_one_or_none()
    return inserted


def add_tag(session: Session, kind: str, entity_id: int, tag: str) -> bool:
    """Tag a row of ``kind``; False when it already had the tag."""
    return (
        insert_or_ignore(session, TagRow, entity_kind=kind, entity_id=entity_id, tag=tag)
        is not None
    )


def tags_of(session: Session, kind: str, ids: Iterable[int]) -> dict[int, list[str]]:
    """The tags of each row of ``kind`` among ``ids``, sorted."""
    found: dict[int, list[str]] = {}
    for entity, tag in session.execute(
        select(TagRow.entity_id, TagRow.tag)
        .where(TagRow.entity_kind == kind, TagRow.entity_id.in_(list(ids)))
        .order_by(TagRow.tag)
    ):
        found.setdefault(entity, []).append(tag)
    return found
