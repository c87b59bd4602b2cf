"""``/api/v1/datasets``: datasets and their versions, with statistics, quality and split sizes.

Names go in paths as models' do: ``GET /datasets/org/digits/-/versions/1.0.0``.
A remote workspace registers a version in two steps: it uploads the content and
split snapshots through ``/store``, then commits them with ``POST
/datasets/{name}/-/versions``. The server reads the content back from its own
store and computes the statistics and quality itself; of the client's work it
keeps the split indices (checked to hold each sample exactly once) and the
preprocessing steps it declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

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
from weightbase.datasets.splits import SPLIT_NAMES, Preprocessing, Splits, SplitSpec
from weightbase.errors import ValidationError
from weightbase.tensors.dtypes import dtype_from_numpy
from weightbase.versioning.semver import canonical_version, version_key
from weightbase.workspace import Workspace

if TYPE_CHECKING:
    from weightbase.datasets.records import DatasetVersion

__all__ = ["router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/datasets", tags=["datasets"], dependencies=[Depends(access())]
)

Wb = Annotated[Workspace, Depends(workspace)]
_DATASET = "/{dataset:entity_name}"
_SNAPSHOT_ID = r"^[0-9a-f]{64}$"
_SPLIT_TENSORS = frozenset(f"split.{part}" for part in SPLIT_NAMES)
_INDEX_DTYPE = dtype_from_numpy(np.dtype(np.int64)).name


class SplitSpecBody(BaseModel):
    """How the splits were drawn: fractions summing to 1, a seed, stratified, duplicates grouped."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 0
    stratify: bool = False
    group_duplicates: bool = Field(
        default=True, description="copies of one sample (equal inputs) kept in one split"
    )
    near_duplicate_decimals: int | None = Field(
        default=None,
        description="group near-duplicates too: numbers rounded to this many decimals, "
        "text normalised (NFKC, case-folded, whitespace collapsed)",
    )


class StepBody(BaseModel):
    """One preprocessing step: ``normalisation``, ``augmentation`` or ``transform``."""

    kind: str
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class RegisterBody(BaseModel):
    """Publish a dataset snapshot already uploaded (``/store``) as a version of the dataset."""

    snapshot: str = Field(
        pattern=_SNAPSHOT_ID, description="the content snapshot (uploaded: POST /store/snapshots)"
    )
    splits_snapshot: str | None = Field(
        default=None,
        pattern=_SNAPSHOT_ID,
        description="split.train, split.validation, split.test (int64 indices); "
        "null: the server draws the splits from split_spec",
    )
    split_spec: SplitSpecBody | None = Field(
        default=None, description="null: 80/10/10, seed 0, stratified when labels are classes"
    )
    preprocessing: list[StepBody] = Field(default_factory=list)
    version: str | None = None
    bump: Literal["major", "minor", "patch"] = "minor"
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    derived_from: str | None = Field(default=None, description="name@version")


class TagsBody(BaseModel):
    """Tags to add to a version."""

    add: list[str] = Field(default_factory=list)


@router.get("", response_model=Page)
def list_datasets(
    wb: Wb,
    name: Annotated[str | None, Query(description="a substring of the name")] = None,
    kind: Annotated[
        str | None, Query(description=f"one of {', '.join(k.value for k in DatasetKind)}")
    ] = None,
    format: Annotated[
        str | None, Query(description=f"one of {', '.join(f.value for f in DatasetFormat)}")
    ] = None,
    tag: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    after: Annotated[str | None, Query(description="the previous page's next")] = None,
) -> Page:
    """Live datasets by name, filtered by every condition given, a page at a time."""
    found = wb.datasets.list(name=name, kind=kind, format=format, tag=tag, limit=limit, after=after)
    return page(found, found.next_after)


@router.get(_DATASET + "/-/versions", response_model=Page)
def list_versions(
    dataset: str,
    wb: Wb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after: Annotated[str | None, Query(description="the previous page's next")] = None,
) -> Response:
    """Every live version of a dataset, oldest first by SemVer precedence, a page at a time."""
    found = wb.datasets.versions(dataset)
    if after is not None:
        start = version_key(canonical_version(after))
        found = [item for item in found if version_key(item.version) > start]
    items = found[:limit]
    following = items[-1].version if len(found) > limit else None
    return JSONBody({"items": [_version_json(item) for item in items], "next": following})


@router.post(_DATASET + "/-/versions", status_code=201)
def register_version(dataset: str, body: RegisterBody, wb: Wb) -> Response:
    """Publish uploaded snapshots as a version: the commit of a remote ``register``.

    The content is read back from the server's store and its statistics and
    quality computed here; uploaded splits must hold each sample exactly once.
    An identical live version is returned instead of a new one (``created``
    false), as in a local registration.
    """
    spec = SplitSpec.from_dict(body.split_spec.model_dump()) if body.split_spec else None
    split: SplitSpec | Splits | None = spec
    if body.splits_snapshot is not None:
        split = _uploaded_splits(wb, body.splits_snapshot, spec or SplitSpec())
    found = wb.datasets.register(
        dataset,
        wb.store.snapshot(body.snapshot),
        version=body.version,
        bump=body.bump,
        description=body.description,
        split=split,
        preprocessing=Preprocessing.from_dict(
            {"steps": [step.model_dump() for step in body.preprocessing]}
        ),
        tags=body.tags,
        derived_from=body.derived_from,
    )
    return JSONBody(_version_json(found), status_code=201)


@router.get(_DATASET + "/-/versions/{version}", responses={304: {"description": "not modified"}})
def get_version(dataset: str, version: str, request: Request, wb: Wb) -> Response:
    """One version: statistics, quality report, split sizes; with an ETag."""
    data = _version_json(wb.datasets.version(dataset, version))
    data.pop("created", None)
    etag = etag_of(data)
    return not_modified(request, etag) or JSONBody(data, headers={"ETag": etag})


@router.post(_DATASET + "/-/versions/{version}/tags")
def tag_version(dataset: str, version: str, body: TagsBody, wb: Wb) -> Response:
    """Add tags to a version; the version as it is now."""
    found = wb.datasets.version(dataset, version)
    wb.datasets.tag(found, *body.add)
    return JSONBody(_version_json(wb.datasets.version(found.ref)))


@router.get(_DATASET + "/-/history", response_model=Page)
def history(
    dataset: str,
    wb: Wb,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    after: Annotated[int | None, Query(ge=0, description="the previous page's next")] = None,
) -> Page:
    """Every change to a dataset, oldest first, a page of at most ``limit`` at a time."""
    found = wb.datasets.history(dataset, limit=limit + 1, since_id=after)
    chunk = found[:limit]
    return page(chunk, chunk[-1].id if len(found) > limit else None)


@router.get(_DATASET)
def get_dataset(dataset: str, wb: Wb) -> dict[str, Any]:
    """A live dataset: kind, format, tags and latest version."""
    return wb.datasets.get(dataset).to_dict()


@router.delete(_DATASET, status_code=204, dependencies=[Depends(access("admin"))])
def delete_dataset(dataset: str, wb: Wb, reason: str | None = None) -> Response:
    """Soft-delete a dataset (an admin's); its versions' arrays are unpinned for the gc."""
    wb.datasets.delete(dataset, reason=reason)
    return Response(status_code=204)


def _version_json(found: DatasetVersion) -> dict[str, Any]:
    """A version's record, with the ids a remote workspace reads it back by."""
    return {
        **found.to_dict(),
        "dataset_id": found.dataset_id,
        "splits_snapshot_id": found.splits_snapshot_id,
    }


def _uploaded_splits(wb: Workspace, snapshot_id: str, spec: SplitSpec) -> Splits:
    """The split indices of an uploaded snapshot, once its tensors are what splits hold."""
    stored = wb.store.snapshot(snapshot_id)
    entries = stored.tensors
    if set(entries) != _SPLIT_TENSORS or any(
        entry.dtype != _INDEX_DTYPE or len(entry.shape) != 1 for entry in entries.values()
    ):
        raise ValidationError(
            f"snapshot {snapshot_id} does not hold a dataset's splits: "
            f"exactly {', '.join(sorted(_SPLIT_TENSORS))}, 1-D int64 each",
            snapshot=snapshot_id,
        )
    return Splits.from_arrays(spec, wb.store.read(stored))
