"""``/api/v1/datasets``: datasets and their versions, with statistics, quality and split sizes.

Names go in paths as models' do: ``GET /datasets/org/digits/-/versions/1.0.0``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from weightbase.api.auth import access
from weightbase.api.common import (
    API_PREFIX,
    MAX_LIMIT,
    Page,
    etag_of,
    not_modified,
    page,
    workspace,
)
from weightbase.api.errors import JSONBody
from weightbase.datasets.content import DatasetFormat, DatasetKind
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/datasets", tags=["datasets"], dependencies=[Depends(access())]
)

Wb = Annotated[Workspace, Depends(workspace)]
_DATASET = "/{name:entity_name}"


@router.get("", response_model=Page)
def list_datasets(
    wb: Wb,
    name: Annotated[str | None, Query(description="a substring of the name")] = None,
    kind: DatasetKind | None = None,
    format: DatasetFormat | None = None,
    tag: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    after: Annotated[str | None, Query(description="the previous page's next")] = None,
) -> Page:
    """Live datasets by name, filtered by every condition given, a page at a time."""
    found = wb.datasets.list(name=name, kind=kind, format=format, tag=tag, limit=limit, after=after)
    return page(found, found.next_after)


@router.get(_DATASET + "/-/versions", response_model=Page)
def list_versions(name: str, wb: Wb) -> Page:
    """Every live version of a dataset, oldest first by SemVer precedence (one page)."""
    return page(wb.datasets.versions(name), None)


@router.get(_DATASET + "/-/versions/{version}", responses={304: {"description": "not modified"}})
def get_version(name: str, version: str, request: Request, wb: Wb) -> Response:
    """One version: statistics, quality report, split sizes; with an ETag."""
    data = wb.datasets.version(name, version).to_dict()
    data.pop("created", None)
    etag = etag_of(data)
    return not_modified(request, etag) or JSONBody(data, headers={"ETag": etag})


@router.get(_DATASET + "/-/history", response_model=Page)
def history(name: str, wb: Wb, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Page:
    """Every change to a dataset, oldest first (one page of at most ``limit``)."""
    return page(wb.datasets.history(name, limit=limit), None)


@router.get(_DATASET)
def get_dataset(name: str, wb: Wb) -> dict[str, Any]:
    """A live dataset: kind, format, tags and latest version."""
    return wb.datasets.get(name).to_dict()
