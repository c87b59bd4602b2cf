"""The run tracker (``wb.runs``): experiments, runs and their params, tags, metrics and artifacts.

    with wb.runs.start(experiment="mnist", params={"lr": 3e-4}, tags=["baseline"]) as run:
        for step in range(1000):
            run.log({"train/loss": loss}, step=step, epoch=step / 100)
    wb.runs.history(run.id, "train/loss").values          # a NumPy array

Every change other than a metric point is audited and emitted as an event in
its own transaction; metric points go through the run's buffered writer
(:mod:`weightbase.tracking.writer`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy import ColumnElement, and_, case, delete, exists, func, insert, select, update

from weightbase.catalog.rows import dialect_insert
from weightbase.catalog.schema import (
    ExperimentRow,
    MetricKeyRow,
    RunArtifactRow,
    RunMetricRow,
    RunParamRow,
    RunRow,
    TagRow,
    utcnow,
)
from weightbase.catalog.values import JSONValue, json_object
from weightbase.changes import ChangeRecorder
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.lineage import LineageService
from weightbase.tracking.metrics import MetricStore
from weightbase.tracking.records import (
    TRANSITIONS,
    Artifact,
    Experiment,
    MetricFilter,
    MetricHistory,
    ResourceUsage,
    Run,
    RunComparison,
    RunPage,
    RunStatus,
    check_name,
)
from weightbase.tracking.run import ActiveRun
from weightbase.tracking.system import ResourceSample, require_psutil

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.tensors import Snapshot, TensorStore
    from weightbase.tracking.convergence import ConvergenceReport

__all__ = ["DEFAULT_EXPERIMENT", "RunTracker"]

#: The experiment a run joins when ``start`` names none.
DEFAULT_EXPERIMENT = "default"

RUN_KIND = "run"
_MAX_TAG = 255
_MAX_PAGE = 1000


class RunTracker:
    """Experiments and runs in one catalog, with artifacts in one tensor store.

    ``recorder`` (default: one of its own on ``catalog``) records every change
    except metric points as an audit entry and an event; ``lineage`` links runs
    to what they used (``ActiveRun.link``).
    ``batch_points`` and ``flush_interval`` tune every run's metric writer.
    """

    def __init__(
        self,
        catalog: Catalog,
        store: TensorStore,
        *,
        recorder: ChangeRecorder | None = None,
        lineage: LineageService | None = None,
        batch_points: int = 100_000,
        flush_interval: float = 1.0,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.metric_store = MetricStore(catalog)
        self._recorder = recorder or ChangeRecorder.on(catalog)
        self._lineage = lineage or LineageService(catalog, recorder=self._recorder)
        self.batch_points = batch_points
        self.flush_interval = flush_interval

    def __repr__(self) -> str:
        return f"RunTracker({self.catalog.url!r})"

    # -- experiments -------------------------------------------------------------------

    def create_experiment(
        self, name: str, *, description: str | None = None, exist_ok: bool = False
    ) -> Experiment:
        """A new experiment; ``Conflict`` if the name is taken (unless ``exist_ok``)."""
        check_name(name, what="experiment")

        def work(session: Session) -> Experiment:
            row = session.scalars(
                select(ExperimentRow).where(ExperimentRow.name == name)
            ).one_or_none()
            if row is not None:
                if exist_ok:
                    return _to_experiment(row)
                raise Conflict(f"experiment {name!r} already exists", experiment=name)
            return self._insert_experiment(session, name, description)

        return self.catalog.write(work)

    def _insert_run(
        self,
        session: Session,
        experiment: str,
        name: str | None,
        started_at: datetime,
        params: Mapping[str, str],
    ) -> int:
        """A new running run in ``experiment`` (created if need be), with its params."""
        row = session.scalars(
            select(ExperimentRow).where(ExperimentRow.name == experiment)
        ).one_or_none()
        experiment_id = (
            row.id if row is not None else self._insert_experiment(session, experiment, None).id
        )
        run_id: int = session.execute(
            insert(RunRow)
            .values(
                experiment_id=experiment_id,
                name=name,
                status=RunStatus.RUNNING.value,
                created_by=self._actor(),
                started_at=started_at,
                cpu_seconds=0.0,
                gpu_seconds=0.0,
                storage_bytes=0,
            )
            .returning(RunRow.id)
        ).scalar_one()
        if params:
            session.execute(
                insert(RunParamRow),
                [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()],
            )
        return run_id

    def _insert_experiment(
        self, session: Session, name: str, description: str | None
    ) -> Experiment:
        experiment_id = session.execute(
            dialect_insert(session)(ExperimentRow)
            .values(name=name, description=description, created_by=self._actor())
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(ExperimentRow.id)
        ).scalar_one_or_none()
        row = session.scalars(select(ExperimentRow).where(ExperimentRow.name == name)).one()
        experiment = _to_experiment(row)
        if experiment_id is not None:
            self._record(
                session,
                "experiment.create",
                "experiment",
                row.id,
                after=experiment.to_dict(),
                event="experiment_created",
            )
        return experiment

    def experiment(self, experiment: str | int) -> Experiment:
        """An experiment by name or id; ``NotFound`` if there is none."""
        with self.catalog.session() as session:
            return _to_experiment(_experiment_row(session, experiment))

    def experiments(self, *, limit: int = 100, offset: int = 0) -> list[Experiment]:
        """Experiments, by name."""
        _check_limit(limit)
        if offset < 0:
            raise ValidationError(f"offset must be at least 0, not {offset}")
        with self.catalog.session() as session:
            rows = session.scalars(
                select(ExperimentRow).order_by(ExperimentRow.name).limit(limit).offset(offset)
            )
            return [_to_experiment(row) for row in rows]

    # -- starting and joining runs -------------------------------------------------------

    def start(
        self,
        experiment: str = DEFAULT_EXPERIMENT,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        system_metrics: bool | float = False,
    ) -> ActiveRun:
        """Start a run in ``experiment`` (created if new) and return its handle.

        Use it as a context manager: the run completes when the block ends,
        fails if it raises (cancelled on ``KeyboardInterrupt``). With
        ``system_metrics`` (``True`` for every 10 s, or an interval in seconds)
        CPU, memory and GPU use are sampled into ``system/…`` metrics.
        """
        check_name(experiment, what="experiment")
        if name is not None and (not isinstance(name, str) or not name or len(name) > 255):
            raise ValidationError(f"a run name must be 1 to 255 characters, not {name!r}")
        param_values = _canonical_params(params or {})
        tag_values = _check_tags(tags)
        if system_metrics:
            require_psutil()  # refuse before the run exists

        def work(session: Session) -> int:
            run_id = self._insert_run(session, experiment, name, utcnow(), param_values)
            self._insert_tags(session, run_id, tag_values)
            self._record(
                session,
                "run.start",
                RUN_KIND,
                run_id,
                after={
                    "experiment": experiment,
                    "name": name,
                    "params": {k: json.loads(v) for k, v in param_values.items()},
                    "tags": sorted(tag_values),
                },
                event="run_started",
            )
            return run_id

        run_id = self.catalog.write(work)
        try:
            return ActiveRun(
                self, run_id, experiment, owner=True, next_step=0, system_metrics=system_metrics
            )
        except BaseException as exc:
            self.set_status(run_id, RunStatus.FAILED, reason=f"could not start: {exc}")
            raise

    def attach(self, run_id: int, *, system_metrics: bool | float = False) -> ActiveRun:
        """Join a running run, from this or another process, to log into it alongside others.

        The handle's ``close`` (or the end of its ``with`` block) flushes and
        lets go without changing the run's status; its resource use is added
        to the run's. Steps continue after the highest step logged so far, but
        processes logging one metric together should pass their own steps.
        """
        run = self.get(run_id)
        if run.status is not RunStatus.RUNNING:
            raise Conflict(
                f"run {run_id} is {run.status.value}: attach to a running run "
                "(resume() a paused one)",
                run_id=run_id,
                status=run.status.value,
            )
        return ActiveRun(
            self,
            run_id,
            run.experiment,
            owner=False,
            next_step=_next_step(run),
            system_metrics=system_metrics,
        )

    def resume(self, run_id: int, *, system_metrics: bool | float = False) -> ActiveRun:
        """Take a paused, failed or cancelled run back to running; return a handle that owns it.

        A run still marked running (its process was killed before it could say
        otherwise) is taken over as it is. Training resumed from a checkpoint
        goes on logging into the same run, after its last step.
        """
        current = self.get(run_id)
        if current.status is RunStatus.RUNNING:
            run = current
        else:
            run = self.set_status(run_id, RunStatus.RUNNING)
        return ActiveRun(
            self,
            run_id,
            run.experiment,
            owner=True,
            next_step=_next_step(run),
            system_metrics=system_metrics,
        )

    # -- runs made elsewhere ------------------------------------------------------------

    def import_run(
        self,
        experiment: str,
        *,
        started_at: datetime,
        ended_at: datetime | None = None,
        status: str | RunStatus = RunStatus.COMPLETED,
        status_reason: str | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        metrics: Mapping[str, Any] | None = None,
    ) -> Run:
        """Record a run made by another tool, with its own times and status, and all its points.

        ``metrics`` maps each metric name to an ``(n, 4)`` array of points with
        columns step, epoch (NaN for none), time (Unix seconds) and value. The
        run is written as running, its points stored, then it takes ``status``
        (``paused`` or a final one) and ``ended_at`` in one step, tags included:
        a run that has its tags was imported whole. If storing the points fails
        the run is marked failed, saying so, and the error is raised.
        """
        check_name(experiment, what="experiment")
        if name is not None and (not isinstance(name, str) or not name or len(name) > 255):
            raise ValidationError(f"a run name must be 1 to 255 characters, not {name!r}")
        target = RunStatus.parse(status)
        if target is RunStatus.RUNNING:
            raise ValidationError("an imported run cannot be running: no process logs into it")
        if not isinstance(started_at, datetime) or started_at.tzinfo is None:
            raise ValidationError(f"started_at must be an aware datetime, not {started_at!r}")
        if ended_at is not None and (not isinstance(ended_at, datetime) or ended_at.tzinfo is None):
            raise ValidationError(f"ended_at must be an aware datetime, not {ended_at!r}")
        param_values = _canonical_params(params or {})
        tag_values = _check_tags(tags)
        checked = {key: _imported_points(key, points) for key, points in (metrics or {}).items()}
        batch = {key: points for key, points in checked.items() if points.shape[0]}

        def start(session: Session) -> int:
            run_id = self._insert_run(session, experiment, name, started_at, param_values)
            return run_id

        run_id = self.catalog.write(start)
        try:
            if batch:
                self.metric_store.write(run_id, batch)
        except BaseException as exc:
            self.set_status(run_id, RunStatus.FAILED, reason=f"import failed: {exc}")
            raise

        def finish(session: Session) -> Run:
            values: dict[str, Any] = {
                "status": target.value,
                "status_reason": status_reason,
                "updated_at": utcnow(),
                "ended_at": None if target.live else (ended_at or started_at),
            }
            session.execute(update(RunRow).where(RunRow.id == run_id).values(**values))
            self._insert_tags(session, run_id, tag_values)
            self._record(
                session,
                "run.import",
                RUN_KIND,
                run_id,
                after={
                    "experiment": experiment,
                    "name": name,
                    "status": target.value,
                    "params": {k: json.loads(v) for k, v in param_values.items()},
                    "tags": tag_values,
                    "points": sum(int(points.shape[0]) for points in batch.values()),
                },
                event="run_imported",
            )
            return self._load_runs(session, [run_id])[0]

        run = self.catalog.write(finish)
        self.metric_store.compact(run_id)
        return run

    # -- status and bookkeeping, shared with ActiveRun -----------------------------------

    def set_status(
        self,
        run_id: int,
        status: str | RunStatus,
        *,
        reason: str | None = None,
        usage: ResourceSample | None = None,
    ) -> Run:
        """Move a run to ``status``; ``Conflict`` if that move is not allowed (see RunStatus).

        A final status sets ``ended_at`` and merges the run's metric blocks.
        ``usage`` adds one process's resource use to the run's.
        """
        target = RunStatus.parse(status)
        if reason is not None and not isinstance(reason, str):
            raise ValidationError(f"a status reason must be text, not {type(reason).__name__}")

        def work(session: Session) -> Run:
            row = _run_row(session, run_id, lock=True)
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
            self._record(
                session,
                "run.status",
                RUN_KIND,
                run_id,
                before={"status": current.value},
                after={"status": target.value},
                reason=reason,
                event="run_status_changed",
            )
            return self._load_runs(session, [run_id])[0]

        run = self.catalog.write(work)
        if not target.live:
            self.metric_store.compact(run_id)
        return run

    def add_usage(self, run_id: int, usage: ResourceSample) -> None:
        """Add one process's resource use to a run's totals."""
        self.catalog.write(lambda session: _add_usage(session, run_id, usage))

    def log_params(self, run_id: int, params: Mapping[str, Any]) -> None:
        """Record params of a run; one logged before with another value is a ``Conflict``."""
        values = _canonical_params(params)
        if not values:
            return

        def work(session: Session) -> None:
            _run_row(session, run_id)
            existing = dict(
                session.execute(
                    select(RunParamRow.key, RunParamRow.value).where(
                        RunParamRow.run_id == run_id, RunParamRow.key.in_(values)
                    )
                ).all()
            )
            for key, value in values.items():
                if key in existing and existing[key] != value:
                    raise Conflict(
                        f"run {run_id} already has param {key!r} = {existing[key]}, "
                        f"not {value}; params cannot change",
                        run_id=run_id,
                        param=key,
                    )
            new = {key: value for key, value in values.items() if key not in existing}
            if not new:
                return
            session.execute(
                insert(RunParamRow),
                [{"run_id": run_id, "key": key, "value": value} for key, value in new.items()],
            )
            self._record(
                session,
                "run.log_params",
                RUN_KIND,
                run_id,
                after={key: json.loads(value) for key, value in new.items()},
                event="run_params_logged",
            )

        self.catalog.write(work)

    def set_tags(self, run_id: int, tags: Iterable[str]) -> None:
        """Add tags to a run (tags it has already are kept once)."""
        tag_values = _check_tags(tags)

        def work(session: Session) -> None:
            _run_row(session, run_id)
            added = self._insert_tags(session, run_id, tag_values)
            if added:
                self._record(
                    session, "run.set_tags", RUN_KIND, run_id, after={"tags": added}, event=None
                )

        self.catalog.write(work)

    def remove_tags(self, run_id: int, tags: Iterable[str]) -> None:
        """Take tags off a run (absent ones are ignored)."""
        tag_values = _check_tags(tags)

        def work(session: Session) -> None:
            _run_row(session, run_id)
            removed = session.execute(
                delete(TagRow)
                .where(
                    TagRow.entity_kind == RUN_KIND,
                    TagRow.entity_id == run_id,
                    TagRow.tag.in_(tag_values),
                )
                .returning(TagRow.tag)
            ).scalars()
            gone = sorted(removed)
            if gone:
                self._record(
                    session, "run.remove_tags", RUN_KIND, run_id, before={"tags": gone}, event=None
                )

        self.catalog.write(work)

    def _insert_tags(self, session: Session, run_id: int, tags: Sequence[str]) -> list[str]:
        if not tags:
            return []
        inserted = session.execute(
            dialect_insert(session)(TagRow)
            .values([{"entity_kind": RUN_KIND, "entity_id": run_id, "tag": tag} for tag in tags])
            .on_conflict_do_nothing()
            .returning(TagRow.tag)
        ).scalars()
        return sorted(inserted)

    # -- artifacts ---------------------------------------------------------------------

    def log_artifact(
        self,
        run_id: int,
        source: str | os.PathLike[str] | Mapping[str, Any],
        *,
        name: str | None = None,
        overwrite: bool = False,
    ) -> Artifact:
        """Keep a file, a folder or named arrays as an artifact of a run, in the tensor store.

        ``name`` defaults to the file or folder's name (arrays need one). An
        artifact of that name already there is a ``Conflict`` unless ``overwrite``.
        """
        kind: Literal["tensors", "file", "folder"]
        if isinstance(source, Mapping):
            if name is None:
                raise ValidationError("arrays logged as an artifact need a name")
            kind = "tensors"
        else:
            path = Path(os.fspath(source))
            if not path.exists():
                raise NotFound(f"no file or folder {str(path)!r} to log", path=str(path))
            kind = "folder" if path.is_dir() else "file"
            name = name if name is not None else path.name
        check_name(name, what="artifact")
        self.get(run_id)  # NotFound before anything is written to the store
        if not overwrite:
            with self.catalog.session() as session:
                _check_no_artifact(session, run_id, name)
        ref = f"runs/{run_id}/artifacts/{name}"
        if kind == "tensors":
            assert isinstance(source, Mapping)
            snapshot = self.store.write(source, ref=ref, metadata={"run_id": str(run_id)})
        else:
            snapshot = self.store.write(
                {},
                ref=ref,
                files=_file_sources(path, kind),
                metadata={"run_id": str(run_id)},
            )
        size = _logical_size(snapshot)
        stored = snapshot.stored_bytes

        def work(session: Session) -> Artifact:
            _run_row(session, run_id)
            row = session.scalars(
                select(RunArtifactRow).where(
                    RunArtifactRow.run_id == run_id, RunArtifactRow.name == name
                )
            ).one_or_none()
            before = None if row is None else _to_artifact(row).to_dict()
            if row is not None and not overwrite:
                _check_no_artifact(session, run_id, name)
            if row is None:
                row = RunArtifactRow(run_id=run_id, name=name)
                session.add(row)
            row.kind = kind
            row.snapshot_id = snapshot.id
            row.size_bytes = size
            row.stored_bytes = stored
            row.created_at = utcnow()
            session.flush()
            total = session.execute(
                select(func.coalesce(func.sum(RunArtifactRow.stored_bytes), 0)).where(
                    RunArtifactRow.run_id == run_id
                )
            ).scalar_one()
            session.execute(
                update(RunRow).where(RunRow.id == run_id).values(storage_bytes=int(total))
            )
            artifact = _to_artifact(row)
            self._record(
                session,
                "run.log_artifact",
                RUN_KIND,
                run_id,
                before=before,
                after=artifact.to_dict(),
                event="run_artifact_logged",
            )
            return artifact

        return self.catalog.write(work)

    def artifacts(self, run_id: int) -> list[Artifact]:
        """A run's artifacts, by name."""
        with self.catalog.session() as session:
            _run_row(session, run_id)
            rows = session.scalars(
                select(RunArtifactRow)
                .where(RunArtifactRow.run_id == run_id)
                .order_by(RunArtifactRow.name)
            )
            return [_to_artifact(row) for row in rows]

    def artifact(self, run_id: int, name: str) -> Artifact:
        """One artifact of a run; ``NotFound`` if it has none of that name."""
        with self.catalog.session() as session:
            _run_row(session, run_id)
            row = session.scalars(
                select(RunArtifactRow).where(
                    RunArtifactRow.run_id == run_id, RunArtifactRow.name == name
                )
            ).one_or_none()
            if row is None:
                raise NotFound(f"run {run_id} has no artifact {name!r}", run_id=run_id, name=name)
            return _to_artifact(row)

    def load_artifact(self, run_id: int, name: str) -> dict[str, Any]:
        """An artifact's contents: ``{name: array}`` for arrays, ``{path: bytes}`` for files."""
        artifact = self.artifact(run_id, name)
        if artifact.kind == "tensors":
            return self.store.read(artifact.snapshot_id)
        snapshot = self.store.snapshot(artifact.snapshot_id)
        return {path: self.store.file_bytes(snapshot, path) for path in snapshot.files}

    # -- reading runs ------------------------------------------------------------------

    def get(self, run_id: int) -> Run:
        """A run; ``NotFound`` if there is none with this id."""
        _check_run_id(run_id)
        with self.catalog.session() as session:
            runs = self._load_runs(session, [run_id])
        if not runs:
            raise NotFound(f"no run {run_id}", run_id=run_id)
        return runs[0]

    def search(
        self,
        *,
        experiment: str | int | None = None,
        status: str | RunStatus | Iterable[str | RunStatus] | None = None,
        tags: Iterable[str] = (),
        params: Mapping[str, Any] | None = None,
        metrics: Iterable[MetricFilter | Sequence[Any]] = (),
        name: str | None = None,
        limit: int = 50,
        page_token: str | None = None,
    ) -> RunPage:
        """Runs matching every filter given, newest first, ``limit`` at a time.

        ``tags``: runs with all of them; ``params``: runs whose param equals the
        value (as JSON: ``1`` and ``1.0`` differ); ``metrics``: filters like
        ``("val/acc", ">=", 0.9)`` on each metric's latest value (or
        ``MetricFilter(..., of="min")``). Pass the page's ``next_page_token``
        for the next page.
        """
        _check_limit(limit)
        conditions: list[ColumnElement[bool]] = []
        with self.catalog.session() as session:
            if experiment is not None:
                conditions.append(RunRow.experiment_id == _experiment_row(session, experiment).id)
            if status is not None:
                statuses = [status] if isinstance(status, str | RunStatus) else list(status)
                conditions.append(RunRow.status.in_([RunStatus.parse(s).value for s in statuses]))
            if name is not None:
                conditions.append(RunRow.name == name)
            for tag in _check_tags(tags):
                conditions.append(
                    exists().where(
                        TagRow.entity_kind == RUN_KIND,
                        TagRow.entity_id == RunRow.id,
                        TagRow.tag == tag,
                    )
                )
            for key, value in _canonical_params(params or {}).items():
                conditions.append(
                    exists().where(
                        RunParamRow.run_id == RunRow.id,
                        RunParamRow.key == key,
                        RunParamRow.value == value,
                    )
                )
            filters = [MetricFilter.coerce(item) for item in metrics]
            key_ids = self.metric_store.key_ids(f.name for f in filters)
            for metric_filter in filters:
                if metric_filter.name not in key_ids:
                    return RunPage((), None)  # nothing ever logged that metric
                conditions.append(_metric_condition(metric_filter, key_ids[metric_filter.name]))
            if page_token is not None:
                conditions.append(RunRow.id < _parse_token(page_token))
            ids = list(
                session.scalars(
                    select(RunRow.id)
                    .where(and_(True, *conditions))
                    .order_by(RunRow.id.desc())
                    .limit(limit + 1)
                )
            )
            more = len(ids) > limit
            ids = ids[:limit]
            runs = self._load_runs(session, ids)
        return RunPage(tuple(runs), str(ids[-1]) if more else None)

    def search_all(self, **filters: Any) -> list[Run]:
        """Every run matching ``filters`` (those of :meth:`search`), newest first, all pages."""
        filters.pop("page_token", None)
        filters.setdefault("limit", _MAX_PAGE)
        found: list[Run] = []
        token: str | None = None
        while True:
            page = self.search(page_token=token, **filters)
            found.extend(page.runs)
            token = page.next_page_token
            if token is None:
                return found

    def _load_runs(self, session: Session, run_ids: Sequence[int]) -> list[Run]:
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
        summaries = self.metric_store.summaries(session, list(rows))
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
                    resources=ResourceUsage(
                        cpu_hours=row.cpu_seconds / 3600,
                        gpu_hours=row.gpu_seconds / 3600,
                        peak_memory_bytes=row.peak_memory_bytes,
                        storage_bytes=row.storage_bytes,
                    ),
                    started_at=row.started_at,
                    updated_at=row.updated_at,
                    ended_at=row.ended_at,
                    created_by=row.created_by,
                )
            )
        return found

    # -- metrics -----------------------------------------------------------------------

    def history(self, run_id: int, name: str) -> MetricHistory:
        """Every point of one metric of a run, as NumPy arrays ordered by step.

        ``NotFound`` if the run does not exist or never logged ``name``. Points
        still in a writer's buffer are not there yet (``flush`` first).
        """
        _check_run_id(run_id)
        check_name(name)
        return self.metric_store.history(run_id, name)

    def metric_names(self, run_id: int) -> list[str]:
        """The names of the metrics a run has logged, sorted."""
        with self.catalog.session() as session:
            _run_row(session, run_id)
            names = session.scalars(
                select(MetricKeyRow.name)
                .join(RunMetricRow, RunMetricRow.key_id == MetricKeyRow.id)
                .where(RunMetricRow.run_id == run_id)
                .order_by(MetricKeyRow.name)
            )
            return list(names)

    def compact(self, run_id: int) -> int:
        """Merge a run's metric blocks (done when a run ends); the number of blocks removed."""
        _check_run_id(run_id)
        return self.metric_store.compact(run_id)

    def compare(
        self,
        runs: Iterable[int | Run],
        *,
        metrics: Iterable[str] | None = None,
        params: Iterable[str] | None = None,
        include_system: bool = False,
    ) -> RunComparison:
        """Runs side by side: their params, and each metric's latest value.

        ``metrics`` and ``params`` pick the rows (default: every one any run
        has; ``system/…`` metrics only with ``include_system``).
        """
        ids = [run.id if isinstance(run, Run) else run for run in runs]
        if not ids:
            raise ValidationError("compare needs at least one run")
        for run_id in ids:
            _check_run_id(run_id)
        with self.catalog.session() as session:
            loaded = {run.id: run for run in self._load_runs(session, list(dict.fromkeys(ids)))}
        missing = [run_id for run_id in ids if run_id not in loaded]
        if missing:
            raise NotFound(f"no run {missing[0]}", run_id=missing[0])
        ordered = [loaded[run_id] for run_id in ids]
        param_names = (
            sorted({key for run in ordered for key in run.params})
            if params is None
            else list(params)
        )
        metric_names = (
            sorted(
                {
                    key
                    for run in ordered
                    for key in run.metrics
                    if include_system or not key.startswith("system/")
                }
            )
            if metrics is None
            else list(metrics)
        )
        param_table = {key: tuple(run.params.get(key) for run in ordered) for key in param_names}
        metric_table = {
            key: tuple(run.metrics[key].last if key in run.metrics else None for run in ordered)
            for key in metric_names
        }
        differing = tuple(
            key
            for key, values in param_table.items()
            if len({json.dumps(value, sort_keys=True) for value in values}) > 1
        )
        return RunComparison(
            run_ids=tuple(ids),
            run_names=tuple(run.name for run in ordered),
            params=param_table,
            metrics=metric_table,
            differing_params=differing,
        )

    def convergence(
        self,
        run_id: int,
        *,
        train: str = "train/loss",
        validation: str | None = "val/loss",
        mode: Literal["min", "max"] = "min",
        **rules: Any,
    ) -> ConvergenceReport:
        """Convergence analysis of a run's training (and validation) curve.

        The curves are lined up by epoch when every point has one, else by
        step, and ``suggested_stop`` is in those units. A missing ``val/loss``
        (the default) is skipped; ``rules`` override the thresholds of
        :func:`weightbase.tracking.convergence.analyze`.
        """
        from weightbase.tracking.convergence import analyze

        train_history = self.history(run_id, train)
        validation_history = None
        if validation is not None:
            try:
                validation_history = self.history(run_id, validation)
            except NotFound:
                if validation != "val/loss":
                    raise
        histories = (
            [train_history] if validation_history is None else [train_history, validation_history]
        )
        # Epochs when every point has one, else steps: the report speaks in those units.
        use_epochs = all(bool(np.isfinite(h.epochs).all()) for h in histories)

        def x_of(history: MetricHistory) -> Any:
            return history.epochs if use_epochs else history.steps

        return analyze(
            train_history.values,
            None if validation_history is None else validation_history.values,
            train_x=x_of(train_history),
            validation_x=None if validation_history is None else x_of(validation_history),
            mode=mode,
            **rules,
        )

    # -- helpers -----------------------------------------------------------------------

    def _actor(self) -> str:
        return self._recorder.actor

    def _record(
        self,
        session: Session,
        action: str,
        entity_kind: str,
        entity_id: int,
        *,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        reason: str | None = None,
        event: str | None,
    ) -> None:
        self._recorder.record(
            session,
            action,
            entity_kind,
            entity_id,
            before=before,
            after=after,
            reason=reason,
            event=event,
        )


# -- module helpers ----------------------------------------------------------------------


def _check_run_id(run_id: object) -> None:
    if isinstance(run_id, bool) or not isinstance(run_id, int | np.integer):
        raise ValidationError(f"a run id is an integer, not {run_id!r}", run_id=run_id)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= _MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {_MAX_PAGE}, not {limit}")


def _parse_token(token: str) -> int:
    try:
        value = int(token)
    except (TypeError, ValueError):
        raise ValidationError(f"not a page token from this search: {token!r}") from None
    if value < 1:
        raise ValidationError(f"not a page token from this search: {token!r}")
    return value


def _run_row(session: Session, run_id: int, *, lock: bool = False) -> RunRow:
    _check_run_id(run_id)
    statement = select(RunRow).where(RunRow.id == int(run_id))
    if lock:
        statement = statement.with_for_update()
    row = session.scalars(statement).one_or_none()
    if row is None:
        raise NotFound(f"no run {run_id}", run_id=run_id)
    return row


def _experiment_row(session: Session, experiment: str | int) -> ExperimentRow:
    if isinstance(experiment, bool) or not isinstance(experiment, str | int):
        raise ValidationError(f"an experiment is a name or an id, not {experiment!r}")
    column = ExperimentRow.name if isinstance(experiment, str) else ExperimentRow.id
    row = session.scalars(select(ExperimentRow).where(column == experiment)).one_or_none()
    if row is None:
        raise NotFound(f"no experiment {experiment!r}", experiment=experiment)
    return row


def _to_experiment(row: ExperimentRow) -> Experiment:
    return Experiment(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _to_artifact(row: RunArtifactRow) -> Artifact:
    kind: Literal["tensors", "file", "folder"] = row.kind  # type: ignore[assignment]
    return Artifact(
        run_id=row.run_id,
        name=row.name,
        kind=kind,
        snapshot_id=row.snapshot_id,
        size_bytes=row.size_bytes,
        stored_bytes=row.stored_bytes,
        created_at=row.created_at,
    )


def _check_no_artifact(session: Session, run_id: int, name: str) -> None:
    taken = session.execute(
        select(RunArtifactRow.id).where(
            RunArtifactRow.run_id == run_id, RunArtifactRow.name == name
        )
    ).first()
    if taken is not None:
        raise Conflict(
            f"run {run_id} already has an artifact {name!r} (overwrite=True replaces it)",
            run_id=run_id,
            name=name,
        )


def _file_sources(path: Path, kind: str) -> list[Any]:
    from weightbase.tensors import FileSource

    if kind == "file":
        return [FileSource(name=path.name, data=path.read_bytes())]
    files = sorted(item for item in path.rglob("*") if item.is_file())
    return [
        FileSource(name=item.relative_to(path).as_posix(), data=item.read_bytes()) for item in files
    ]


def _logical_size(snapshot: Snapshot) -> int:
    return sum(entry.nbytes for entry in snapshot.tensors.values()) + sum(
        entry.size for entry in snapshot.files.values()
    )


def _canonical_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Param name → canonical JSON text of its value (names checked, values JSON-able)."""
    if not isinstance(params, Mapping):
        raise ValidationError(f"params must be a mapping, not {type(params).__name__}")
    for key in params:
        check_name(key, what="param")
    data = json_object(params, what="params")
    return {
        key: json.dumps(value, sort_keys=True, separators=(",", ":")) for key, value in data.items()
    }


def _check_tags(tags: Iterable[str]) -> list[str]:
    if isinstance(tags, str):
        tags = [tags]
    found = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > _MAX_TAG:
            raise ValidationError(f"a tag must be 1 to {_MAX_TAG} characters, not {tag!r}")
        found.append(tag.strip())
    return sorted(set(found))


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


def _next_step(run: Run) -> int:
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
        values["peak_memory_bytes"] = case(
            (RunRow.peak_memory_bytes.is_(None), peak),
            (RunRow.peak_memory_bytes < peak, peak),
            else_=RunRow.peak_memory_bytes,
        )
    session.execute(update(RunRow).where(RunRow.id == run_id).values(**values))


def _metric_condition(metric_filter: MetricFilter, key_id: int) -> ColumnElement[bool]:
    column = {
        "last": RunMetricRow.last_value,
        "min": RunMetricRow.min_value,
        "max": RunMetricRow.max_value,
    }[metric_filter.of]
    value = float(metric_filter.value)
    comparison = {
        "<": column < value,
        "<=": column <= value,
        ">": column > value,
        ">=": column >= value,
        "==": column == value,
        "!=": column != value,
    }[metric_filter.op]
    return exists().where(
        RunMetricRow.run_id == RunRow.id,
        RunMetricRow.key_id == key_id,
        comparison,
    )
