"""The lineage service: add and remove edges, list them, walk ancestors and descendants."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Literal

from sqlalchemy import ColumnElement, and_, delete, or_, select

from weightbase.catalog.rows import dialect_insert
from weightbase.catalog.schema import LineageEdgeRow, utcnow
from weightbase.errors import NotFound, ValidationError
from weightbase.lineage.records import LineageEdge, Node, ReachedNode
from weightbase.lineage.traverse import walk

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.events import EventBus
    from weightbase.governance.audit import AuditLog

__all__ = ["RELATIONS", "LineageService"]

#: The relations every lineage service knows; ``register_relation`` adds more.
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

_RELATION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class LineageService:
    """Edges among model versions, datasets, runs and deployments, and walks over them.

    Every method takes an optional ``session`` so a caller can add lineage in
    the same transaction as the change it describes; without one it uses its own.
    With ``audit`` and ``events``, each edge added or removed is recorded in the
    audit log and emitted as ``lineage_edge_added`` / ``lineage_edge_removed``.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        audit: AuditLog | None = None,
        events: EventBus | None = None,
        relations: Iterable[str] = (),
    ) -> None:
        self._catalog = catalog
        self._audit = audit
        self._events = events
        self._relations = set(RELATIONS)
        for relation in relations:
            self.register_relation(relation)

    # -- relations -------------------------------------------------------------------

    @property
    def relations(self) -> frozenset[str]:
        """The relation names this service accepts."""
        return frozenset(self._relations)

    def register_relation(self, relation: str) -> None:
        """Accept ``relation`` as an edge label from now on (snake_case, ≤ 64 characters)."""
        if not isinstance(relation, str) or not _RELATION.match(relation):
            raise ValidationError(
                f"invalid relation name {relation!r}: lower-case letters, digits and _, "
                "starting with a letter, at most 64 characters",
                relation=relation,
            )
        self._relations.add(relation)

    def _check_relation(self, relation: str) -> None:
        if relation not in self._relations:
            known = ", ".join(sorted(self._relations))
            raise ValidationError(
                f"unknown lineage relation {relation!r}; known: {known} "
                "(register_relation() adds one)",
                relation=relation,
            )

    # -- edges -----------------------------------------------------------------------

    def add_edge(
        self,
        source: Node,
        target: Node,
        relation: str,
        *,
        session: Session | None = None,
    ) -> LineageEdge:
        """Record ``source <relation> target``; adding an edge that exists returns it unchanged."""
        self._check_relation(relation)
        if source == target:
            raise ValidationError(
                f"a node cannot be its own {relation}: {source}", node=str(source)
            )
        if session is None:
            with self._catalog.transaction() as own_session:
                return self._add_edge(own_session, source, target, relation)
        return self._add_edge(session, source, target, relation)

    def _add_edge(self, session: Session, source: Node, target: Node, relation: str) -> LineageEdge:
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
        inserted_id = session.execute(statement).scalar_one_or_none()
        row = session.scalars(
            select(LineageEdgeRow).where(_is_edge(source, target, relation))
        ).one()
        edge = _to_edge(row)
        if inserted_id is not None:
            self._record(session, "added", row.id, edge)
        return edge

    def remove_edge(
        self,
        source: Node,
        target: Node,
        relation: str,
        *,
        session: Session | None = None,
    ) -> LineageEdge:
        """Delete the edge ``source <relation> target``; ``NotFound`` if there is none."""
        if session is None:
            with self._catalog.transaction() as own_session:
                return self._remove_edge(own_session, source, target, relation)
        return self._remove_edge(session, source, target, relation)

    def _remove_edge(
        self, session: Session, source: Node, target: Node, relation: str
    ) -> LineageEdge:
        row = session.scalars(
            select(LineageEdgeRow).where(_is_edge(source, target, relation))
        ).one_or_none()
        if row is None:
            raise NotFound(
                f"no lineage edge {source} {relation} {target}",
                source=str(source),
                target=str(target),
                relation=relation,
            )
        edge = _to_edge(row)
        session.execute(delete(LineageEdgeRow).where(LineageEdgeRow.id == row.id))
        self._record(session, "removed", row.id, edge)
        return edge

    def _record(self, session: Session, change: str, edge_id: int, edge: LineageEdge) -> None:
        data = edge.to_dict()
        if self._audit is not None:
            self._audit.record(
                session,
                action=f"lineage.{'add' if change == 'added' else 'remove'}_edge",
                entity_kind="lineage_edge",
                entity_id=edge_id,
                before=data if change == "removed" else None,
                after=data if change == "added" else None,
            )
        if self._events is not None:
            self._events.emit(f"lineage_edge_{change}", data, session=session)

    def edges(
        self,
        node: Node,
        *,
        direction: Literal["out", "in", "both"] = "both",
        relation: str | None = None,
        session: Session | None = None,
    ) -> list[LineageEdge]:
        """The edges at ``node``: ``"out"`` where it is the source, ``"in"`` the target."""
        if direction not in ("out", "in", "both"):
            raise ValidationError(f"direction must be 'out', 'in' or 'both', not {direction!r}")
        outgoing = and_(
            LineageEdgeRow.source_kind == node.kind, LineageEdgeRow.source_id == node.id
        )
        incoming = and_(
            LineageEdgeRow.target_kind == node.kind, LineageEdgeRow.target_id == node.id
        )
        condition = {"out": outgoing, "in": incoming, "both": or_(outgoing, incoming)}[direction]
        query = select(LineageEdgeRow).where(condition).order_by(LineageEdgeRow.id)
        if relation is not None:
            query = query.where(LineageEdgeRow.relation == relation)
        if session is not None:
            return [_to_edge(row) for row in session.scalars(query)]
        with self._catalog.session() as own_session:
            return [_to_edge(row) for row in own_session.scalars(query)]

    # -- walks -----------------------------------------------------------------------

    def ancestors(
        self,
        node: Node,
        *,
        depth: int | None = None,
        relations: Collection[str] | None = None,
        session: Session | None = None,
    ) -> list[ReachedNode]:
        """What ``node`` came from, following edges source → target, nearest first."""
        return self._walk(node, "up", depth, relations, session)

    def descendants(
        self,
        node: Node,
        *,
        depth: int | None = None,
        relations: Collection[str] | None = None,
        session: Session | None = None,
    ) -> list[ReachedNode]:
        """What came from ``node``, following edges target → source, nearest first."""
        return self._walk(node, "down", depth, relations, session)

    def _walk(
        self,
        node: Node,
        direction: Literal["up", "down"],
        depth: int | None,
        relations: Collection[str] | None,
        session: Session | None,
    ) -> list[ReachedNode]:
        if depth is not None and (isinstance(depth, bool) or depth < 0):
            raise ValidationError(f"depth must be a non-negative integer or None, not {depth!r}")
        if relations is not None:
            if isinstance(relations, str):
                relations = [relations]
            for relation in relations:
                self._check_relation(relation)
        if session is not None:
            return walk(session, node, direction, depth=depth, relations=relations)
        with self._catalog.session() as own_session:
            return walk(own_session, node, direction, depth=depth, relations=relations)


def _is_edge(source: Node, target: Node, relation: str) -> ColumnElement[bool]:
    return and_(
        LineageEdgeRow.source_kind == source.kind,
        LineageEdgeRow.source_id == source.id,
        LineageEdgeRow.target_kind == target.kind,
        LineageEdgeRow.target_id == target.id,
        LineageEdgeRow.relation == relation,
    )


def _to_edge(row: LineageEdgeRow) -> LineageEdge:
    return LineageEdge(
        source=Node(row.source_kind, row.source_id),
        target=Node(row.target_kind, row.target_id),
        relation=row.relation,
        created_at=row.created_at,
    )
