"""``/api/v1/monitoring``: production monitoring over ``wb.monitoring``.

``POST /monitoring/samples`` takes a recorder's batch of sampled requests, ``GET
/monitoring/samples`` reads them by time window and ``DELETE /monitoring/samples`` prunes
them; ``POST /monitoring/labels`` takes late
labels by request id; ``GET /monitoring/performance`` scores them per window;
``POST /monitoring/check`` evaluates a deployment's alert thresholds; ``GET
/monitoring/alerts`` lists alerts and ``POST /monitoring/alerts/{id}/acknowledge`` and
``…/resolve`` move them; ``GET /monitoring/health`` scores a deployment and advises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, Page, workspace
from weightbase.monitoring.records import ObservedRequest
from weightbase.workspace import Workspace

__all__ = ["router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/monitoring", tags=["monitoring"], dependencies=[Depends(access())]
)

Wb = Annotated[Workspace, Depends(workspace)]


class SamplesBody(BaseModel):
    """Sampled requests, as ``ObservedRequest.to_dict`` writes them; stored all or none."""

    samples: list[dict[str, Any]]


class LabelBody(BaseModel):
    """The true outcome of one request: a class (text, whole number, bool) or a number."""

    request_id: str
    label: str | bool | int | float


class LabelsBody(BaseModel):
    """A batch of labels, stored all or none."""

    labels: list[LabelBody]


class CheckBody(BaseModel):
    """The deployment to check (its id, or a model name with the environment), the drift
    share to judge (0 to 1) where one was measured, and the windows to read."""

    deployment: str
    environment: str | None = None
    drift_share: float | None = None
    lookback_s: float = 300.0
    window_s: float = 3600.0
    min_labels: int = 10


class ReasonBody(BaseModel):
    """Why the alert moves."""

    reason: str | None = None


@router.post("/samples", status_code=201)
def record_samples(body: SamplesBody, wb: Wb) -> dict[str, int]:
    """Store a batch of sampled requests; the answer counts those stored."""
    samples = [ObservedRequest.from_dict(item) for item in body.samples]
    return {"recorded": wb.monitoring.record_samples(samples)}


@router.get("/samples", response_model=Page)
def samples(
    wb: Wb,
    target: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: str | None = None,
) -> Page:
    """Sampled requests of a model, model@version or deployment id, oldest first."""
    found = wb.monitoring.samples(target, since=since, until=until, limit=limit, cursor=cursor)
    return Page(items=[item.to_dict() for item in found.items], next=found.next)


@router.get("/inputs")
def inputs(
    wb: Wb,
    target: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
) -> dict[str, Any]:
    """The sampled inputs (and predictions) as columns: a drift report's current window."""
    columns = wb.monitoring.inputs(target, since=since, until=until, limit=limit)
    return {"columns": columns}


@router.get("/drift")
def drift(
    wb: Wb,
    target: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
) -> dict[str, Any]:
    """Drift of the sampled inputs (and predictions) against the training split lineage
    names: per feature, the share drifted and the verdict."""
    return wb.monitoring.drift(target, since=since, until=until, limit=limit).to_dict()


@router.delete("/samples")
def prune(wb: Wb, before: datetime, target: str | None = None) -> dict[str, int]:
    """Delete the samples taken before ``before`` (of ``target`` only, where given)."""
    return {"deleted": wb.monitoring.prune(before, target=target)}


@router.post("/labels", status_code=201)
def labels(body: LabelsBody, wb: Wb) -> dict[str, int]:
    """Store late labels by request id; how many were stored and met a sampled request."""
    items = [(item.request_id, item.label) for item in body.labels]
    return wb.monitoring.labels(items).to_dict()


@router.get("/performance")
def performance(
    wb: Wb,
    target: str,
    window_s: float = 3600.0,
    kind: str = "auto",
    threshold: float | None = None,
    min_labels: int = 10,
    since: datetime | None = None,
) -> dict[str, Any]:
    """Accuracy (or MAE and RMSE) per window against the version's registered metric."""
    return wb.monitoring.performance(
        target,
        window_s=window_s,
        kind=kind,
        threshold=threshold,
        min_labels=min_labels,
        since=since,
    ).to_dict()


@router.post("/check")
def check(body: CheckBody, wb: Wb) -> dict[str, Any]:
    """Evaluate the deployment's alert thresholds: alerts opened, resolved, still open."""
    return wb.monitoring.check(
        body.deployment,
        environment=body.environment,
        drift=body.drift_share,
        lookback_s=body.lookback_s,
        window_s=body.window_s,
        min_labels=body.min_labels,
    ).to_dict()


@router.get("/alerts", response_model=Page)
def alerts(
    wb: Wb,
    deployment: str | None = None,
    environment: str | None = None,
    status: str | None = None,
    rule: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Page:
    """Alerts, newest first, filtered by deployment, status and rule where given."""
    found = wb.monitoring.alerts(
        deployment=deployment, environment=environment, status=status, rule=rule, limit=limit
    )
    return Page(items=[item.to_dict() for item in found], next=None)


@router.get("/alerts/{alert_id}")
def alert(alert_id: str, wb: Wb) -> dict[str, Any]:
    """One alert."""
    return wb.monitoring.alert(alert_id).to_dict()


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: str, body: ReasonBody, wb: Wb) -> dict[str, Any]:
    """An open alert becomes acknowledged."""
    return wb.monitoring.acknowledge(alert_id, reason=body.reason).to_dict()


@router.post("/alerts/{alert_id}/resolve")
def resolve(alert_id: str, body: ReasonBody, wb: Wb) -> dict[str, Any]:
    """An open or acknowledged alert is resolved by hand."""
    return wb.monitoring.resolve(alert_id, reason=body.reason).to_dict()


@router.get("/health")
def health(
    wb: Wb,
    deployment: str,
    environment: str | None = None,
    drift_share: float | None = None,
    lookback_s: float = 300.0,
    window_s: float = 3600.0,
    min_labels: int = 10,
) -> dict[str, Any]:
    """The deployment's health score, what it is made of, and the recommendation."""
    return wb.monitoring.health(
        deployment,
        environment=environment,
        drift=drift_share,
        lookback_s=lookback_s,
        window_s=window_s,
        min_labels=min_labels,
    ).to_dict()
