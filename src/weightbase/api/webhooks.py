"""``/api/v1/webhooks``: subscriptions and their delivery log, for admins only.

A subscription's signing secret is in the answer to its ``POST`` and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, MAX_LIMIT, Page, page, page_by_id, workspace
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/webhooks", tags=["webhooks"], dependencies=[Depends(access("admin"))]
)

Wb = Annotated[Workspace, Depends(workspace)]


class WebhookBody(BaseModel):
    """A new subscription: ``event_types`` (``"*"`` for all) are POSTed to ``url``, signed."""

    url: str
    event_types: Annotated[list[str], Field(min_length=1)]
    description: str | None = None


@router.get("", response_model=Page)
def list_webhooks(
    wb: Wb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after: Annotated[int | None, Query(ge=0, description="the previous page's next")] = None,
) -> Page:
    """Subscriptions by id, a page at a time (secrets are never shown)."""
    return page_by_id(wb.webhooks.list(), limit, after)


@router.post("", status_code=201)
def subscribe(body: WebhookBody, wb: Wb) -> dict[str, Any]:
    """A new subscription, and its signing secret: shown here once, never again."""
    hook, secret = wb.webhooks.subscribe(body.url, body.event_types, description=body.description)
    return {**hook.to_dict(), "secret": secret}


@router.get("/{webhook_id}")
def get_webhook(webhook_id: int, wb: Wb) -> dict[str, Any]:
    """A subscription."""
    return wb.webhooks.get(webhook_id).to_dict()


@router.delete("/{webhook_id}", status_code=204)
def remove(webhook_id: int, wb: Wb, reason: str | None = None) -> Response:
    """Delete a subscription and its delivery log (204)."""
    wb.webhooks.remove(webhook_id, reason=reason)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=Page)
def deliveries(
    webhook_id: int,
    wb: Wb,
    status: Annotated[str | None, Query(description="pending, delivered or failed")] = None,
    limit: Annotated[int, Query(ge=1, le=999)] = 100,
    after: Annotated[int | None, Query(ge=1, description="the previous page's next")] = None,
) -> Page:
    """A subscription's deliveries, newest first: status, attempts, last answer, latency."""
    found = wb.webhooks.deliveries(webhook_id, status=status, limit=limit + 1, before_id=after)
    chunk = found[:limit]
    return page(chunk, chunk[-1].id if len(found) > limit else None)
