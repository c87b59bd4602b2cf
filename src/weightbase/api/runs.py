"""``/api/v1/experiments`` and ``/api/v1/runs``: experiment tracking over HTTP.

Runs are made, imported, searched, compared and moved between statuses here;
metric points (:mod:`weightbase.api.runs_metrics`) come in batches, numbered per
writer so that a batch sent twice is stored once, and go out as a history
that can be thinned for plotting; artifacts and lineage are in
:mod:`weightbase.api.runs_artifacts`. A remote workspace's ``wb.runs`` is the
Python client of all of it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, MAX_LIMIT, Page, page, workspace
from weightbase.api.runs_metrics import MAX_POINTS_PER_BATCH, downsample
from weightbase.errors import ValidationError
from weightbase.tracking.environment import RunEnvironment
from weightbase.tracking.records import MetricFilter
from weightbase.tracking.system import ResourceSample
from weightbase.workspace import Workspace

__all__ = ["MAX_POINTS_PER_BATCH", "downsample", "router"]

router = APIRouter(prefix=API_PREFIX, tags=["runs"], dependencies=[Depends(access())])

Wb = Annotated[Workspace, Depends(workspace)]

_FILTER = re.compile(
    r"^(?:(?P<of>last|min|max)\((?P<wrapped>[^()]+)\)|(?P<name>.+?))"
    r"\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>[^<>=!]+)$"
)


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
    environment: dict[str, Any] | None = Field(
        default=None,
        description="the reproducibility record the client captured (RunEnvironment.to_dict); "
        "null: none. The server never records its own.",
    )


class SeedsBody(BaseModel):
    """Seeds set through weightbase, by what they seeded: ``{"numpy": 42}``."""

    seeds: dict[str, Any]


class UsageBody(BaseModel):
    """Resources one process used for a run since it last said: added to the run's totals."""

    cpu_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    gpu_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    peak_memory_bytes: Annotated[int | None, Field(ge=0)] = None

    def sample(self) -> ResourceSample:
        return ResourceSample(self.cpu_seconds, self.gpu_seconds, self.peak_memory_bytes)


class StatusBody(BaseModel):
    """Move a run to ``status`` (running, paused, completed, failed, cancelled).

    ``usage``: what the process asking used, added to the run's totals in the same step.
    """

    status: str
    reason: str | None = None
    usage: UsageBody | None = None


class ParamsBody(BaseModel):
    """Params of a run; one logged before with another value is a conflict."""

    params: dict[str, Any]


class TagsBody(BaseModel):
    """Tags to add, then tags to remove."""

    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


class SeriesBody(BaseModel):
    """Every point of one metric, as columns of equal length (NaN and infinities as text)."""

    steps: list[Annotated[int, Field(ge=0, lt=2**53)]]
    epochs: list[float | None] | None = Field(default=None, description="null: no epoch")
    times: list[float]
    values: list[float]


class ImportBody(BaseModel):
    """A whole run made by another tool: its times, final status, params, tags and points."""

    experiment: str
    started_at: datetime
    ended_at: datetime | None = None
    status: str = "completed"
    status_reason: str | None = None
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    metrics: dict[str, SeriesBody] = Field(default_factory=dict)


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
    return wb.runs.experiment(_experiment_key(experiment)).to_dict()


# -- runs ----------------------------------------------------------------------------------


@router.post("/runs", status_code=201)
def create_run(body: RunBody, wb: Wb) -> dict[str, Any]:
    """Start a run; it stays running until its status is set.

    The server holds no handle on it: the run's usage is what its own processes add,
    and its environment what the client sent.
    """
    environment = None if body.environment is None else RunEnvironment.from_dict(body.environment)
    run = wb.runs.create(
        body.experiment,
        name=body.name,
        params=body.params,
        tags=body.tags,
        capture_environment=False if environment is None else environment,
    )
    return run.to_dict()


@router.post("/runs/imports", status_code=201)
def import_run(body: ImportBody, wb: Wb) -> dict[str, Any]:
    """Record a finished (or paused) run made elsewhere, with every point, in one go."""
    run = wb.runs.import_run(
        body.experiment,
        started_at=body.started_at,
        ended_at=body.ended_at,
        status=body.status,
        status_reason=body.status_reason,
        name=body.name,
        params=body.params,
        tags=body.tags,
        metrics={name: _points(name, series) for name, series in body.metrics.items()},
    )
    return run.to_dict()


@router.get("/runs", response_model=Page)
def search_runs(
    wb: Wb,
    experiment: Annotated[str | None, Query(description="a name, or id:<number>")] = None,
    status: Annotated[list[str] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query(description="runs with every tag given")] = None,
    param: Annotated[
        list[str] | None, Query(description='filters like lr=0.001 or opt="adam" (JSON values)')
    ] = None,
    metric: Annotated[
        list[str] | None,
        Query(description="filters like val/acc>=0.9 on latest values, or min(val/loss)<0.3"),
    ] = None,
    name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    after: Annotated[str | None, Query(description="the previous page's next")] = None,
) -> Page:
    """Runs matching every filter given, newest first, a page at a time."""
    found = wb.runs.search(
        experiment=None if experiment is None else _experiment_key(experiment),
        status=status or None,
        tags=tag or (),
        params=dict(_param_filter(text) for text in param or ()) or None,
        metrics=[_metric_filter(text) for text in metric or ()],
        name=name,
        limit=limit,
        page_token=after,
    )
    return page(found.runs, found.next_page_token)


# before /runs/{run_id}, which would take "compare" for a run id
@router.get("/runs/compare")
def compare_runs(
    wb: Wb,
    run: Annotated[list[int], Query(description="the runs, in column order")],
    metric: Annotated[list[str] | None, Query(description="the metric rows; default: all")] = None,
    param: Annotated[list[str] | None, Query(description="the param rows; default: all")] = None,
    include_system: bool = False,
) -> dict[str, Any]:
    """Runs side by side: their params, and each metric's latest value."""
    found = wb.runs.compare(run, metrics=metric, params=param, include_system=include_system)
    return found.to_dict()


@router.get("/runs/{run_id}")
def get_run(run_id: int, wb: Wb) -> dict[str, Any]:
    """A run: status, params, tags, metric summaries, resource usage."""
    return wb.runs.get(run_id).to_dict()


@router.get("/runs/{run_id}/environment")
def get_environment(run_id: int, wb: Wb) -> dict[str, Any]:
    """What a run was started with (``environment``: null if it recorded none)."""
    found = wb.runs.environment(run_id)
    return {"run_id": run_id, "environment": None if found is None else found.to_dict()}


@router.post("/runs/{run_id}/seeds")
def record_seeds(run_id: int, body: SeedsBody, wb: Wb) -> dict[str, Any]:
    """Add seeds set through weightbase to a run's record."""
    wb.runs.record_seeds(run_id, body.seeds)
    return get_environment(run_id, wb)


@router.put("/runs/{run_id}/status")
def set_status(run_id: int, body: StatusBody, wb: Wb) -> dict[str, Any]:
    """Move a run to a status; 409 if that move is not allowed."""
    usage = None if body.usage is None else body.usage.sample()
    return wb.runs.set_status(run_id, body.status, reason=body.reason, usage=usage).to_dict()


@router.post("/runs/{run_id}/usage", status_code=204)
def add_usage(run_id: int, body: UsageBody, wb: Wb) -> None:
    """Add one process's resource use to a run's totals."""
    wb.runs.get(run_id)
    wb.runs.add_usage(run_id, body.sample())


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


def _metric_filter(text: str) -> MetricFilter:
    match = _FILTER.match(text.strip())
    if match is None:
        raise ValidationError(f"not a metric filter: {text!r}; write it like val/acc>=0.9")
    try:
        value = float(match["value"])
    except ValueError as exc:
        raise ValidationError(f"not a number in metric filter {text!r}") from exc
    name = (match["wrapped"] or match["name"]).strip()
    return MetricFilter.coerce((name, match["op"], value, match["of"] or "last"))


def _param_filter(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise ValidationError(f"not a param filter: {text!r}; write it like lr=0.001")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw  # a bare word is the string it spells
    return name.strip(), value


def _points(name: str, series: SeriesBody) -> np.ndarray[Any, np.dtype[np.float64]]:
    count = len(series.values)
    epochs = series.epochs if series.epochs is not None else [None] * count
    if not len(series.steps) == len(series.times) == len(epochs) == count:
        raise ValidationError(f"the columns of metric {name!r} differ in length")
    points = np.empty((count, 4), dtype=np.float64)
    points[:, 0] = series.steps
    points[:, 1] = [math.nan if epoch is None else epoch for epoch in epochs]
    points[:, 2] = series.times
    points[:, 3] = series.values
    return points


def _experiment_key(text: str) -> str | int:
    """An experiment's name, or its id from ``id:<number>``."""
    return int(text[3:]) if re.fullmatch(r"id:\d+", text) else text


def _offset(after: str | None) -> int:
    if after is None:
        return 0
    if not (after.isascii() and after.isdigit()):
        raise ValidationError(f"not a cursor of this listing: {after!r}")
    return int(after)
