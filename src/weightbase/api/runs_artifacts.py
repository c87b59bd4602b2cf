"""``/api/v1/runs/{id}/artifacts`` and ``…/links``: what a run produced, and what it used.

An artifact's content is a snapshot in the store: a remote workspace uploads
it through ``/api/v1/store`` (only the chunks the server lacks) and then names
it here, which pins it under ``runs/<id>/artifacts/<name>``; reading it back
goes through the store routes too, verified chunk by chunk. Included in
:mod:`weightbase.api.runs`'s router (its prefix and access check).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, MAX_LIMIT, Page, page, workspace
from weightbase.errors import ValidationError
from weightbase.lineage import Node
from weightbase.tracking.context import RUN_KIND
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(prefix=API_PREFIX, tags=["runs"], dependencies=[Depends(access())])

Wb = Annotated[Workspace, Depends(workspace)]


class ArtifactBody(BaseModel):
    """Keep ``snapshot`` (already in the store, whole) as artifact ``name`` of the run.

    Its ``artifact_kind`` metadata (``tensors``, ``file`` or ``folder``) says what
    it holds; an artifact of that name is a conflict unless ``overwrite``.
    """

    name: str
    snapshot: str
    overwrite: bool = False


class RunLinkBody(BaseModel):
    """A lineage edge from the run: it ``relation`` (e.g. trained_on) the node ``kind:id``."""

    relation: str
    kind: str
    id: str


@router.get("/runs/{run_id}/artifacts", response_model=Page)
def list_artifacts(
    run_id: int,
    wb: Wb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after: Annotated[str | None, Query(description="the previous page's next")] = None,
) -> Page:
    """A run's artifacts by name, a page at a time (the cursor is the last name of a page)."""
    found = wb.runs.artifacts(run_id)
    start = 0
    if after is not None:
        # names are never removed, so the cursor's name is still in the listing
        names = [item.name for item in found]
        if after not in names:
            raise ValidationError(f"not a cursor of this listing: {after!r}")
        start = names.index(after) + 1
    chosen = found[start : start + limit]
    more = start + limit < len(found)
    return page(chosen, chosen[-1].name if more else None)


@router.get("/runs/{run_id}/artifacts/{name:path}")
def get_artifact(run_id: int, name: str, wb: Wb) -> dict[str, Any]:
    """One artifact of a run: its kind, snapshot and sizes."""
    return wb.runs.artifact(run_id, name).to_dict()


@router.post("/runs/{run_id}/artifacts", status_code=201)
def log_artifact(run_id: int, body: ArtifactBody, wb: Wb) -> dict[str, Any]:
    """Keep a snapshot already in the store as an artifact of the run."""
    snapshot = wb.store.snapshot(body.snapshot)
    found = wb.runs.log_artifact(run_id, snapshot, name=body.name, overwrite=body.overwrite)
    return found.to_dict()


@router.post("/runs/{run_id}/links", status_code=201)
def link_run(run_id: int, body: RunLinkBody, wb: Wb) -> dict[str, Any]:
    """Record lineage: this run ``relation`` the node (a dataset version it trained on…)."""
    wb.runs.get(run_id)
    edge = wb.lineage.add_edge(Node(RUN_KIND, str(run_id)), Node(body.kind, body.id), body.relation)
    return edge.to_dict()
