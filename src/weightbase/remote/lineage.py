"""``wb.lineage`` of a remote workspace: the lineage graph on a weightbase server.

Every method of :class:`~weightbase.lineage.LineageService` is overridden (a
test checks that none is inherited) and answers from ``/api/v1/lineage``, so
walks, edges and ``weightbase lineage`` work the same embedded and remote.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from weightbase.errors import NotSupported, ValidationError
from weightbase.lineage import LineageEdge, LineageGraph, LineageService, Node, ReachedNode
from weightbase.remote.decode import decode, decode_all

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.remote.http import Connection

__all__ = ["RemoteLineage", "describe"]

_LINEAGE = "/api/v1/lineage"
#: Nodes named per request: the server's limit, each one a query parameter.
_NAMES_PER_REQUEST = 100


class RemoteLineage(LineageService):
    """Lineage edges and walks on the server; the relations are the server's."""

    def __init__(self, connection: Connection) -> None:  # no catalog: the server has it
        self._http = connection

    @property
    def relations(self) -> frozenset[str]:
        """The relation names the server accepts."""
        return frozenset(self._http.get(f"{_LINEAGE}/relations")["relations"])

    def register_relation(self, relation: str) -> None:
        raise NotSupported(
            "a remote workspace cannot register lineage relations: they are the server's "
            "(register them where the server opens its workspace)"
        )

    def add_edge(
        self, source: Node, target: Node, relation: str, *, session: Session | None = None
    ) -> LineageEdge:
        _no_session(session)
        body = {"source": source.to_dict(), "target": target.to_dict(), "relation": relation}
        # adding an edge that exists changes nothing, so a retry is safe
        return decode(LineageEdge, self._http.post(f"{_LINEAGE}/edges", body, retry=True))

    def remove_edge(
        self, source: Node, target: Node, relation: str, *, session: Session | None = None
    ) -> LineageEdge:
        _no_session(session)
        found = self._http.delete(
            f"{_LINEAGE}/edges", source=str(source), target=str(target), relation=relation
        )
        return decode(LineageEdge, found)

    def edges(
        self,
        node: Node,
        *,
        direction: Literal["out", "in", "both"] = "both",
        relation: str | None = None,
        session: Session | None = None,
    ) -> list[LineageEdge]:
        _no_session(session)
        if direction not in ("out", "in", "both"):
            raise ValidationError(f"direction must be 'out', 'in' or 'both', not {direction!r}")
        found = self._http.get(
            f"{_LINEAGE}/edges", node=str(node), direction=direction, relation=relation
        )
        return decode_all(LineageEdge, found["items"])

    def ancestors(
        self,
        node: Node,
        *,
        depth: int | None = None,
        relations: Collection[str] | None = None,
        session: Session | None = None,
    ) -> list[ReachedNode]:
        return self._walk_remote("ancestors", node, depth, relations, session)

    def descendants(
        self,
        node: Node,
        *,
        depth: int | None = None,
        relations: Collection[str] | None = None,
        session: Session | None = None,
    ) -> list[ReachedNode]:
        return self._walk_remote("descendants", node, depth, relations, session)

    def graph(
        self,
        node: Node,
        *,
        depth: int | None = None,
        relations: Collection[str] | None = None,
        session: Session | None = None,
    ) -> LineageGraph:
        _no_session(session)
        params = _walk_params(node, depth, relations)
        if params is None:
            return LineageGraph(node, depth, (), ())
        graph = LineageGraph.from_dict(self._http.get(f"{_LINEAGE}/graph", **params))
        return graph.named({})  # as embedded: wb.describe names the nodes

    def _walk_remote(
        self,
        direction: Literal["ancestors", "descendants"],
        node: Node,
        depth: int | None,
        relations: Collection[str] | None,
        session: Session | None,
    ) -> list[ReachedNode]:
        _no_session(session)
        params = _walk_params(node, depth, relations)
        if params is None:
            return []
        found = self._http.get(f"{_LINEAGE}/{direction}", **params)
        return decode_all(ReachedNode, found["items"])


def describe(connection: Connection, nodes: Collection[Node]) -> dict[Node, str]:
    """The server's readable name for each of ``nodes`` (``wb.describe`` of a remote workspace)."""
    wanted = list(dict.fromkeys(nodes))
    found: dict[Node, str] = {}
    for start in range(0, len(wanted), _NAMES_PER_REQUEST):
        batch = wanted[start : start + _NAMES_PER_REQUEST]
        answer = connection.get(f"{_LINEAGE}/names", node=[str(node) for node in batch])
        found.update(zip(batch, answer["names"], strict=True))
    return found


def _walk_params(
    node: Node, depth: int | None, relations: Collection[str] | None
) -> dict[str, Any] | None:
    """The query of a walk; None for a walk that reaches nothing (asked for no edges)."""
    if depth is not None and (isinstance(depth, bool) or depth < 0):
        raise ValidationError(f"depth must be a non-negative integer or None, not {depth!r}")
    chosen = [relations] if isinstance(relations, str) else relations
    if depth == 0 or (chosen is not None and not chosen):
        return None  # as embedded: no step taken; the server's query could not say so
    return {
        "node": str(node),
        "depth": depth,
        "relation": None if chosen is None else sorted(chosen),
    }


def _no_session(session: object) -> None:
    if session is not None:
        _refuse_session()


def _refuse_session() -> NoReturn:
    raise NotSupported("a remote workspace has no catalog session to share: call without session=")
