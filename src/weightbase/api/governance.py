"""Approvals and compliance: ``/api/v1/approvals`` and a model's ``/-/approval-policy``,
a version's ``/-/versions/{version}/compliance``.

Thin over ``wb.approvals`` and ``wb.compliance``: a request is made by the caller, a
decision is the caller's (the ``approve`` action), a policy is an admin's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from weightbase.api.auth import Principal, access
from weightbase.api.common import (
    API_PREFIX,
    MAX_LIMIT,
    Page,
    page,
    page_by_position,
    workspace,
)
from weightbase.governance.compliance import FairnessEvidence
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(prefix=API_PREFIX, tags=["governance"])

Wb = Annotated[Workspace, Depends(workspace)]
Reader = Depends(access())
Caller = Annotated[Principal | None, Depends(access())]
_POLICY = "/models/{model:entity_name}/-/approval-policy"
_COMPLIANCE = "/models/{model:entity_name}/-/versions/{version}/compliance"


class PolicyBody(BaseModel):
    """What to change in a model's approval policy (a field left out keeps its value)."""

    approvers: list[str] | None = None
    required_approvals: int | None = None
    require_approval_for_production: bool | None = None
    reason: str | None = None


class RequestBody(BaseModel):
    """Ask that a version (``name@ref``) be approved for ``target``."""

    version: str
    target: str = "production"
    comment: str | None = None


class DecisionBody(BaseModel):
    """An approver's decision on a request."""

    decision: Literal["approved", "rejected"]
    comment: str | None = None


class FairnessBody(BaseModel):
    """Predictions, true labels and each sample's group, aligned."""

    predictions: list[Any]
    labels: list[Any]
    groups: list[Any]


class ComplianceBody(BaseModel):
    """Policies to evaluate on the version (see docs/governance.md), and fairness evidence."""

    policies: Annotated[list[dict[str, Any]], Field(min_length=1)]
    fairness: FairnessBody | None = None


@router.get(_POLICY, dependencies=[Reader])
def get_policy(model: str, wb: Wb) -> dict[str, Any]:
    """A model's approval policy: approvers, how many must approve, whether production needs it."""
    return wb.approvals.policy(model).to_dict()


@router.put(_POLICY, dependencies=[Depends(access("admin"))])
def set_policy(model: str, body: PolicyBody, wb: Wb) -> dict[str, Any]:
    """Change a model's approval policy (admin)."""
    changes = body.model_dump(exclude={"reason"})
    return wb.approvals.set_policy(model, **changes, reason=body.reason).to_dict()


@router.get("/approvals", response_model=Page, dependencies=[Reader])
def list_requests(
    wb: Wb,
    model: str | None = None,
    status: Annotated[str | None, Query(description="pending, approved or rejected")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after: Annotated[int | None, Query(ge=1, description="the previous page's next")] = None,
) -> Page:
    """Approval requests, newest first: of one model and in one status when given."""
    found = wb.approvals.requests(model, status=status, limit=limit + 1, before_id=after)
    chunk = found[:limit]
    return page(chunk, chunk[-1].id if len(found) > limit else None)


@router.post("/approvals", status_code=201)
def request_approval(body: RequestBody, wb: Wb, caller: Caller) -> dict[str, Any]:
    """Ask for a version's approval; the caller is the requester (201)."""
    found = wb.approvals.request(
        body.version,
        target=body.target,
        comment=body.comment,
        requested_by=caller.user if caller else None,
    )
    return found.to_dict()


@router.get("/approvals/{request_id}", dependencies=[Reader])
def get_request(request_id: int, wb: Wb) -> dict[str, Any]:
    """An approval request and its decisions."""
    return wb.approvals.get(request_id).to_dict()


@router.post("/approvals/{request_id}/decisions")
def decide(
    request_id: int,
    body: DecisionBody,
    wb: Wb,
    caller: Annotated[Principal | None, Depends(access("approve"))],
) -> dict[str, Any]:
    """The caller's decision on a request (an approver the model's policy names)."""
    found = wb.approvals.decide(
        request_id, body.decision, comment=body.comment, approver=caller.user if caller else None
    )
    return found.to_dict()


@router.post(_COMPLIANCE, status_code=201, dependencies=[Depends(access())])
def check_compliance(model: str, version: str, body: ComplianceBody, wb: Wb) -> dict[str, Any]:
    """Evaluate policies on a version; the stored report, with its risk level (201)."""
    evidence = None
    if body.fairness is not None:
        evidence = FairnessEvidence(
            body.fairness.predictions, body.fairness.labels, body.fairness.groups
        )
    report = wb.compliance.check(f"{model}@{version}", body.policies, fairness=evidence)
    return report.to_dict()


@router.get(_COMPLIANCE, response_model=Page, dependencies=[Reader])
def compliance_history(
    model: str,
    version: str,
    wb: Wb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after: Annotated[int | None, Query(ge=0, description="the previous page's next")] = None,
) -> Page:
    """A version's compliance reports, oldest first, a page at a time."""
    return page_by_position(wb.compliance.history(f"{model}@{version}"), limit, after)
