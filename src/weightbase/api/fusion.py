"""``/api/v1/reactors``: fusion reactors (ensembles, cascades) over ``wb.reactors``.

``POST /reactors`` creates one and ``GET /reactors`` lists them; per reactor (its name or
id): ``GET`` reads it, ``POST …/stacker`` fits a stacking reactor's combiner on validation
inputs and labels, ``POST …/operations`` stores a batch of fusion operations (what a
remote server's reactor logs) and ``GET …/operations`` reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, Page, workspace
from weightbase.serving.fusion.records import FusionOperation
from weightbase.serving.fusion.service import MAX_OPERATIONS_READ
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/reactors", tags=["reactors"], dependencies=[Depends(access())]
)

Wb = Annotated[Workspace, Depends(workspace)]


class MemberBody(BaseModel):
    """A member: a model ref (or deployment id), its role, weight, priority and outputs."""

    ref: str
    role: str = "primary"
    weight: float = 1.0
    priority: int = 0
    output: str = "logits"


class EdgeBody(BaseModel):
    """An arrow of the interaction graph between two members."""

    source: str
    target: str
    relation: str = "feeds_into"


class CreateBody(BaseModel):
    """A new reactor: members, strategy, interaction graph and a cascade's threshold."""

    name: str
    members: list[MemberBody]
    strategy: str = "weighted_average"
    edges: list[EdgeBody] = []
    threshold: float | None = None
    description: str | None = None


class StackerBody(BaseModel):
    """Validation inputs (one row of numbers each) and their class labels."""

    inputs: list[list[float]]
    labels: list[int]


class OperationsBody(BaseModel):
    """Fusion operations, as ``FusionOperation.to_dict`` writes them, stored all or none."""

    operations: list[dict[str, Any]]


@router.post("", status_code=201)
def create(body: CreateBody, wb: Wb) -> dict[str, Any]:
    """Create a reactor."""
    created = wb.reactors.create(
        body.name,
        members=[member.model_dump() for member in body.members],
        strategy=body.strategy,
        edges=[edge.model_dump() for edge in body.edges],
        threshold=body.threshold,
        description=body.description,
    )
    return created.to_dict()


@router.get("", response_model=Page)
def list_reactors(wb: Wb) -> Page:
    """Every reactor, by name."""
    return Page(items=[item.to_dict() for item in wb.reactors.list()], next=None)


@router.get("/{reactor}")
def get(reactor: str, wb: Wb) -> dict[str, Any]:
    """A reactor by name or id."""
    return wb.reactors.get(reactor).to_dict()


@router.post("/{reactor}/stacker")
def fit_stacker(reactor: str, body: StackerBody, wb: Wb) -> dict[str, Any]:
    """Fit a stacking reactor's combiner on the members' outputs for ``inputs``."""
    return wb.reactors.fit_stacker(reactor, body.inputs, body.labels).to_dict()


@router.post("/{reactor}/operations", status_code=201)
def record_operations(reactor: str, body: OperationsBody, wb: Wb) -> dict[str, int]:
    """Store a batch of fusion operations."""
    operations = [FusionOperation.from_dict(item) for item in body.operations]
    return {"recorded": wb.reactors.record_operations(reactor, operations)}


@router.get("/{reactor}/operations", response_model=Page)
def operations(
    reactor: str,
    wb: Wb,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_OPERATIONS_READ)] = 100,
) -> Page:
    """The reactor's fusion operations at or after ``since``, oldest first."""
    found = wb.reactors.operations(reactor, since=since, limit=limit)
    return Page(items=[item.to_dict() for item in found], next=None)
