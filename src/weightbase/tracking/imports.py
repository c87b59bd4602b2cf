"""Recording runs made by other tools, with their own times, status and every point.

The generic half of importing: :mod:`weightbase.tracking.mlflow_import` reads
MLflow and calls ``wb.runs.import_run``, which lands here. A run is written
running, its points stored, then its status, end time and tags set in one
transaction, so a run that has its tags was imported whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import update

from weightbase.catalog.schema import RunRow, utcnow
from weightbase.errors import ValidationError
from weightbase.tracking.context import RUN_KIND
from weightbase.tracking.lifecycle import check_run_name, insert_run
from weightbase.tracking.params import canonical_params, check_tags, insert_tags, param_values
from weightbase.tracking.reads import load_runs
from weightbase.tracking.records import Run, RunStatus, check_name

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.tracking.context import TrackingContext
    from weightbase.tracking.lifecycle import Lifecycle

__all__ = ["RunImporter"]


class RunImporter:
    """Writes whole runs made elsewhere; ``lifecycle`` marks one failed if its points fail."""

    def __init__(self, context: TrackingContext, lifecycle: Lifecycle) -> None:
        self._context = context
        self._lifecycle = lifecycle

    def import_run(
        self,
        experiment: str,
        *,
        started_at: datetime,
        ended_at: datetime | None,
        status: str | RunStatus,
        status_reason: str | None,
        name: str | None,
        params: Mapping[str, Any] | None,
        tags: Iterable[str],
        metrics: Mapping[str, Any] | None,
    ) -> Run:
        """Record a run made elsewhere; ``metrics``: name → ``(n, 4)`` step, epoch, time, value."""
        check_name(experiment, what="experiment")
        check_run_name(name)
        target = RunStatus.parse(status)
        if target is RunStatus.RUNNING:
            raise ValidationError("an imported run cannot be running: no process logs into it")
        if not isinstance(started_at, datetime) or started_at.tzinfo is None:
            raise ValidationError(f"started_at must be an aware datetime, not {started_at!r}")
        if ended_at is not None and (not isinstance(ended_at, datetime) or ended_at.tzinfo is None):
            raise ValidationError(f"ended_at must be an aware datetime, not {ended_at!r}")
        canonical = canonical_params(params or {})
        tag_values = check_tags(tags)
        checked = {key: _imported_points(key, points) for key, points in (metrics or {}).items()}
        batch = {key: points for key, points in checked.items() if points.shape[0]}
        context = self._context

        run_id = context.catalog.write(
            lambda session: insert_run(context, session, experiment, name, started_at, canonical)
        )
        try:
            if batch:
                context.metric_store.write(run_id, batch)
        except BaseException as exc:
            self._lifecycle.set_status(
                run_id, RunStatus.FAILED, reason=f"import failed: {exc}", usage=None
            )
            raise

        def finish(session: Session) -> Run:
            values: dict[str, Any] = {
                "status": target.value,
                "status_reason": status_reason,
                "updated_at": utcnow(),
                "ended_at": None if target.live else (ended_at or started_at),
            }
            session.execute(update(RunRow).where(RunRow.id == run_id).values(**values))
            insert_tags(session, run_id, tag_values)
            context.recorder.record(
                session,
                "run.import",
                RUN_KIND,
                run_id,
                after={
                    "experiment": experiment,
                    "name": name,
                    "status": target.value,
                    "params": param_values(canonical),
                    "tags": tag_values,
                    "points": sum(int(points.shape[0]) for points in batch.values()),
                },
                event="run_imported",
            )
            return load_runs(session, context.metric_store, [run_id])[0]

        run = context.catalog.write(finish)
        context.metric_store.compact(run_id)
        return run


def _imported_points(name: str, points: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    """An ``(n, 4)`` float64 array of step, epoch, time, value, checked as ``log`` would."""
    check_name(name)
    try:
        array = np.array(points, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"points of metric {name!r} are not numbers: {exc}") from exc
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValidationError(
            f"points of metric {name!r} must be an (n, 4) array of step, epoch, time, value; "
            f"got shape {array.shape}"
        )
    steps, epochs, times = array[:, 0], array[:, 1], array[:, 2]
    if not (np.isfinite(steps).all() and (steps == np.floor(steps)).all()):
        raise ValidationError(f"steps of metric {name!r} must be whole numbers")
    if array.shape[0] and (steps.min() < 0 or steps.max() >= 2**53):
        raise ValidationError(f"steps of metric {name!r} must be in [0, 2**53)")
    if not np.isfinite(times).all():
        raise ValidationError(f"times of metric {name!r} must be finite Unix seconds")
    given = epochs[~np.isnan(epochs)]
    if not (np.isfinite(given).all() and (given >= 0).all()):
        raise ValidationError(f"epochs of metric {name!r} must be finite numbers ≥ 0 (or NaN)")
    return array
