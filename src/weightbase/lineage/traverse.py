"""Walking the lineage graph with recursive SQL queries (SQLite and PostgreSQL alike).

The walk is a recursive CTE over ``(node, distance, last edge)`` rows combined
with ``UNION``, so duplicate rows collapse, and it never goes deeper than a
bound. A first walk is bounded by the depth asked for, or by a cheap default;
if it ends before its bound it has found everything. Otherwise (a deep graph,
or a cycle) the bound becomes the number of nodes reachable at all, counted by
a second recursive CTE over bare nodes, which ends on any graph because each
node enters it once. No shortest path is longer than that count, so the walk
finds every reachable node at its true distance and stops, cycles included.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Literal, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, func, literal, select, true

from weightbase.catalog.schema import LineageEdgeRow
from weightbase.lineage.records import Node, ReachedNode

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["Direction", "walk"]

#: ``"up"`` follows edges source → target (ancestors), ``"down"`` target → source.
Direction = Literal["up", "down"]

# The first walk's bound when no (or a larger) depth is asked for. Real lineage
# is rarely this deep, so one query usually answers; a cycle or a deeper graph
# costs a count and a second walk.
_CHEAP_DEPTH = 64


class _Ends(NamedTuple):
    """The columns an edge is walked from and to, for one direction."""

    from_kind: ColumnElement[str]
    from_id: ColumnElement[str]
    to_kind: ColumnElement[str]
    to_id: ColumnElement[str]


def _ends(direction: Direction) -> _Ends:
    edges = LineageEdgeRow.__table__.c
    if direction == "up":
        return _Ends(edges.source_kind, edges.source_id, edges.target_kind, edges.target_id)
    return _Ends(edges.target_kind, edges.target_id, edges.source_kind, edges.source_id)


def walk(
    session: Session,
    start: Node,
    direction: Direction,
    *,
    depth: int | None = None,
    relations: Collection[str] | None = None,
) -> list[ReachedNode]:
    """Every node reachable from ``start`` within ``depth`` edges, nearest first."""
    if depth is not None and depth < 1:
        return []
    ends = _ends(direction)
    relation_column = LineageEdgeRow.__table__.c.relation
    relation_filter: ColumnElement[bool] = (
        relation_column.in_(sorted(relations)) if relations is not None else true()
    )
    from_start = and_(ends.from_kind == start.kind, ends.from_id == start.id, relation_filter)

    bound = depth if depth is not None and depth <= _CHEAP_DEPTH else _CHEAP_DEPTH
    walked = list(session.execute(_walk_query(ends, from_start, relation_filter, bound)))
    if walked and walked[-1].distance >= bound and (depth is None or depth > bound):
        reachable = session.execute(_count_reachable(ends, from_start, relation_filter))
        count = reachable.scalar_one()
        deeper = count if depth is None else min(depth, count)
        if deeper > bound:
            walked = list(session.execute(_walk_query(ends, from_start, relation_filter, deeper)))

    found: dict[tuple[str, str], ReachedNode] = {}
    for kind, node_id, distance, relation, via_kind, via_id in walked:
        key = (kind, node_id)
        if key in found or key == (start.kind, start.id):
            continue  # a longer path to a node already reached, or a cycle back home
        found[key] = ReachedNode(
            node=Node(kind, node_id),
            distance=distance,
            relation=relation,
            via=Node(via_kind, via_id),
        )
    return list(found.values())


def _walk_query(
    ends: _Ends,
    from_start: ColumnElement[bool],
    relation_filter: ColumnElement[bool],
    bound: int,
) -> Select[str, str, int, str, str, str]:
    """Rows (kind, id, distance, relation, via_kind, via_id), nearest first, up to ``bound``."""
    relation = LineageEdgeRow.__table__.c.relation
    steps = (
        select(
            ends.to_kind.label("kind"),
            ends.to_id.label("id"),
            literal(1).label("distance"),
            relation.label("relation"),
            ends.from_kind.label("via_kind"),
            ends.from_id.label("via_id"),
        )
        .where(from_start)
        .cte("lineage_walk", recursive=True)
    )
    previous = steps.alias("previous")
    steps = steps.union(
        select(
            ends.to_kind,
            ends.to_id,
            previous.c.distance + 1,
            relation,
            ends.from_kind,
            ends.from_id,
        )
        .join(previous, and_(ends.from_kind == previous.c.kind, ends.from_id == previous.c.id))
        .where(relation_filter, previous.c.distance < bound)
    )
    return select(
        steps.c.kind,
        steps.c.id,
        steps.c.distance,
        steps.c.relation,
        steps.c.via_kind,
        steps.c.via_id,
    ).order_by(
        steps.c.distance,
        steps.c.kind,
        steps.c.id,
        steps.c.relation,
        steps.c.via_kind,
        steps.c.via_id,
    )


def _count_reachable(
    ends: _Ends, from_start: ColumnElement[bool], relation_filter: ColumnElement[bool]
) -> Select[int]:
    """How many nodes the start reaches at any depth (itself included if on a cycle)."""
    reach = (
        select(ends.to_kind.label("kind"), ends.to_id.label("id"))
        .where(from_start)
        .cte("lineage_reach", recursive=True)
    )
    reached = reach.alias("reached")
    reach = reach.union(
        select(ends.to_kind, ends.to_id)
        .join(reached, and_(ends.from_kind == reached.c.kind, ends.from_id == reached.c.id))
        .where(relation_filter)
    )
    return select(func.count()).select_from(reach)
