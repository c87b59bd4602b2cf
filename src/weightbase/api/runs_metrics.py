"""``/api/v1/runs/{id}/metrics`` and ``…/writers``: metric points in, histories out.

Points come in batches stored whole or not at all: as JSON
(``POST /runs/{id}/metrics``) or as the packed bytes of
:mod:`weightbase.tracking.wire` (``PUT /runs/{id}/writers/{writer}/batches/{sequence}``),
which is how a remote run's background writer sends them. A batch names its
writer and its sequence number (1, 2, 3… per writer); the catalog keeps each
writer's highest stored sequence in the transaction that stores the points,
so a batch sent again after a lost answer is recognised and not stored twice.
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from weightbase.api.auth import access
from weightbase.api.common import API_PREFIX, workspace
from weightbase.errors import ValidationError
from weightbase.tracking.records import MetricHistory, check_series, series_key
from weightbase.tracking.wire import MEDIA_TYPE, decode_batch
from weightbase.workspace import Workspace

__all__ = ["MAX_POINTS_PER_BATCH", "MAX_POINTS_PER_PACKED_BATCH", "downsample", "router"]

router = APIRouter(prefix=API_PREFIX, tags=["runs"], dependencies=[Depends(access())])

Wb = Annotated[Workspace, Depends(workspace)]

#: The most metric points one JSON ``POST /runs/{id}/metrics`` takes.
MAX_POINTS_PER_BATCH = 100_000
#: The most metric points one packed batch takes (32 bytes each).
MAX_POINTS_PER_PACKED_BATCH = 1_000_000
_MAX_STEP = 2**53

WriterId = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="the writer's id: 1 to 64 letters, digits, - or _ (a UUID's hex)",
    ),
]
Sequence = Annotated[int, Path(ge=1, lt=2**63, description="the batch's number, from 1")]


class MetricPoint(BaseModel):
    """One point: ``value`` of metric ``name`` at ``step`` (NaN and infinities as text).

    With ``dataset`` it belongs to the series ``name@dataset``.
    """

    name: str
    dataset: str | None = None
    value: float
    step: Annotated[int, Field(ge=0, lt=_MAX_STEP)]
    epoch: float | None = None
    time: float | None = Field(default=None, description="Unix seconds; default: now")


class MetricBatch(BaseModel):
    """Points to store in one transaction: all of them, or none.

    With ``writer`` and ``sequence`` the batch is stored at most once: sent again
    with a sequence the writer has had stored, it is answered as a ``repeat``.
    """

    points: Annotated[list[MetricPoint], Field(max_length=MAX_POINTS_PER_BATCH)]
    writer: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None
    sequence: Annotated[int | None, Field(ge=1, lt=2**63)] = None


_PACKED_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "a packed metric batch (weightbase.tracking.wire)",
        "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


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
        key = (
            check_series(point.name)
            if point.dataset is None
            else series_key(point.name, point.dataset)
        )
        grouped.setdefault(key, []).append((float(point.step), epoch, when, point.value))
    batch = {name: np.asarray(rows, dtype=np.float64) for name, rows in grouped.items()}
    if body.writer is None and body.sequence is None:
        wb.runs.metric_store.write(run_id, batch)
        return {"run_id": run_id, "stored": len(body.points)}
    stored = wb.runs.metric_store.write(run_id, batch, writer=body.writer, sequence=body.sequence)
    return _answer(run_id, body.writer, body.sequence, len(body.points), stored)


@router.put("/runs/{run_id}/writers/{writer}/batches/{sequence}", openapi_extra=_PACKED_BODY)
async def put_batch(
    run_id: int, writer: WriterId, sequence: Sequence, request: Request, wb: Wb
) -> dict[str, Any]:
    """Store a packed batch of points, number ``sequence`` of ``writer``: once, however often sent.

    The answer says whether it was stored now or was a ``repeat`` of one stored before.
    """
    batch = decode_batch(await request.body(), max_points=MAX_POINTS_PER_PACKED_BATCH)
    count = sum(int(points.shape[0]) for points in batch.values())
    stored = await run_in_threadpool(
        wb.runs.metric_store.write, run_id, batch, writer=writer, sequence=sequence
    )
    return _answer(run_id, writer, sequence, count, stored)


@router.get("/runs/{run_id}/writers/{writer}")
def get_writer(run_id: int, writer: WriterId, wb: Wb) -> dict[str, Any]:
    """The highest batch sequence stored from ``writer`` into the run (0: none yet)."""
    sequence = wb.runs.metric_store.writer_sequence(run_id, writer)
    return {"run_id": run_id, "writer": writer, "sequence": sequence}


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
    include_superseded: Annotated[
        bool, Query(description="also the points a resume superseded, flagged in `superseded`")
    ] = False,
) -> dict[str, Any]:
    """Every point of one metric of a run, by step; thinned evenly with ``max_points``."""
    found = wb.runs.history(run_id, name, include_superseded=include_superseded)
    data = downsample(found, max_points).to_dict()
    data["total_points"] = len(found)
    return data


class SupersedeBody(BaseModel):
    """The step a run resumes from: points logged after it are superseded."""

    after_step: Annotated[int, Field(ge=-1, lt=_MAX_STEP)]


@router.post("/runs/{run_id}/supersede")
def supersede(run_id: int, body: SupersedeBody, wb: Wb) -> dict[str, Any]:
    """Mark the points logged after ``after_step`` superseded (a resume from a checkpoint there)."""
    count = wb.runs.metric_store.supersede(run_id, body.after_step)
    return {"run_id": run_id, "after_step": body.after_step, "superseded": count}


@router.post("/runs/{run_id}/compact")
def compact(run_id: int, wb: Wb) -> dict[str, Any]:
    """Merge a run's small metric blocks (done when a run ends); how many blocks went."""
    wb.runs.get(run_id)
    return {"run_id": run_id, "removed_blocks": wb.runs.compact(run_id)}


@router.get("/runs/{run_id}/convergence")
def convergence(
    run_id: int,
    wb: Wb,
    train: str = "train/loss",
    validation: Annotated[
        str, Query(description="the validation metric; empty: none; a missing val/loss is skipped")
    ] = "val/loss",
    mode: Literal["min", "max"] = "min",
    window: Annotated[int | None, Query(ge=1)] = None,
    tolerance: Annotated[float | None, Query(ge=0)] = None,
    min_improvement: Annotated[float | None, Query(ge=0)] = None,
    patience: Annotated[int | None, Query(ge=1)] = None,
    min_delta: Annotated[float | None, Query(ge=0)] = None,
    gap_increase: Annotated[float | None, Query(ge=0)] = None,
    min_rise: Annotated[float | None, Query(ge=0)] = None,
    gap_ratio_low: Annotated[float | None, Query(ge=0)] = None,
    gap_ratio_high: Annotated[float | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """Convergence analysis of a run's training (and validation) curve."""
    given = {
        "window": window,
        "tolerance": tolerance,
        "min_improvement": min_improvement,
        "patience": patience,
        "min_delta": min_delta,
        "gap_increase": gap_increase,
        "min_rise": min_rise,
        "gap_ratio_low": gap_ratio_low,
        "gap_ratio_high": gap_ratio_high,
    }
    rules = {rule: value for rule, value in given.items() if value is not None}
    report = wb.runs.convergence(
        run_id, train=train, validation=validation or None, mode=mode, **rules
    )
    return report.to_dict()


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
        superseded=history.superseded[keep],
    )


def _answer(
    run_id: int, writer: str | None, sequence: int | None, count: int, stored: bool
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "writer": writer,
        "sequence": sequence,
        "stored": count if stored else 0,
        "repeat": not stored,
    }
