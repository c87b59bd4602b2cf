"""The records of the lineage graph: nodes, edges, and the nodes a walk reaches."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weightbase.errors import ValidationError

__all__ = ["LineageEdge", "Node", "ReachedNode"]

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """Anything lineage can point at: a ``kind`` (``model_version``, ``run``…) and an id."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not _KIND.match(self.kind):
            raise ValidationError(
                f"invalid node kind {self.kind!r}: lower-case letters, digits and _, "
                "starting with a letter, at most 64 characters",
                kind=self.kind,
            )
        if not isinstance(self.id, str) or not self.id or len(self.id) > 255:
            raise ValidationError(
                f"invalid node id {self.id!r}: a string of 1 to 255 characters", id=self.id
            )

    @classmethod
    def parse(cls, text: str) -> Node:
        """``"model_version:42"`` → ``Node("model_version", "42")``."""
        kind, sep, node_id = text.partition(":")
        if not sep:
            raise ValidationError(f"not a lineage node {text!r}: expected kind:id")
        return cls(kind, node_id)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def row_id(self) -> int | None:
        """The id as a catalog row id (ASCII digits, 1 to 2**63 - 1), else None."""
        if not (self.id.isascii() and self.id.isdigit()):
            return None
        value = int(self.id)
        return value if 0 < value < 2**63 else None

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id}


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """``source <relation> target``, e.g. ``model_version:7 fine_tuned_from model_version:3``."""

    source: Node
    target: Node
    relation: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
            "relation": self.relation,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ReachedNode:
    """A node found by walking the graph from a start node.

    ``distance`` is the number of edges on a shortest path to it; ``relation`` and
    ``via`` describe the last edge of that path (``via`` is the node one step
    closer to the start, which is the start itself at distance 1).
    """

    node: Node
    distance: int
    relation: str
    via: Node

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node.to_dict(),
            "distance": self.distance,
            "relation": self.relation,
            "via": self.via.to_dict(),
        }
