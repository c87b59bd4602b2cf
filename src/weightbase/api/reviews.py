"""Ethics reviews and explanations of a version: ``…/-/versions/{version}/ethics-reviews``,
``…/-/versions/{version}/explanation``, and the default ``/ethics/questionnaire``.

Thin over ``wb.ethics`` and ``wb.explanations``: a review is signed off by the
caller, who needs the ``approve`` action (an approver or an admin); anyone who
may read reads. Explanations are computed where the model runs (``wb.explanations``
in Python); the API reads them, and says when a version has none.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from weightbase.api.auth import Principal, access
from weightbase.api.common import API_PREFIX, MAX_LIMIT, Page, page_by_id, workspace
from weightbase.governance.ethics import DEFAULT_QUESTIONNAIRE
from weightbase.governance.explain import NOT_AVAILABLE
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(prefix=API_PREFIX, tags=["governance"])

Wb = Annotated[Workspace, Depends(workspace)]
Reader = Depends(access())
_VERSION = "/models/{model:entity_name}/-/versions/{version}"


class ReviewBody(BaseModel):
    """Answers to a questionnaire (the default unless one is given), and the decision."""

    answers: dict[str, Any]
    decision: Literal["approved", "concerns", "rejected"]
    notes: str | None = None
    questionnaire: dict[str, Any] | None = None


@router.get("/ethics/questionnaire", dependencies=[Reader])
def questionnaire() -> dict[str, Any]:
    """The default ethics questionnaire: each question's id, text and whether it is required."""
    return {**DEFAULT_QUESTIONNAIRE.to_dict(), "digest": DEFAULT_QUESTIONNAIRE.digest}


@router.get(f"{_VERSION}/ethics-reviews", response_model=Page, dependencies=[Reader])
def reviews(
    model: str,
    version: str,
    wb: Wb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after: Annotated[int | None, Query(ge=0, description="the previous page's next")] = None,
) -> Page:
    """A version's ethics reviews, oldest first, a page at a time (500 if one was edited
    after sign-off)."""
    return page_by_id(wb.ethics.reviews(f"{model}@{version}"), limit, after)


@router.post(f"{_VERSION}/ethics-reviews", status_code=201)
def submit_review(
    model: str,
    version: str,
    body: ReviewBody,
    wb: Wb,
    caller: Annotated[Principal | None, Depends(access("approve"))],
) -> dict[str, Any]:
    """Sign off the caller's review of a version (an approver or admin); the review (201)."""
    review = wb.ethics.submit(
        f"{model}@{version}",
        body.answers,
        decision=body.decision,
        reviewer=caller.user if caller else None,
        notes=body.notes,
        questionnaire=body.questionnaire,
    )
    return review.to_dict()


@router.get(f"{_VERSION}/explanation", dependencies=[Reader])
def explanation(model: str, version: str, wb: Wb) -> dict[str, Any]:
    """A version's latest feature attributions, or ``available: false`` and why."""
    resolved = wb.models.version(f"{model}@{version}")
    found = wb.explanations.get(resolved)
    if found is None:
        return {
            "model": resolved.model,
            "version": resolved.version,
            "available": False,
            "reason": NOT_AVAILABLE,
        }
    return found.to_dict()
