"""The lineage service: add and remove edges, list them, walk ancestors and descendants.

Edges are written through the workspace's :class:`~weightbase.changes.ChangeRecorder`,
so each one added or removed is audited and emitted (``lineage_edge_added`` /
``lineage_edge_removed``) in the transaction that makes it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Literal

from sqlalchemy import and_, or_, select

from weightbase.catalog.schema import LineageEdgeRow
from weightbase.errors import ValidationError
from weightbase.lineage.edges import RELATIONS, to_edge
from weightbase.lineage.graph import LineageGraph
from weightbase.lineage.records import LineageEdge, Node, ReachedNode
from weightbase.lineage.traverse import walk

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder

__all__ = ["RELATIONS", "LineageService"]


class LineageService:
    """Edges among model versions, datasets, runs and deployments, and walks over them.

    Every method takes an optional ``session`` so a caller can add lineage in
    the same transaction as the change it describes; without one it uses its own.
    ``recorder`` (default: one of its own on ``catalog``) records each edge
    added or removed and knows the relation names.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        recorder: ChangeRecorder | None = None,
        relations: Iterable[str] = (),
    ) -> None:
        if recorder is None:
            from weightbase.changes import ChangeRecorder

            recorder = ChangeRecorder.on(catalog)
        self._catalog = catalog
        self._recorder = recorder
        for relation in relations:
            self.register_relation(relation)

    # -- relations -------------------------------------------------------------------

    @property
    def relations(self) -> frozenset[str]:
        """The relation names this service accepts."""
        return self._recorder.relations.names

    def register_relation(self, relation: str) -> None:
        """Accept ``relation`` as an edge label from now on (snake_case, ≤ 64 characters)."""
        self._recorder.relations.register(relation)

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
        if session is None:
            with self._catalog.transaction() as own_session:
                return self._recorder.link(own_session, source, target, relation)
        return self._recorder.link(session, source, target, relation)

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
                return self._recorder.unlink(own_session, source, target, relation)
        return self._recorder.unlink(session, source, target, relation)

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
            return [to_edge(row) for row in session.scalars(query)]
        with self._catalog.session() as own_session:
            return [to_edge(row) for row in own_session.scalars(query)]

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

    def graph(
        self,
        node: Node,
        *,
        depth: int | None = None,
        relations: Collection[str] | None = None,
        session: Session | None = None,
    ) -> LineageGraph:
        """Both walks from ``node``, ancestors and descendants, in one catalog session."""
        if session is None:
            with self._catalog.session() as own_session:
                return self.graph(node, depth=depth, relations=relations, session=own_session)
        return LineageGraph(
            start=node,
            depth=depth,
            ancestors=tuple(self._walk(node, "up", depth, relations, session)),
            descendants=tuple(self._walk(node, "down", depth, relations, session)),
        )

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
                self._recorder.relations.check(relation)
        if session is not None:
            return walk(session, node, direction, depth=depth, relations=relations)
        with self._catalog.session() as own_session:
            return walk(own_session, node, direction, depth=depth, relations=relations)
