"""``/api/v1/ab-tests``: seed 003's A/B testing endpoints over ``wb.abtests``.

``POST /ab-tests`` starts a test and ``GET /ab-tests`` lists them; per test (its id, or
the name of a running one): ``GET`` reads it, ``POST …/assign`` answers a unit's variant,
``POST …/outcomes`` adds a batch of outcomes, ``GET …/results`` analyses them, ``POST
…/weights`` reweights, ``POST …/stop`` ends it and ``POST …/promote`` moves production.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, Page, workspace
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/ab-tests", tags=["ab-tests"], dependencies=[Depends(access())]
)

Wb = Annotated[Workspace, Depends(workspace)]


class MetricBody(BaseModel):
    """A guardrail metric."""

    name: str
    kind: str = "continuous"
    higher_is_better: bool = True


class CreateBody(BaseModel):
    """A new test: variants (model refs or deployment ids; the first is control) and weights,
    the primary metric, guardrails, the planned size and the salt."""

    name: str
    variants: list[str]
    weights: list[float] | None = None
    metric: str = "conversion"
    kind: str = "binary"
    higher_is_better: bool = True
    guardrails: list[MetricBody] = []
    planned_units: int | None = None
    salt: str | None = None
    description: str | None = None


class AssignBody(BaseModel):
    """The unit (user, session, request) to assign."""

    unit_id: Annotated[str, Field(min_length=1)]


class OutcomeBody(BaseModel):
    """One outcome: of a ``unit_id`` (assigned by the server), of a ``variant``, or of a
    ``key`` read as either (a variant where one has that name)."""

    unit_id: str | None = None
    variant: str | None = None
    key: str | None = None
    metric: str
    value: float


class OutcomesBody(BaseModel):
    """A batch of outcomes, counted all or none."""

    outcomes: list[OutcomeBody]


class WeightsBody(BaseModel):
    """New traffic weights, one per variant."""

    weights: list[float]
    reason: str | None = None


class StopBody(BaseModel):
    """The decision that ends the test, why, and the winner if one."""

    decision: str
    reason: str | None = None
    winner: str | None = None


class PromoteBody(BaseModel):
    """The variant to promote (default: the results' winner), and why."""

    variant: str | None = None
    reason: str | None = None


@router.post("", status_code=201)
def create(body: CreateBody, wb: Wb) -> dict[str, Any]:
    """Start a test."""
    created = wb.abtests.create(
        body.name,
        variants=body.variants,
        weights=body.weights,
        metric=body.metric,
        kind=body.kind,
        higher_is_better=body.higher_is_better,
        guardrails=[guardrail.model_dump() for guardrail in body.guardrails],
        planned_units=body.planned_units,
        salt=body.salt,
        description=body.description,
    )
    return created.to_dict()


@router.get("", response_model=Page)
def list_tests(wb: Wb, status: str | None = None) -> Page:
    """Tests, newest first; only ``running`` or ``stopped`` ones where asked."""
    return Page(items=[test.to_dict() for test in wb.abtests.list(status=status)], next=None)


@router.get("/{test}")
def get(test: str, wb: Wb) -> dict[str, Any]:
    """A test by id, or the running (else latest) test of that name."""
    return wb.abtests.get(test).to_dict()


@router.get("/{test}/allocation")
def allocation(test: str, wb: Wb) -> dict[str, Any]:
    """The test and its bucket allocation, for servers that assign units themselves."""
    found, allocated = wb.abtests.allocation(test)
    return {"test": found.to_dict(), "allocation": allocated.to_dict()}


@router.post("/{test}/assign")
def assign(test: str, body: AssignBody, wb: Wb) -> dict[str, str]:
    """The unit's variant: the same on every call."""
    return {"unit_id": body.unit_id, "variant": wb.abtests.assign(test, body.unit_id)}


@router.post("/{test}/outcomes", status_code=201)
def outcomes(test: str, body: OutcomesBody, wb: Wb) -> dict[str, int]:
    """Add a batch of outcomes to the test's sums; the answer counts those counted."""
    items = [item.model_dump(exclude_none=True) for item in body.outcomes]
    return {"recorded": wb.abtests.record(test, items)}


@router.get("/{test}/results")
def results(test: str, wb: Wb) -> dict[str, Any]:
    """Per-variant statistics, effects, Bayesian and sequential summaries, the sample-ratio
    check, power, guardrails and the recommendation."""
    return wb.abtests.results(test).to_dict()


@router.post("/{test}/weights")
def weights(test: str, body: WeightsBody, wb: Wb) -> dict[str, Any]:
    """Reweight a running test, keeping assigned units where the weights allow."""
    return wb.abtests.reweight(test, body.weights, reason=body.reason).to_dict()


@router.post("/{test}/stop")
def stop(test: str, body: StopBody, wb: Wb) -> dict[str, Any]:
    """End a running test with a decision."""
    return wb.abtests.stop(
        test, decision=body.decision, reason=body.reason, winner=body.winner
    ).to_dict()


@router.post("/{test}/promote")
def promote(test: str, body: PromoteBody, wb: Wb) -> dict[str, Any]:
    """Move the winner's model's production alias to it (governance may refuse)."""
    return wb.abtests.promote(test, body.variant, reason=body.reason).to_dict()
