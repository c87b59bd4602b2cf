"""``/api/v1/deploy``: seed 003's deploy endpoints over ``wb.deployments``.

``POST /deploy/{model}`` deploys a version (or alias) with an environment and a
configuration, ``GET /deploy/{model}/status`` reads it, ``DELETE /deploy/{model}``
stops it; scaling, the reported status, health and history follow the model after
``/-/``, and ``GET /deploy`` lists deployments. A model name may hold ``/``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, Page, workspace
from weightbase.errors import ValidationError
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/deploy", tags=["deployments"], dependencies=[Depends(access())]
)

Wb = Annotated[Workspace, Depends(workspace)]
_MODEL = "/{model:entity_name}"
Environment = Annotated[
    str | None, Query(description="development, staging or production; optional when one")
]


class DeployBody(BaseModel):
    """What to deploy: a ``version`` or an ``alias``, where, and how (seed 000's configuration)."""

    version: str | None = None
    alias: str | None = None
    environment: str | None = None
    config: dict[str, Any] | None = None
    reason: str | None = None


class ScaleBody(BaseModel):
    """A replica count, and the scaling range to change with it."""

    replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    environment: str | None = None
    reason: str | None = None


class StatusBody(BaseModel):
    """What the inference server reports: ``pending``, ``running`` or ``failed``."""

    status: Annotated[str, Field(min_length=1)]
    environment: str | None = None
    reason: str | None = None


@router.get("", response_model=Page)
def list_deployments(
    wb: Wb,
    model: str | None = None,
    environment: str | None = None,
    status: str | None = None,
    include_stopped: bool = False,
) -> Page:
    """Deployments, newest first; stopped ones with ``include_stopped``."""
    found = wb.deployments.list(
        model=model, environment=environment, status=status, include_stopped=include_stopped
    )
    return Page(items=[deployment.to_dict() for deployment in found], next=None)


@router.post(_MODEL, status_code=201)
def deploy(model: str, body: DeployBody, wb: Wb) -> dict[str, Any]:
    """Deploy ``version`` (or ``alias``; default ``latest``) of the model to ``environment``."""
    if body.version is not None and body.alias is not None:
        raise ValidationError("give a version or an alias, not both", field="version")
    ref = body.version or body.alias
    made = wb.deployments.deploy(
        model if ref is None else f"{model}@{ref}",
        environment=body.environment,
        config=body.config,
        reason=body.reason,
    )
    return made.to_dict()


@router.get(_MODEL + "/status")
def status(model: str, wb: Wb, environment: Environment = None) -> dict[str, Any]:
    """The model's deployment: its version, configuration, status and replicas."""
    return wb.deployments.status(model, environment=environment).to_dict()


@router.delete(_MODEL)
def undeploy(
    model: str, wb: Wb, environment: Environment = None, reason: str | None = None
) -> dict[str, Any]:
    """Stop the model's deployment; the stopped deployment is the answer."""
    return wb.deployments.undeploy(model, environment=environment, reason=reason).to_dict()


@router.post(_MODEL + "/-/scale")
def scale(model: str, body: ScaleBody, wb: Wb) -> dict[str, Any]:
    """Set the replica count (within the scaling range, which this may change)."""
    scaled = wb.deployments.scale(
        model,
        body.replicas,
        environment=body.environment,
        min_replicas=body.min_replicas,
        max_replicas=body.max_replicas,
        reason=body.reason,
    )
    return scaled.to_dict()


@router.post(_MODEL + "/-/status")
def set_status(model: str, body: StatusBody, wb: Wb) -> dict[str, Any]:
    """Record the status an inference server reports for the deployment."""
    changed = wb.deployments.set_status(
        model, body.status, environment=body.environment, reason=body.reason
    )
    return changed.to_dict()


@router.get(_MODEL + "/-/health")
def health(model: str, wb: Wb, environment: Environment = None) -> dict[str, Any]:
    """Whether the deployment serves, as its recorded status says, and why not."""
    return wb.deployments.health(model, environment=environment).to_dict()


@router.get(_MODEL + "/-/history", response_model=Page)
def history(model: str, wb: Wb, environment: Environment = None) -> Page:
    """Every change to the model's deployments, oldest first."""
    found = wb.deployments.history(model, environment=environment)
    return Page(items=[event.to_dict() for event in found], next=None)
