"""Lineage edges as rows: the known relations, inserting and deleting one edge.

These are the row-level steps; :class:`weightbase.changes.ChangeRecorder`
calls them and records each change, and
:class:`weightbase.lineage.LineageService` reads and walks the graph.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, delete, select

from weightbase.catalog.rows import dialect_insert
from weightbase.catalog.schema import LineageEdgeRow, utcnow
from weightbase.errors import NotFound, ValidationError
from weightbase.lineage.records import LineageEdge, Node

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["RELATIONS", "Relations", "delete_edge", "insert_edge", "is_edge", "to_edge"]

#: The relations every workspace knows; ``Relations.register`` adds more.
RELATIONS = frozenset(
    {
        "derived_from",
        "fine_tuned_from",
        "trained_on",
        "produced_by",
        "deployed_as",
        "evaluated_on",
    }
)

_RELATION = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")


class Relations:
    """The relation names edges may carry: :data:`RELATIONS` and those registered."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self._names = set(RELATIONS)
        for relation in extra:
            self.register(relation)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._names)

    def register(self, relation: str) -> None:
        """Accept ``relation`` from now on (snake_case, at most 64 characters)."""
        if not isinstance(relation, str) or not _RELATION.match(relation):
            raise ValidationError(
                f"invalid relation name {relation!r}: lower-case letters, digits and _, "
                "starting with a letter, at most 64 characters",
                relation=relation,
            )
        self._names.add(relation)

    def check(self, relation: str) -> None:
        """``ValidationError`` unless ``relation`` is known."""
        if relation not in self._names:
            known = ", ".join(sorted(self._names))
            raise ValidationError(
                f"unknown lineage relation {relation!r}; known: {known} "
                "(register_relation() adds one)",
                relation=relation,
            )


def insert_edge(
    session: Session, source: Node, target: Node, relation: str
) -> tuple[LineageEdge, int | None]:
    """Insert ``source <relation> target`` unless it exists; the edge and its new row id.

    The id is None when the edge was there already (nothing changed).
    """
    if source == target:
        raise ValidationError(f"a node cannot be its own {relation}: {source}", node=str(source))
    values = {
        "source_kind": source.kind,
        "source_id": source.id,
        "target_kind": target.kind,
        "target_id": target.id,
        "relation": relation,
        "created_at": utcnow(),
    }
    statement = (
        dialect_insert(session)(LineageEdgeRow)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(LineageEdgeRow.id)
    )
    inserted: int | None = session.execute(statement).scalar_one_or_none()
    row = session.scalars(select(LineageEdgeRow).where(is_edge(source, target, relation))).one()
    return to_edge(row), inserted


def delete_edge(
    session: Session, source: Node, target: Node, relation: str
) -> tuple[LineageEdge, int]:
    """Delete ``source <relation> target``; the edge and the id its row had."""
    row = session.scalars(
        select(LineageEdgeRow).where(is_edge(source, target, relation))
    ).one_or_none()
    if row is None:
        raise NotFound(
            f"no lineage edge {source} {relation} {target}",
            source=str(source),
            target=str(target),
            relation=relation,
        )
    edge = to_edge(row)
    session.execute(delete(LineageEdgeRow).where(LineageEdgeRow.id == row.id))
    return edge, row.id


def is_edge(source: Node, target: Node, relation: str) -> ColumnElement[bool]:
    """The SQL condition that selects one edge."""
    return and_(
        LineageEdgeRow.source_kind == source.kind,
        LineageEdgeRow.source_id == source.id,
        LineageEdgeRow.target_kind == target.kind,
        LineageEdgeRow.target_id == target.id,
        LineageEdgeRow.relation == relation,
    )


def to_edge(row: LineageEdgeRow) -> LineageEdge:
    """The record of an edge row."""
    return LineageEdge(
        source=Node(row.source_kind, row.source_id),
        target=Node(row.target_kind, row.target_id),
        relation=row.relation,
        created_at=row.created_at,
    )
