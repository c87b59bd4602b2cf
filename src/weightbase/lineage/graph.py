"""A node's neighbourhood in the lineage graph: what it came from and what came from it.

:class:`LineageGraph` is what ``weightbase lineage NODE`` shows and what the
server's ``/api/v1/lineage/graph`` route answers; :func:`to_dot` draws it for Graphviz.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from weightbase.errors import ValidationError
from weightbase.lineage.records import Node, ReachedNode

__all__ = ["LineageGraph", "to_dot"]


@dataclass(frozen=True, slots=True)
class LineageGraph:
    """The walks up and down from ``start``, at most ``depth`` edges each way (None: all).

    ``names`` holds a readable name per node (``bert@1.0.0``, ``run 12``) once
    :meth:`named` has given them; a node without one is shown as ``kind:id``.
    """

    start: Node
    depth: int | None
    ancestors: tuple[ReachedNode, ...]
    descendants: tuple[ReachedNode, ...]
    names: Mapping[Node, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @property
    def nodes(self) -> list[Node]:
        """The start, then every node reached, each once."""
        found = {self.start: None}
        for item in (*self.ancestors, *self.descendants):
            found.setdefault(item.node, None)
            found.setdefault(item.via, None)
        return list(found)

    @property
    def edges(self) -> list[tuple[Node, str, Node]]:
        """The edges the walks went along, each as ``(source, relation, target)``.

        An ancestor was reached from ``via``, its source; a descendant is itself
        the source of the edge to ``via``.
        """
        found: dict[tuple[Node, str, Node], None] = {}
        for item in self.ancestors:
            found.setdefault((item.via, item.relation, item.node), None)
        for item in self.descendants:
            found.setdefault((item.node, item.relation, item.via), None)
        return list(found)

    def name(self, node: Node) -> str:
        """The readable name of ``node``, else ``kind:id``."""
        return self.names.get(node, str(node))

    def named(self, names: Mapping[Node, str]) -> LineageGraph:
        """This graph with ``names`` for its nodes."""
        return replace(self, names=MappingProxyType(dict(names)))

    def to_dict(self) -> dict[str, Any]:
        def reached(item: ReachedNode) -> dict[str, Any]:
            return {**item.to_dict(), "name": self.name(item.node), "via_name": self.name(item.via)}

        return {
            "node": self.start.to_dict(),
            "name": self.name(self.start),
            "depth": self.depth,
            "ancestors": [reached(item) for item in self.ancestors],
            "descendants": [reached(item) for item in self.descendants],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineageGraph:
        """The graph from its :meth:`to_dict` form (what the server sends)."""
        try:
            start = _node(data["node"])
            names = {start: str(data.get("name") or start)}
            walks: list[tuple[ReachedNode, ...]] = []
            for direction in ("ancestors", "descendants"):
                found = []
                for item in data[direction]:
                    node, via = _node(item["node"]), _node(item["via"])
                    names.setdefault(node, str(item.get("name") or node))
                    names.setdefault(via, str(item.get("via_name") or via))
                    found.append(ReachedNode(node, int(item["distance"]), item["relation"], via))
                walks.append(tuple(found))
            depth = data.get("depth")
            return cls(
                start,
                None if depth is None else int(depth),
                walks[0],
                walks[1],
                MappingProxyType(names),
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, ValidationError):
                raise
            raise ValidationError(f"not a lineage graph: {error!r}") from error


def _node(data: Mapping[str, Any]) -> Node:
    return Node(str(data["kind"]), str(data["id"]))


# -- Graphviz ---------------------------------------------------------------------------------


def to_dot(graph: LineageGraph) -> str:
    """The graph in Graphviz's DOT language (``dot -Tsvg`` draws it).

    Each edge points as its sentence reads, source to target
    (``model_version:7 -> dataset_version:2 [label="trained_on"]``); with
    ``rankdir=BT`` ancestors are drawn above. Node ids are the ``kind:id`` of
    each node and labels their names, both quoted, so any id is safe.
    """
    lines = [
        "digraph lineage {",
        "  rankdir=BT;",
        '  node [shape=box, style="rounded"];',
    ]
    for node in graph.nodes:
        extra = ', style="rounded,bold", penwidth=2' if node == graph.start else ""
        label = f"{graph.name(node)}\n{node.kind}"
        lines.append(f"  {_quoted(str(node))} [label={_quoted(label)}{extra}];")
    for source, relation, target in graph.edges:
        lines.append(
            f"  {_quoted(str(source))} -> {_quoted(str(target))} [label={_quoted(relation)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    """``text`` as a DOT quoted string: backslashes and quotes escaped, line breaks as ``\\n``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")
    return f'"{escaped}"'
