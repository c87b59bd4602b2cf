"""``/api/v1/audit`` and ``/api/v1/events``: the audit log and the event log, paged by id.

Both are append-only and ordered by id, so ``since_id`` (the last id seen,
which every page returns as ``next``) follows them without gaps or repeats.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, MAX_LIMIT, Page, page, workspace
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(prefix=API_PREFIX, tags=["audit"], dependencies=[Depends(access())])

Wb = Annotated[Workspace, Depends(workspace)]


@router.get("/audit", response_model=Page)
def audit_entries(
    wb: Wb,
    entity_kind: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    since_id: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> Page:
    """Audit entries matching every filter given, oldest first, after ``since_id``."""
    found = wb.audit.entries(
        entity_kind,
        entity_id,
        action=action,
        actor=actor,
        since_id=since_id,
        limit=limit,
    )
    return page(found, found[-1].id if len(found) == limit else None)


@router.get("/events", response_model=Page)
def events(
    wb: Wb,
    type: str | None = None,
    since_id: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> Page:
    """Persisted events, oldest first: of ``type`` if given, after ``since_id``."""
    found = wb.events.history(type, since_id=since_id, limit=limit)
    return page(found, found[-1].id if len(found) == limit else None)
