"""Reading runs and experiments from the catalog: the lookups every part of the tracker shares.

Rows become frozen records here (:class:`~weightbase.tracking.records.Run`,
:class:`~weightbase.tracking.records.Experiment`); nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from weightbase.catalog.schema import ExperimentRow, RunParamRow, RunRow, TagRow
from weightbase.errors import NotFound, ValidationError
from weightbase.tracking.context import RUN_KIND
from weightbase.tracking.records import Experiment, ResourceUsage, Run, RunStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog.values import JSONValue
    from weightbase.tracking.context import TrackingContext
    from weightbase.tracking.metrics import MetricStore

__all__ = [
    "MAX_PAGE",
    "check_limit",
    "check_run_id",
    "experiment_row",
    "get_run",
    "load_runs",
    "run_row",
    "to_experiment",
]

#: The most rows one listing returns.
MAX_PAGE = 1000


def check_run_id(run_id: object) -> None:
    """``ValidationError`` unless ``run_id`` is an integer (a bool is not one)."""
    if isinstance(run_id, bool) or not isinstance(run_id, int | np.integer):
        raise ValidationError(f"a run id is an integer, not {run_id!r}", run_id=run_id)


def check_limit(limit: int) -> None:
    """``ValidationError`` unless ``1 <= limit <= MAX_PAGE``."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")


def run_row(session: Session, run_id: int, *, lock: bool = False) -> RunRow:
    """The row of run ``run_id`` (locked for update with ``lock``); ``NotFound`` if none."""
    check_run_id(run_id)
    statement = select(RunRow).where(RunRow.id == int(run_id))
    if lock:
        statement = statement.with_for_update()
    row = session.scalars(statement).one_or_none()
    if row is None:
        raise NotFound(f"no run {run_id}", run_id=run_id)
    return row


def experiment_row(session: Session, experiment: str | int) -> ExperimentRow:
    """The row of an experiment, by name or id; ``NotFound`` if none."""
    if isinstance(experiment, bool) or not isinstance(experiment, str | int):
        raise ValidationError(f"an experiment is a name or an id, not {experiment!r}")
    column = ExperimentRow.name if isinstance(experiment, str) else ExperimentRow.id
    row = session.scalars(select(ExperimentRow).where(column == experiment)).one_or_none()
    if row is None:
        raise NotFound(f"no experiment {experiment!r}", experiment=experiment)
    return row


def to_experiment(row: ExperimentRow) -> Experiment:
    """The record of an experiment row."""
    return Experiment(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def get_run(context: TrackingContext, run_id: int) -> Run:
    """A run; ``NotFound`` if there is none with this id."""
    check_run_id(run_id)
    with context.catalog.session() as session:
        runs = load_runs(session, context.metric_store, [run_id])
    if not runs:
        raise NotFound(f"no run {run_id}", run_id=run_id)
    return runs[0]


def load_runs(session: Session, metric_store: MetricStore, run_ids: Sequence[int]) -> list[Run]:
    """Full records of ``run_ids``, in that order (missing ones left out)."""
    if not run_ids:
        return []
    rows = {
        row.id: (row, experiment)
        for row, experiment in session.execute(
            select(RunRow, ExperimentRow.name)
            .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
            .where(RunRow.id.in_(run_ids))
        )
    }
    params: dict[int, dict[str, JSONValue]] = {run_id: {} for run_id in rows}
    for run_id, key, value in session.execute(
        select(RunParamRow.run_id, RunParamRow.key, RunParamRow.value)
        .where(RunParamRow.run_id.in_(rows))
        .order_by(RunParamRow.key)
    ):
        params[run_id][key] = json.loads(value)
    tags: dict[int, list[str]] = {run_id: [] for run_id in rows}
    for run_id, tag in session.execute(
        select(TagRow.entity_id, TagRow.tag)
        .where(TagRow.entity_kind == RUN_KIND, TagRow.entity_id.in_(rows))
        .order_by(TagRow.tag)
    ):
        tags[run_id].append(tag)
    summaries = metric_store.summaries(session, list(rows))
    found = []
    for run_id in run_ids:
        if run_id not in rows:
            continue
        row, experiment = rows[run_id]
        found.append(
            Run(
                id=row.id,
                experiment_id=row.experiment_id,
                experiment=experiment,
                name=row.name,
                status=RunStatus(row.status),
                status_reason=row.status_reason,
                params=params[run_id],
                tags=tuple(tags[run_id]),
                metrics=summaries[run_id],
                resources=_resources(row),
                started_at=row.started_at,
                updated_at=row.updated_at,
                ended_at=row.ended_at,
                created_by=row.created_by,
            )
        )
    return found


def _resources(row: RunRow) -> ResourceUsage:
    return ResourceUsage(
        cpu_hours=row.cpu_seconds / 3600,
        gpu_hours=row.gpu_seconds / 3600,
        peak_memory_bytes=row.peak_memory_bytes,
        storage_bytes=row.storage_bytes,
    )
