"""Rows of ``wb.reactors``: finding a reactor, its record, its operations, and the
parsing of what callers hand in (members, edges), in the caller's transaction."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weightbase.catalog.schema import ReactorOperationRow, ReactorRow
from weightbase.errors import NotFound, ValidationError
from weightbase.serving.fusion.records import (
    Edge,
    FusionOperation,
    Member,
    MemberAnswer,
    Reactor,
    Stacker,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "EdgeLike",
    "MemberLike",
    "check_name",
    "edge_of",
    "find_row",
    "member_of",
    "operation_record",
    "operation_row",
    "reactor_record",
]

#: A member as callers give it: a ref or deployment id, the record, or its ``to_dict`` form.
MemberLike = str | Member | Mapping[str, Any]
#: An edge: the record, its ``to_dict`` form, or ``(source, target, relation)``.
EdgeLike = Edge | Mapping[str, Any] | tuple[str, str, str]

# served as /v2/models/NAME: a name that needs no escaping in a URL path or a ref
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            f"a reactor name is 1 to 128 letters, digits, '.', '_' or '-', not {name!r}",
            field="name",
        )
    return name


def member_of(value: MemberLike) -> Member | str:
    """The member ``value`` names, or the deployment id to resolve (a ref without ``@``)."""
    if isinstance(value, Member):
        return value
    if isinstance(value, str):
        return Member(value) if "@" in value else value
    if isinstance(value, Mapping):
        ref = value.get("ref")
        if isinstance(ref, str) and "@" not in ref:
            return ref  # a deployment id: its other fields are read once it is resolved
        return Member.from_dict(value)
    raise ValidationError(
        f"a member is a model ref, a deployment id or a mapping, not {value!r}", field="members"
    )


def edge_of(value: EdgeLike) -> Edge:
    if isinstance(value, Edge):
        return value
    if isinstance(value, Mapping):
        return Edge.from_dict(value)
    if isinstance(value, tuple | list) and len(value) in (2, 3):
        return Edge(*value)
    raise ValidationError(
        f"an edge is (source, target, relation) or a mapping, not {value!r}", field="edges"
    )


def find_row(session: Session, reactor: str, *, lock: bool = False) -> ReactorRow:
    """The reactor named ``reactor`` (or with that id); ``NotFound`` otherwise."""
    if not isinstance(reactor, str) or not reactor:
        raise ValidationError(f"a reactor is named by its name or id, not {reactor!r}")
    query = select(ReactorRow).where((ReactorRow.name == reactor) | (ReactorRow.id == reactor))
    row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no reactor {reactor!r}", reactor=reactor)
    return row


def reactor_record(row: ReactorRow) -> Reactor:
    stacker = None
    if row.stacker_snapshot_id is not None and row.stacker is not None:
        stacker = Stacker.from_dict({**row.stacker, "snapshot_id": row.stacker_snapshot_id})
    return Reactor(
        id=row.id,
        name=row.name,
        strategy=row.strategy,
        members=tuple(Member.from_dict(item) for item in row.members),
        edges=tuple(Edge.from_dict(item) for item in row.edges),
        created=row.created_at,
        updated=row.updated_at,
        threshold=row.threshold,
        stacker=stacker,
        description=row.description,
        created_by=row.created_by,
    )


def operation_row(reactor_id: str, operation: FusionOperation) -> ReactorOperationRow:
    return ReactorOperationRow(
        reactor_id=reactor_id,
        at=operation.at,
        batch_size=operation.batch_size,
        members={name: item.to_dict() for name, item in operation.members.items()},
        result={"argmax": list(operation.argmax), "confidence": list(operation.confidence)},
        escalated=operation.escalated,
        latency_ms=operation.latency_ms,
    )


def operation_record(row: ReactorOperationRow, reactor: str) -> FusionOperation:
    return FusionOperation(
        id=row.id,
        reactor=reactor,
        at=row.at,
        batch_size=row.batch_size,
        members={name: MemberAnswer.from_dict(item) for name, item in row.members.items()},
        argmax=tuple(int(item) for item in row.result.get("argmax", ())),
        confidence=tuple(float(item) for item in row.result.get("confidence", ())),
        escalated=row.escalated,
        latency_ms=row.latency_ms,
    )
