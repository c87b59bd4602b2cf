"""The records of ``wb.reactors``: a reactor with its members and interaction graph, its
learned combiner, and one fusion operation.

Frozen and checked when built; ``to_dict`` gives JSON-ready values and ``from_dict`` reads
them back (the remote client rebuilds what the server answers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from weightbase.errors import ValidationError

__all__ = [
    "OUTPUT_KINDS",
    "RELATIONS",
    "ROLES",
    "STRATEGIES",
    "Edge",
    "FusionOperation",
    "Member",
    "MemberAnswer",
    "Reactor",
    "Stacker",
]

#: How a reactor combines its members' answers.
STRATEGIES = ("weighted_average", "majority_vote", "stacking", "parallel", "cascade")
#: A member's part: ``primary`` answers, ``secondary`` adds to it, ``validator`` checks it.
ROLES = ("primary", "secondary", "validator")
#: How one member's answer bears on another's, in the interaction graph.
RELATIONS = ("feeds_into", "validates", "augments")
#: What a member's output rows are: ``logits`` (softmax gives probabilities), ``probabilities``
#: (used as they are) or ``embeddings`` (vectors: averaged, never voted on).
OUTPUT_KINDS = ("logits", "probabilities", "embeddings")

Strategy = Literal["weighted_average", "majority_vote", "stacking", "parallel", "cascade"]

_MAX_NAME = 255


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ValidationError(f"not a time: {value!r}") from exc


def _one_of(value: Any, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise ValidationError(
            f"{what} must be one of {', '.join(choices)}, not {value!r}", field=what
        )


@dataclass(frozen=True)
class Member:
    """A model in a reactor: its ``ref`` (``NAME@VERSION``, ``NAME@ALIAS``, or the model
    version a deployment serves), role, fusion weight, priority (lower runs first: a
    cascade's cheapest member has the lowest) and what its outputs are."""

    ref: str
    role: str = "primary"
    weight: float = 1.0
    priority: int = 0
    output: str = "logits"
    deployment_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.ref, str) or "@" not in self.ref or len(self.ref) > _MAX_NAME:
            raise ValidationError(
                f"a member is a model ref NAME@VERSION or NAME@ALIAS, not {self.ref!r}",
                field="members",
            )
        _one_of(self.role, ROLES, "role")
        _one_of(self.output, OUTPUT_KINDS, "output")
        if (
            isinstance(self.weight, bool)
            or not isinstance(self.weight, int | float)
            or not math.isfinite(self.weight)
            or self.weight < 0
        ):
            raise ValidationError(
                f"member {self.ref}: a weight is a finite number ≥ 0, not {self.weight!r}",
                field="weight",
            )
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise ValidationError(
                f"member {self.ref}: a priority is a whole number, not {self.priority!r}",
                field="priority",
            )
        object.__setattr__(self, "weight", float(self.weight))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "role": self.role,
            "weight": self.weight,
            "priority": self.priority,
            "output": self.output,
            "deployment_id": self.deployment_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Member:
        if not isinstance(data, Mapping) or "ref" not in data:
            raise ValidationError(
                f"a member is a mapping with a ref, not {data!r}", field="members"
            )
        return cls(
            ref=data["ref"],
            role=data.get("role", "primary"),
            weight=data.get("weight", 1.0),
            priority=data.get("priority", 0),
            output=data.get("output", "logits"),
            deployment_id=data.get("deployment_id"),
        )


@dataclass(frozen=True)
class Edge:
    """An arrow of the interaction graph: ``source``'s answer bears on ``target``'s."""

    source: str
    target: str
    relation: str = "feeds_into"

    def __post_init__(self) -> None:
        _one_of(self.relation, RELATIONS, "relation")
        for end in (self.source, self.target):
            if not isinstance(end, str) or not end:
                raise ValidationError(f"an edge joins two member refs, not {end!r}", field="edges")
        if self.source == self.target:
            raise ValidationError(f"an edge from {self.source} to itself", field="edges")

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "relation": self.relation}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Edge:
        try:
            return cls(data["source"], data["target"], data.get("relation", "feeds_into"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValidationError(f"not an edge: {data!r}", field="edges") from exc


@dataclass(frozen=True)
class Stacker:
    """A stacking reactor's learned combiner: a logistic regression over the members'
    probabilities, its coefficients kept in the tensor store as ``snapshot_id``."""

    snapshot_id: str
    classes: tuple[int, ...]
    members: tuple[str, ...]
    samples: int
    train_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "classes": list(self.classes),
            "members": list(self.members),
            "samples": self.samples,
            "train_accuracy": self.train_accuracy,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stacker:
        return cls(
            snapshot_id=str(data["snapshot_id"]),
            classes=tuple(int(item) for item in data["classes"]),
            members=tuple(str(item) for item in data["members"]),
            samples=int(data["samples"]),
            train_accuracy=float(data["train_accuracy"]),
        )


@dataclass(frozen=True)
class Reactor:
    """A fusion reactor: members (each a served model), how their answers combine, the
    interaction graph between them, a cascade's threshold and a stacking combiner."""

    id: str
    name: str
    strategy: str
    members: tuple[Member, ...]
    edges: tuple[Edge, ...]
    created: datetime
    updated: datetime
    threshold: float | None = None
    stacker: Stacker | None = None
    description: str | None = None
    created_by: str | None = None

    def member(self, ref: str) -> Member:
        """The member named ``ref``."""
        for found in self.members:
            if found.ref == ref:
                return found
        raise ValidationError(f"reactor {self.name!r} has no member {ref!r}", field="member")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "strategy": self.strategy,
            "members": [item.to_dict() for item in self.members],
            "edges": [item.to_dict() for item in self.edges],
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
            "threshold": self.threshold,
            "stacker": None if self.stacker is None else self.stacker.to_dict(),
            "description": self.description,
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reactor:
        stacker = data.get("stacker")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            strategy=str(data["strategy"]),
            members=tuple(Member.from_dict(item) for item in data["members"]),
            edges=tuple(Edge.from_dict(item) for item in data["edges"]),
            created=_when(data["created"]),
            updated=_when(data["updated"]),
            threshold=data.get("threshold"),
            stacker=None if stacker is None else Stacker.from_dict(stacker),
            description=data.get("description"),
            created_by=data.get("created_by"),
        )


@dataclass(frozen=True)
class MemberAnswer:
    """What one member answered in an operation: how many rows it saw, each row's argmax
    and confidence (max probability; ``None`` for embeddings), and how long it took."""

    rows: int
    latency_ms: float
    argmax: tuple[int, ...] = ()
    confidence: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "latency_ms": self.latency_ms,
            "argmax": list(self.argmax),
            "confidence": list(self.confidence),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemberAnswer:
        return cls(
            rows=int(data["rows"]),
            latency_ms=float(data["latency_ms"]),
            argmax=tuple(int(item) for item in data.get("argmax", ())),
            confidence=tuple(float(item) for item in data.get("confidence", ())),
        )


@dataclass(frozen=True)
class FusionOperation:
    """One batch through a reactor: the members that answered and their answers, the fused
    answer per input (argmax and confidence), how many inputs escalated past the first
    member of a cascade, and the latency of it all."""

    reactor: str
    at: datetime
    batch_size: int
    members: Mapping[str, MemberAnswer]
    argmax: tuple[int, ...]
    confidence: tuple[float, ...]
    escalated: int
    latency_ms: float
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", MappingProxyType(dict(self.members)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reactor": self.reactor,
            "at": self.at.isoformat(),
            "batch_size": self.batch_size,
            "members": {name: item.to_dict() for name, item in self.members.items()},
            "argmax": list(self.argmax),
            "confidence": list(self.confidence),
            "escalated": self.escalated,
            "latency_ms": self.latency_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FusionOperation:
        try:
            return cls(
                id=data.get("id"),
                reactor=str(data["reactor"]),
                at=_when(data["at"]),
                batch_size=int(data["batch_size"]),
                members={
                    str(name): MemberAnswer.from_dict(item)
                    for name, item in data["members"].items()
                },
                argmax=tuple(int(item) for item in data.get("argmax", ())),
                confidence=tuple(float(item) for item in data.get("confidence", ())),
                escalated=int(data["escalated"]),
                latency_ms=float(data["latency_ms"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(f"not a fusion operation: {exc}", field="operations") from exc
