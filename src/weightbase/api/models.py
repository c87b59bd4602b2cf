"""``/api/v1/models``: the model registry: versions, aliases, stages, tags, metrics, diffs.

A model's own resources follow its name after ``/-/`` (see :mod:`weightbase.api.common`):
``GET /models/org/bert/-/versions/1.0.0``. A version is a semantic version,
an alias (``production``) or ``latest``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

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
from weightbase.errors import ValidationError
from weightbase.registry.diff import diff_to_dict
from weightbase.registry.push import LINEAGE
from weightbase.versioning.semver import canonical_version, version_key
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(prefix=f"{API_PREFIX}/models", tags=["models"], dependencies=[Depends(access())])

Wb = Annotated[Workspace, Depends(workspace)]
_MODEL = "/{model:entity_name}"


class AliasBody(BaseModel):
    """Point an alias at a version."""

    version: str
    reason: str | None = None


class StageBody(BaseModel):
    """Move a version to a stage (development, staging, production, deprecated, archived)."""

    stage: str
    reason: str | None = None


class TagsBody(BaseModel):
    """Tags to add, then tags to remove."""

    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


class MetricsBody(BaseModel):
    """Measured metrics of a version (``{"accuracy": 0.91}``), optionally on a dataset."""

    metrics: dict[str, float]
    dataset: str | None = None
    step: int | None = None


class RollbackBody(BaseModel):
    """Move ``alias`` back to version ``to``."""

    to: str
    alias: str = "production"
    reason: str | None = None


class CreateBody(BaseModel):
    """A model to register with no versions yet."""

    name: str
    description: str | None = None
    licence: str | None = None
    model_card: str | None = None
    tags: list[str] = Field(default_factory=list)
    exist_ok: bool = False


class UpdateBody(BaseModel):
    """Fields of a model to change; a null keeps a field as it is."""

    description: str | None = None
    licence: str | None = None
    model_card: str | None = None
    reason: str | None = None


class PushBody(BaseModel):
    """Publish a snapshot already uploaded (``/store``) as a version of the model."""

    snapshot: str = Field(description="the id of a snapshot uploaded with POST /store/snapshots")
    version: str | None = None
    bump: Literal["major", "minor", "patch"] = "minor"
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    metrics: dict[str, float] | None = None
    stage: str | None = None
    aliases: list[str] = Field(default_factory=list)
    config: dict[str, Any] | None = None
    derived_from: str | None = Field(default=None, description="name@version")
    fine_tuned_from: str | None = Field(default=None, description="name@version")
    delta_from: str | None = Field(
        default=None,
        description=(
            "name@version the client stored deltas against; null: none; "
            "absent: the lineage parent (fine_tuned_from, derived_from, else the latest)"
        ),
    )
    create: bool = True
    trainable: list[str] | None = Field(
        default=None, description="the trainable parameters' names (default: all)"
    )


class NodesBody(BaseModel):
    """Lineage nodes to name."""

    nodes: list[dict[str, str]] = Field(max_length=10_000)


class LinkBody(BaseModel):
    """Record ``<this version> relation <target>``: a version (name@version) or any node."""

    relation: str
    version: str | None = Field(default=None, description="name@version of the target")
    kind: str | None = Field(default=None, description="the target node's kind, without version")
    id: str | None = Field(default=None, description="the target node's id, with kind")


class CompareBody(BaseModel):
    """Two versions, ``name@ref`` each, of one model or of two."""

    a: str
    b: str
    values: bool = True


@router.get("", response_model=Page)
def list_models(
    wb: Wb,
    name: Annotated[str | None, Query(description="a substring of the name")] = None,
    tag: str | None = None,
    alias: str | None = None,
    framework: str | None = None,
    architecture: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    after: Annotated[str | None, Query(description="the previous page's next")] = None,
) -> Page:
    """Live models by name, filtered by every condition given, a page at a time."""
    found = wb.models.list(
        name=name,
        tag=tag,
        alias=alias,
        framework=framework,
        architecture=architecture,
        limit=limit,
        after=after,
    )
    return page(found, found.next_after)


@router.post("/describe")
def describe(body: NodesBody, wb: Wb) -> dict[str, list[str | None]]:
    """``name@version`` for each lineage node that is a model version (null for others)."""
    from weightbase.lineage import Node

    nodes = [Node(item.get("kind", ""), item.get("id", "")) for item in body.nodes]
    names = wb.models.describe(nodes)
    return {"names": [names.get(node) for node in nodes]}


@router.post("/compare")
def compare_any(body: CompareBody, wb: Wb) -> dict[str, Any]:
    """What changed from version ``a`` to ``b`` (``name@ref`` each), tensor by tensor."""
    return _diff(wb, body.a, body.b, model=None, values=body.values)


@router.post("", status_code=201)
def create_model(body: CreateBody, wb: Wb) -> dict[str, Any]:
    """Register a model with no versions yet (409 if it exists, unless ``exist_ok``)."""
    found = wb.models.create(
        body.name,
        description=body.description,
        licence=body.licence,
        model_card=body.model_card,
        tags=body.tags,
        exist_ok=body.exist_ok,
    )
    return found.to_dict()


@router.get(_MODEL + "/-/versions", response_model=Page)
def list_versions(
    model: str,
    wb: Wb,
    include_deleted: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after: Annotated[str | None, Query(description="the previous page's next")] = None,
) -> Page:
    """A model's versions, oldest first by SemVer precedence, a page at a time."""
    found = wb.models.versions(model, include_deleted=include_deleted)
    if after is not None:
        cursor = version_key(canonical_version(after))
        found = [item for item in found if version_key(item.version) > cursor]
    chunk = found[:limit]
    return page(chunk, chunk[-1].version if len(found) > limit else None)


@router.post(_MODEL + "/-/versions", status_code=201)
def push_version(model: str, body: PushBody, wb: Wb) -> dict[str, Any]:
    """Publish an uploaded snapshot as a version: the commit of a push over HTTP.

    The snapshot is one ``POST /store/snapshots`` stored; an identical live
    version is returned instead of a new one (``created`` false), as in a local push.
    """
    snapshot = wb.store.snapshot(_snapshot_id(body.snapshot))
    found = wb.models.push(
        model,
        snapshot,
        version=body.version,
        bump=body.bump,
        description=body.description,
        tags=body.tags,
        metrics=body.metrics,
        stage=body.stage,
        aliases=body.aliases,
        config=body.config,
        derived_from=body.derived_from,
        fine_tuned_from=body.fine_tuned_from,
        create=body.create,
        trainable=body.trainable,
        delta_from=body.delta_from if "delta_from" in body.model_fields_set else LINEAGE,
    )
    return found.to_dict()


@router.delete(
    _MODEL + "/-/versions/{version}", status_code=204, dependencies=[Depends(access("admin"))]
)
def delete_version(model: str, version: str, wb: Wb, reason: str | None = None) -> Response:
    """Soft-delete a version (an admin's; its weights are unpinned); 409 while an alias
    points at it."""
    wb.models.delete_version(model, version, reason=reason)
    return Response(status_code=204)


@router.get(_MODEL + "/-/versions/{version}/analysis")
def analysis(model: str, version: str, wb: Wb) -> dict[str, Any]:
    """What the push found in a version: parameters, dtypes, architecture and layers."""
    return wb.models.analysis(model, version).to_dict()


@router.post(_MODEL + "/-/versions/{version}/links", status_code=201)
def link(model: str, version: str, body: LinkBody, wb: Wb) -> dict[str, Any]:
    """Record a lineage edge from this version to another version or node."""
    from weightbase.lineage import Node

    source = wb.models.version(model, version)
    if body.version is not None:
        target: Any = wb.models.version(body.version)
    elif body.kind is not None and body.id is not None:
        target = Node(body.kind, body.id)
    else:
        raise ValidationError("name the target: version, or kind and id")
    wb.models.link(source, body.relation, target)
    return {"source": source.ref, "relation": body.relation, "target": str(target)}


@router.get(_MODEL + "/-/versions/{version}", responses={304: {"description": "not modified"}})
def get_version(model: str, version: str, request: Request, wb: Wb) -> Response:
    """One version; its ETag changes whenever any of its fields does (``If-None-Match``)."""
    data = wb.models.version(model, version).to_dict()
    data.pop("created", None)
    etag = etag_of(data)
    return not_modified(request, etag) or JSONBody(data, headers={"ETag": etag})


@router.put(_MODEL + "/-/aliases/{alias}")
def set_alias(model: str, alias: str, body: AliasBody, wb: Wb) -> dict[str, Any]:
    """Point ``alias`` at a version (moving it if it is set); the version it now names."""
    return wb.models.set_alias(model, alias, body.version, reason=body.reason).to_dict()


@router.delete(_MODEL + "/-/aliases/{alias}", status_code=204)
def remove_alias(model: str, alias: str, wb: Wb, reason: str | None = None) -> Response:
    """Remove an alias; 404 if it is not set."""
    wb.models.remove_alias(model, alias, reason=reason)
    return Response(status_code=204)


@router.post(_MODEL + "/-/versions/{version}/stage")
def promote(model: str, version: str, body: StageBody, wb: Wb) -> dict[str, Any]:
    """Move a version to a stage."""
    return wb.models.promote(model, body.stage, version=version, reason=body.reason).to_dict()


@router.post(_MODEL + "/-/tags")
def tag_model(model: str, body: TagsBody, wb: Wb) -> dict[str, Any]:
    """Add and remove tags of a model."""
    _change_tags(wb, model, body)
    return wb.models.get(model).to_dict()


@router.post(_MODEL + "/-/versions/{version}/tags")
def tag_version(model: str, version: str, body: TagsBody, wb: Wb) -> dict[str, Any]:
    """Add and remove tags of a version."""
    found = wb.models.version(model, version)
    _change_tags(wb, found.ref, body)
    return wb.models.version(found.ref).to_dict()


@router.post(_MODEL + "/-/versions/{version}/metrics")
def log_metrics(model: str, version: str, body: MetricsBody, wb: Wb) -> dict[str, Any]:
    """Attach measured metrics to a version."""
    found = wb.models.log_metrics(
        model, body.metrics, version=version, dataset=body.dataset, step=body.step
    )
    return found.to_dict()


@router.get(_MODEL + "/-/compare")
@router.get(_MODEL + "/-/diff")
def compare(
    model: str,
    wb: Wb,
    a: Annotated[str, Query(description="a version or alias of the model")],
    b: Annotated[str, Query(description="another version or alias")],
    values: bool = True,
) -> dict[str, Any]:
    """What changed from version ``a`` to ``b`` of one model, tensor by tensor, and metrics."""
    return _diff(wb, a, b, model=model, values=values)


@router.get(_MODEL + "/-/history", response_model=Page)
def history(
    model: str,
    wb: Wb,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    after: Annotated[int | None, Query(ge=0, description="the previous page's next")] = None,
) -> Page:
    """Every change to a model, oldest first, a page of at most ``limit`` at a time."""
    found = wb.models.history(model, limit=limit + 1, since_id=after)
    chunk = found[:limit]
    return page(chunk, chunk[-1].id if len(found) > limit else None)


@router.get(_MODEL + "/-/versions/{version}/lineage", response_model=Page)
def lineage(
    model: str,
    version: str,
    wb: Wb,
    direction: Literal["ancestors", "descendants"] = "ancestors",
    depth: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    after: Annotated[int | None, Query(ge=0, description="the previous page's next")] = None,
) -> Page:
    """Where a version came from (or what came from it), nearest first, each node named.

    The walk is ordered (by distance, then node), so ``next`` is a position in it.
    """
    found = wb.models.version(model, version)
    reached = wb.models.lineage(found, direction=direction, depth=depth)
    start = after or 0
    chunk = reached[start : start + limit]
    names = wb.describe([item.node for item in chunk])
    items = [{**item.to_dict(), "name": names.get(item.node)} for item in chunk]
    more = start + limit < len(reached)
    return Page(items=items, next=str(start + limit) if more else None)


@router.post(_MODEL + "/-/rollback")
def rollback(model: str, body: RollbackBody, wb: Wb) -> dict[str, Any]:
    """Move an alias back to an earlier version, recording why."""
    return wb.models.rollback(model, to=body.to, alias=body.alias, reason=body.reason).to_dict()


@router.get(_MODEL)
def get_model(model: str, wb: Wb) -> dict[str, Any]:
    """A live model: its description, tags, aliases and latest version."""
    return wb.models.get(model).to_dict()


@router.patch(_MODEL)
def update_model(model: str, body: UpdateBody, wb: Wb) -> dict[str, Any]:
    """Change a model's description, licence or model card."""
    found = wb.models.update(
        model,
        description=body.description,
        licence=body.licence,
        model_card=body.model_card,
        reason=body.reason,
    )
    return found.to_dict()


@router.delete(_MODEL, status_code=204, dependencies=[Depends(access("admin"))])
def delete_model(model: str, wb: Wb, force: bool = False, reason: str | None = None) -> Response:
    """Soft-delete a model (an admin's); 409 while it has aliases unless ``force``."""
    wb.models.delete(model, force=force, reason=reason)
    return Response(status_code=204)


def _snapshot_id(text: str) -> str:
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValidationError(f"{text!r} is not a snapshot id (64 lower-case hex digits)")
    return text


def _change_tags(wb: Workspace, ref: str, body: TagsBody) -> None:
    if body.add:
        wb.models.tag(ref, *body.add)
    if body.remove:
        wb.models.untag(ref, *body.remove)


def _diff(wb: Workspace, a: str, b: str, *, model: str | None, values: bool) -> dict[str, Any]:
    first = wb.models.version(model, a) if model else wb.models.version(a)
    second = wb.models.version(model, b) if model else wb.models.version(b)
    found = wb.models.diff(first, second, values=values)
    return diff_to_dict(found, first, second)
