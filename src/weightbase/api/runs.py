"""``/api/v1/experiments`` and ``/api/v1/runs``: experiment tracking over HTTP.

Runs are made, searched and moved between statuses here; metric points come
in batches (``POST /runs/{id}/metrics``) and go out as a history that can be
thinned to at most ``max_points`` points for plotting.
"""

from __future__ import annotations

import math
import re
import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, MAX_LIMIT, Page, page, workspace
from weightbase.errors import ValidationError
from weightbase.tracking.records import MetricFilter, MetricHistory, check_name
from weightbase.workspace import Workspace

__all__ = ["MAX_POINTS_PER_BATCH", "downsample", "router"]

router = APIRouter(prefix=API_PREFIX, tags=["runs"], dependencies=[Depends(access())])

Wb = Annotated[Workspace, Depends(workspace)]

#: The most metric points one ``POST /runs/{id}/metrics`` takes.
MAX_POINTS_PER_BATCH = 100_000
_MAX_STEP = 2**53
_FILTER = re.compile(r"^(?P<name>.+?)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>[^<>=!]+)$")


class ExperimentBody(BaseModel):
    """A new experiment."""

    name: str
    description: str | None = None
    exist_ok: bool = False


class RunBody(BaseModel):
    """A new run, running from now on, in ``experiment`` (created if new)."""

    experiment: str = "default"
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)


class StatusBody(BaseModel):
    """Move a run to ``status`` (running, paused, completed, failed, cancelled)."""

    status: str
    reason: str | None = None


class ParamsBody(BaseModel):
    """Params of a run; one logged before with another value is a conflict."""

    params: dict[str, Any]


class TagsBody(BaseModel):
    """Tags to add, then tags to remove."""

    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


class MetricPoint(BaseModel):
    """One point: ``value`` of metric ``name`` at ``step`` (NaN and infinities as text)."""

    name: str
    value: float
    step: Annotated[int, Field(ge=0, lt=_MAX_STEP)]
    epoch: float | None = None
    time: float | None = Field(default=None, description="Unix seconds; default: now")


class MetricBatch(BaseModel):
    """Points to store in one transaction: all of them, or none."""

    points: Annotated[list[MetricPoint], Field(max_length=MAX_POINTS_PER_BATCH)]


# -- experiments ---------------------------------------------------------------------------


@router.get("/experiments", response_model=Page)
def list_experiments(
    wb: Wb,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after: Annotated[str | None, Query(description="the previous page's next")] = None,
) -> Page:
    """Experiments by name, a page at a time."""
    offset = _offset(after)
    found = wb.runs.experiments(limit=limit + 1, offset=offset)
    more = len(found) > limit
    return page(found[:limit], offset + limit if more else None)


@router.post("/experiments", status_code=201)
def create_experiment(body: ExperimentBody, wb: Wb) -> dict[str, Any]:
    """A new experiment; 409 if the name is taken (unless ``exist_ok``)."""
    found = wb.runs.create_experiment(
        body.name, description=body.description, exist_ok=body.exist_ok
    )
    return found.to_dict()


@router.get("/experiments/{experiment:path}")
def get_experiment(experiment: str, wb: Wb) -> dict[str, Any]:
    """An experiment by name (or ``id:<number>``)."""
    key: str | int = int(experiment[3:]) if re.fullmatch(r"id:\d+", experiment) else experiment
    return wb.runs.experiment(key).to_dict()


# -- runs ----------------------------------------------------------------------------------


@router.post("/runs", status_code=201)
def create_run(body: RunBody, wb: Wb) -> dict[str, Any]:
    """Start a run; it stays running until its status is set.

    The server holds no handle on it: the run's usage is what its own processes add.
    """
    run = wb.runs.create(body.experiment, name=body.name, params=body.params, tags=body.tags)
    return run.to_dict()


@router.get("/runs", response_model=Page)
def search_runs(
    wb: Wb,
    experiment: str | None = None,
    status: Annotated[list[str] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query(description="runs with every tag given")] = None,
    metric: Annotated[
        list[str] | None, Query(description="filters like val/acc>=0.9 on latest values")
    ] = None,
    name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    after: Annotated[str | None, Query(description="the previous page's next")] = None,
) -> Page:
    """Runs matching every filter given, newest first, a page at a time."""
    found = wb.runs.search(
        experiment=experiment,
        status=status or None,
        tags=tag or (),
        metrics=[_metric_filter(text) for text in metric or ()],
        name=name,
        limit=limit,
        page_token=after,
    )
    return page(found.runs, found.next_page_token)


@router.get("/runs/{run_id}")
def get_run(run_id: int, wb: Wb) -> dict[str, Any]:
    """A run: status, params, tags, metric summaries, resource usage."""
    return wb.runs.get(run_id).to_dict()


@router.put("/runs/{run_id}/status")
def set_status(run_id: int, body: StatusBody, wb: Wb) -> dict[str, Any]:
    """Move a run to a status; 409 if that move is not allowed."""
    return wb.runs.set_status(run_id, body.status, reason=body.reason).to_dict()


@router.post("/runs/{run_id}/params")
def log_params(run_id: int, body: ParamsBody, wb: Wb) -> dict[str, Any]:
    """Record params of a run."""
    wb.runs.log_params(run_id, body.params)
    return wb.runs.get(run_id).to_dict()


@router.post("/runs/{run_id}/tags")
def tag_run(run_id: int, body: TagsBody, wb: Wb) -> dict[str, Any]:
    """Add and remove tags of a run."""
    if body.add:
        wb.runs.set_tags(run_id, body.add)
    if body.remove:
        wb.runs.remove_tags(run_id, body.remove)
    return wb.runs.get(run_id).to_dict()


@router.post("/runs/{run_id}/metrics")
def log_metrics(run_id: int, body: MetricBatch, wb: Wb) -> dict[str, Any]:
    """Store a batch of points of a running run, in one transaction; how many were stored."""
    grouped: dict[str, list[tuple[float, float, float, float]]] = {}
    now = time.time()
    for point in body.points:
        if point.epoch is not None and not math.isfinite(point.epoch):
            raise ValidationError(f"the epoch of a point of {point.name!r} must be finite")
        epoch = math.nan if point.epoch is None else point.epoch
        when = now if point.time is None else point.time
        grouped.setdefault(check_name(point.name), []).append(
            (float(point.step), epoch, when, point.value)
        )
    batch = {name: np.asarray(rows, dtype=np.float64) for name, rows in grouped.items()}
    wb.runs.metric_store.write(run_id, batch)
    return {"run_id": run_id, "stored": len(body.points)}


@router.get("/runs/{run_id}/metrics")
def metric_names(run_id: int, wb: Wb) -> dict[str, Any]:
    """The names of the metrics a run has logged, sorted."""
    wb.runs.get(run_id)
    return {"run_id": run_id, "names": wb.runs.metric_names(run_id)}


@router.get("/runs/{run_id}/metrics/{name:path}")
def metric_history(
    run_id: int,
    name: str,
    wb: Wb,
    max_points: Annotated[
        int | None, Query(ge=2, description="thin the history to at most this many points")
    ] = None,
) -> dict[str, Any]:
    """Every point of one metric of a run, by step; thinned evenly with ``max_points``."""
    found = wb.runs.history(run_id, name)
    data = downsample(found, max_points).to_dict()
    data["total_points"] = len(found)
    return data


@router.get("/runs/{run_id}/artifacts", response_model=Page)
def list_artifacts(run_id: int, wb: Wb) -> Page:
    """A run's artifacts, by name (one page)."""
    wb.runs.get(run_id)
    return page(wb.runs.artifacts(run_id), None)


def downsample(history: MetricHistory, max_points: int | None) -> MetricHistory:
    """``history`` thinned to at most ``max_points`` evenly spread points, first and last kept."""
    count = len(history)
    if max_points is None or count <= max_points:
        return history
    keep = np.unique(np.linspace(0, count - 1, max_points).round().astype(np.int64))
    return MetricHistory(
        run_id=history.run_id,
        name=history.name,
        steps=history.steps[keep],
        epochs=history.epochs[keep],
        times=history.times[keep],
        values=history.values[keep],
    )


def _metric_filter(text: str) -> MetricFilter:
    match = _FILTER.match(text.strip())
    if match is None:
        raise ValidationError(f"not a metric filter: {text!r}; write it like val/acc>=0.9")
    try:
        value = float(match["value"])
    except ValueError as exc:
        raise ValidationError(f"not a number in metric filter {text!r}") from exc
    return MetricFilter.coerce((match["name"], match["op"], value))


def _offset(after: str | None) -> int:
    if after is None:
        return 0
    if not after.isdigit():
        raise ValidationError(f"not a cursor of this listing: {after!r}")
    return int(after)
