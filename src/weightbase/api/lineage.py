"""``/api/v1/lineage``: the lineage graph from any node, its edges, and names for its nodes.

A node travels as ``kind:id`` text in a query (``node=dataset_version:2``) and
as ``{"kind", "id"}`` in a body. Walks answer whole, nearest first: lineage is
a neighbourhood, not a log, so it is not paged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, workspace
from weightbase.lineage import Node, ReachedNode
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(
    prefix=API_PREFIX + "/lineage", tags=["lineage"], dependencies=[Depends(access())]
)

Wb = Annotated[Workspace, Depends(workspace)]
NodeQuery = Annotated[str, Query(description="the node as kind:id, such as model_version:7")]
DepthQuery = Annotated[int | None, Query(ge=1, description="at most this many edges away")]
RelationsQuery = Annotated[
    list[str] | None, Query(alias="relation", description="follow only these relations")
]
#: The most nodes one ``/lineage/names`` request names (each is one query parameter).
MAX_NAMES = 100


class NodeBody(BaseModel):
    """A lineage node: its kind (``model_version``, ``run``…) and its id."""

    kind: str
    id: str

    def node(self) -> Node:
        return Node(self.kind, self.id)


class EdgeBody(BaseModel):
    """The edge ``source <relation> target``."""

    source: NodeBody
    target: NodeBody
    relation: str


@router.get("/graph")
def graph(
    node: NodeQuery, wb: Wb, depth: DepthQuery = None, relations: RelationsQuery = None
) -> dict[str, Any]:
    """Ancestors and descendants of ``node``, nearest first, each named."""
    found = wb.lineage.graph(Node.parse(node), depth=depth, relations=relations)
    return found.named(wb.describe(found.nodes)).to_dict()


@router.get("/ancestors")
def ancestors(
    node: NodeQuery, wb: Wb, depth: DepthQuery = None, relations: RelationsQuery = None
) -> dict[str, list[dict[str, Any]]]:
    """What ``node`` came from, nearest first, each named."""
    start = Node.parse(node)
    return _named(wb, wb.lineage.ancestors(start, depth=depth, relations=relations))


@router.get("/descendants")
def descendants(
    node: NodeQuery, wb: Wb, depth: DepthQuery = None, relations: RelationsQuery = None
) -> dict[str, list[dict[str, Any]]]:
    """What came from ``node``, nearest first, each named."""
    start = Node.parse(node)
    return _named(wb, wb.lineage.descendants(start, depth=depth, relations=relations))


@router.get("/edges")
def edges(
    node: NodeQuery,
    wb: Wb,
    direction: Literal["out", "in", "both"] = "both",
    relation: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The edges at ``node``: ``out`` where it is the source, ``in`` the target."""
    found = wb.lineage.edges(Node.parse(node), direction=direction, relation=relation)
    return {"items": [edge.to_dict() for edge in found]}


@router.post("/edges", status_code=status.HTTP_201_CREATED)
def add_edge(body: EdgeBody, wb: Wb) -> dict[str, Any]:
    """Record ``source <relation> target`` (an edge that exists is returned as it is)."""
    return wb.lineage.add_edge(body.source.node(), body.target.node(), body.relation).to_dict()


@router.delete("/edges")
def remove_edge(
    source: NodeQuery, target: NodeQuery, relation: Annotated[str, Query()], wb: Wb
) -> dict[str, Any]:
    """Delete the edge ``source <relation> target``; 404 if there is none."""
    removed = wb.lineage.remove_edge(Node.parse(source), Node.parse(target), relation)
    return removed.to_dict()


@router.get("/relations")
def relations(wb: Wb) -> dict[str, list[str]]:
    """The relation names the server's edges may carry."""
    return {"relations": sorted(wb.lineage.relations)}


@router.get("/names")
def node_names(
    wb: Wb,
    nodes: Annotated[
        list[str], Query(alias="node", max_length=MAX_NAMES, description="kind:id, repeated")
    ],
) -> dict[str, list[str]]:
    """A readable name per node, in order: ``name@version``, ``run 12``, else ``kind:id``."""
    nodes_asked = [Node.parse(text) for text in nodes]
    found = wb.describe(nodes_asked)
    return {"names": [found.get(node, str(node)) for node in nodes_asked]}


def _named(wb: Workspace, reached: list[ReachedNode]) -> dict[str, list[dict[str, Any]]]:
    names = wb.describe([*(item.node for item in reached), *(item.via for item in reached)])
    return {
        "items": [
            {**item.to_dict(), "name": names.get(item.node), "via_name": names.get(item.via)}
            for item in reached
        ]
    }
