"""``/api/v1/inference``: what inference servers recorded, over ``wb.inference``.

``POST /inference/records`` takes a server's windows of metrics and its sessions
(what ``weightbase serve`` sends every ``metricsInterval`` when its workspace is this
server); ``GET /inference/metrics`` and ``GET /inference/sessions`` read them per model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, Page, workspace
from weightbase.serving.inference_records import InferenceSession, InferenceWindow
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/inference", tags=["inference"], dependencies=[Depends(access())]
)

Wb = Annotated[Workspace, Depends(workspace)]


class RecordsBody(BaseModel):
    """Windows of inference metrics and inference sessions, as their ``to_dict`` writes them."""

    windows: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []


@router.post("/records", status_code=201)
def record(body: RecordsBody, wb: Wb) -> dict[str, int]:
    """Store the windows and create or bring up to date the sessions, all or none;
    the answer counts what was recorded."""
    windows = [InferenceWindow.from_dict(item) for item in body.windows]
    sessions = [InferenceSession.from_dict(item) for item in body.sessions]
    wb.inference.record(windows, sessions)
    return {"windows": len(windows), "sessions": len(sessions)}


@router.get("/metrics", response_model=Page)
def metrics(
    wb: Wb,
    model: str,
    version: str | None = None,
    environment: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Page:
    """The model's latest ``limit`` windows, oldest first."""
    found = wb.inference.metrics(
        model, version=version, environment=environment, since=since, limit=limit
    )
    return Page(items=[window.to_dict() for window in found], next=None)


@router.get("/sessions", response_model=Page)
def sessions(
    wb: Wb,
    model: str,
    version: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Page:
    """The model's inference sessions, the most recently used first."""
    found = wb.inference.sessions(model, version=version, limit=limit)
    return Page(items=[session.to_dict() for session in found], next=None)
