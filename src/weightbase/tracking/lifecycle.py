"""The life of a run: starting, joining and resuming one, moving its status, adding up its usage.

A run is inserted running (:func:`insert_run`) and handed to the process as an
:class:`~weightbase.tracking.run.ActiveRun` (or, made for another process, as a
plain :class:`~weightbase.tracking.records.Run`); every status move afterwards is
checked against :data:`~weightbase.tracking.records.TRANSITIONS`, audited and
emitted (``run_status_changed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, insert, update

from weightbase.catalog.schema import RunRow, utcnow
from weightbase.errors import Conflict, ValidationError
from weightbase.tracking.context import RUN_KIND
from weightbase.tracking.environment_rows import insert_environment
from weightbase.tracking.experiments import ensure_experiment
from weightbase.tracking.metrics import check_resume_step
from weightbase.tracking.params import (
    canonical_params,
    check_tags,
    insert_params,
    insert_tags,
    param_values,
)
from weightbase.tracking.reads import get_run, load_runs, run_row
from weightbase.tracking.records import TRANSITIONS, Run, RunStatus, check_name
from weightbase.tracking.run import ActiveRun
from weightbase.tracking.system import require_psutil

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from weightbase.tracking.context import RunHost, TrackingContext
    from weightbase.tracking.environment import RunEnvironment
    from weightbase.tracking.system import ResourceSample

__all__ = ["DEFAULT_EXPERIMENT", "Lifecycle", "check_run_name", "insert_run"]

#: The experiment a run joins when ``start`` names none.
DEFAULT_EXPERIMENT = "default"


class Lifecycle:
    """Creating, starting, attaching to and resuming runs; their status and resource use.

    ``host`` is what the handles it returns log params, tags and artifacts
    through, and end their run through (the tracker that holds this part).
    """

    def __init__(self, context: TrackingContext, host: RunHost) -> None:
        self._context = context
        self._host = host

    def create(
        self,
        experiment: str,
        *,
        name: str | None,
        params: Mapping[str, Any] | None,
        tags: Iterable[str],
        environment: RunEnvironment | None = None,
    ) -> Run:
        """A new running run in ``experiment`` (created if new), with no handle on it.

        Nothing of this process is added to its usage: whoever logs into it
        later (``attach``, ``resume``, points sent from elsewhere) counts.
        """
        run_id = self._insert(
            experiment, name=name, params=params, tags=tags, environment=environment
        )
        return get_run(self._context, run_id)

    def start(
        self,
        experiment: str,
        *,
        name: str | None,
        params: Mapping[str, Any] | None,
        tags: Iterable[str],
        system_metrics: bool | float,
        environment: RunEnvironment | None = None,
    ) -> ActiveRun:
        """A new running run in ``experiment`` (created if new), and its owning handle."""
        if system_metrics:
            require_psutil()  # refuse before the run exists
        run_id = self._insert(
            experiment, name=name, params=params, tags=tags, environment=environment
        )
        try:
            return self._handle(
                run_id, experiment, owner=True, next_step=0, system_metrics=system_metrics
            )
        except BaseException as exc:
            self.set_status(run_id, RunStatus.FAILED, reason=f"could not start: {exc}", usage=None)
            raise

    def _insert(
        self,
        experiment: str,
        *,
        name: str | None,
        params: Mapping[str, Any] | None,
        tags: Iterable[str],
        environment: RunEnvironment | None = None,
    ) -> int:
        """Check the arguments and insert the run (and its environment), audited and emitted."""
        check_name(experiment, what="experiment")
        check_run_name(name)
        canonical = canonical_params(params or {})
        tag_values = check_tags(tags)

        def work(session: Session) -> int:
            run_id = insert_run(self._context, session, experiment, name, utcnow(), canonical)
            insert_tags(session, run_id, tag_values)
            if environment is not None:
                insert_environment(session, run_id, environment)
            self._context.recorder.record(
                session,
                "run.start",
                RUN_KIND,
                run_id,
                after={
                    "experiment": experiment,
                    "name": name,
                    "params": param_values(canonical),
                    "tags": sorted(tag_values),
                },
                event="run_started",
            )
            return run_id

        return self._context.catalog.write(work)

    def attach(self, run_id: int, *, system_metrics: bool | float) -> ActiveRun:
        """A handle that logs into a running run alongside others, and owns nothing."""
        run = get_run(self._context, run_id)
        if run.status is not RunStatus.RUNNING:
            raise Conflict(
                f"run {run_id} is {run.status.value}: attach to a running run "
                "(resume() a paused one)",
                run_id=run_id,
                status=run.status.value,
            )
        return self._handle(
            run_id,
            run.experiment,
            owner=False,
            next_step=_next_step(run),
            system_metrics=system_metrics,
        )

    def resume(
        self, run_id: int, *, system_metrics: bool | float, from_step: int | None = None
    ) -> ActiveRun:
        """A run taken back to running (a running one as it is), and its owning handle.

        With ``from_step``, the points logged after that step are superseded first.
        """
        if from_step is not None:  # refused before the run is touched
            check_resume_step(from_step)
        run = get_run(self._context, run_id)
        if run.status is not RunStatus.RUNNING:
            run = self.set_status(run_id, RunStatus.RUNNING, reason=None, usage=None)
        if from_step is not None:
            self._context.metric_store.supersede(run_id, from_step)
            run = get_run(self._context, run_id)
        return self._handle(
            run_id,
            run.experiment,
            owner=True,
            next_step=_next_step(run),
            system_metrics=system_metrics,
        )

    def set_status(
        self,
        run_id: int,
        status: str | RunStatus,
        *,
        reason: str | None,
        usage: ResourceSample | None,
    ) -> Run:
        """Move a run to ``status`` (``Conflict`` if not allowed); add ``usage`` to its totals."""
        target = RunStatus.parse(status)
        if reason is not None and not isinstance(reason, str):
            raise ValidationError(f"a status reason must be text, not {type(reason).__name__}")

        def work(session: Session) -> Run:
            row = run_row(session, run_id, lock=True)
            current = RunStatus(row.status)
            if (current, target) not in TRANSITIONS:
                raise Conflict(
                    f"run {run_id} is {current.value}; it cannot become {target.value}",
                    run_id=run_id,
                    status=current.value,
                    target=target.value,
                )
            values: dict[str, Any] = {"status": target.value, "updated_at": utcnow()}
            if target.live:
                values["status_reason"] = None
            else:
                values["ended_at"] = values["updated_at"]
                values["status_reason"] = reason
            if reason is not None:
                values["status_reason"] = reason
            session.execute(update(RunRow).where(RunRow.id == run_id).values(**values))
            if usage is not None:
                _add_usage(session, run_id, usage)
            self._context.recorder.record(
                session,
                "run.status",
                RUN_KIND,
                run_id,
                before={"status": current.value},
                after={"status": target.value},
                reason=reason,
                event="run_status_changed",
            )
            return load_runs(session, self._context.metric_store, [run_id])[0]

        run = self._context.catalog.write(work)
        if not target.live:
            self._context.metric_store.compact(run_id)
        return run

    def add_usage(self, run_id: int, usage: ResourceSample) -> None:
        """Add one process's resource use to a run's totals."""
        self._context.catalog.write(lambda session: _add_usage(session, run_id, usage))

    def _handle(
        self,
        run_id: int,
        experiment: str,
        *,
        owner: bool,
        next_step: int,
        system_metrics: bool | float,
    ) -> ActiveRun:
        return ActiveRun(
            self._host,
            self._context,
            run_id,
            experiment,
            owner=owner,
            next_step=next_step,
            system_metrics=system_metrics,
        )


def check_run_name(name: object) -> None:
    """``ValidationError`` unless ``name`` is ``None`` or 1 to 255 characters of one-line text."""
    if name is not None and (
        not isinstance(name, str) or not name or len(name) > 255 or _has_control(name)
    ):
        raise ValidationError(
            f"a run name must be 1 to 255 characters without control characters, not {name!r}"
        )


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def insert_run(
    context: TrackingContext,
    session: Session,
    experiment: str,
    name: str | None,
    started_at: datetime,
    params: Mapping[str, str],
) -> int:
    """A new running run in ``experiment`` (created if need be), with its canonical params."""
    run_id: int = session.execute(
        insert(RunRow)
        .values(
            experiment_id=ensure_experiment(context, session, experiment),
            name=name,
            status=RunStatus.RUNNING.value,
            created_by=context.actor,
            started_at=started_at,
            cpu_seconds=0.0,
            gpu_seconds=0.0,
            storage_bytes=0,
        )
        .returning(RunRow.id)
    ).scalar_one()
    insert_params(session, run_id, params)
    return run_id


def _next_step(run: Run) -> int:
    """The step a new handle on ``run`` logs at first: one past the highest logged (not system)."""
    steps = [
        summary.last_step for name, summary in run.metrics.items() if not name.startswith("system/")
    ]
    return max(steps) + 1 if steps else 0


def _add_usage(session: Session, run_id: int, usage: ResourceSample) -> None:
    values: dict[str, Any] = {
        "cpu_seconds": RunRow.cpu_seconds + usage.cpu_seconds,
        "gpu_seconds": RunRow.gpu_seconds + usage.gpu_seconds,
    }
    if usage.peak_memory_bytes is not None:
        peak = usage.peak_memory_bytes
        # the larger of the two, or the new one where none was measured before
        values["peak_memory_bytes"] = case(
            (RunRow.peak_memory_bytes.is_(None), peak),
            (RunRow.peak_memory_bytes < peak, peak),
            else_=RunRow.peak_memory_bytes,
        )
    session.execute(update(RunRow).where(RunRow.id == run_id).values(**values))
