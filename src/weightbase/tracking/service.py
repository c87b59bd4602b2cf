"""The run tracker (``wb.runs``): experiments, runs and their params, tags, metrics and artifacts.

    with wb.runs.start(experiment="mnist", params={"lr": 3e-4}, tags=["baseline"]) as run:
        for step in range(1000):
            run.log({"train/loss": loss}, step=step, epoch=step / 100)
    wb.runs.history(run.id, "train/loss").values          # a NumPy array

:class:`RunTracker` holds the public API and its defaults; each call is done by
one part, all sharing one :class:`~weightbase.tracking.context.TrackingContext`:
:mod:`~weightbase.tracking.experiments`, :mod:`~weightbase.tracking.lifecycle`,
:mod:`~weightbase.tracking.params` (and tags), :mod:`~weightbase.tracking.artifacts`,
:mod:`~weightbase.tracking.imports` and :mod:`~weightbase.tracking.search`.
Every change other than a metric point is audited and emitted as an event in
its own transaction; metric points go through the run's buffered writer
(:mod:`weightbase.tracking.writer`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from weightbase.changes import ChangeRecorder
from weightbase.lineage import LineageService
from weightbase.tracking.artifacts import Artifacts
from weightbase.tracking.capture import environment_to_record
from weightbase.tracking.context import TrackingContext
from weightbase.tracking.environment_rows import RunEnvironments
from weightbase.tracking.experiments import Experiments
from weightbase.tracking.imports import RunImporter
from weightbase.tracking.lifecycle import DEFAULT_EXPERIMENT, Lifecycle
from weightbase.tracking.metrics import MetricStore
from weightbase.tracking.params import ParamsAndTags
from weightbase.tracking.records import RunStatus, series_key
from weightbase.tracking.search import RunSearch

if TYPE_CHECKING:
    from datetime import datetime

    from weightbase.catalog import Catalog
    from weightbase.tensors import Snapshot, TensorStore
    from weightbase.tracking.convergence import ConvergenceReport
    from weightbase.tracking.environment import EnvironmentDiff, RunEnvironment
    from weightbase.tracking.records import (
        Artifact,
        Experiment,
        MetricFilter,
        MetricHistory,
        Run,
        RunComparison,
        RunPage,
    )
    from weightbase.tracking.run import ActiveRun
    from weightbase.tracking.system import ResourceSample

__all__ = ["DEFAULT_EXPERIMENT", "RunTracker"]


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
        recorder = recorder or ChangeRecorder.on(catalog)
        context = TrackingContext(
            catalog=catalog,
            store=store,
            metric_store=MetricStore(catalog),
            recorder=recorder,
            lineage=lineage or LineageService(catalog, recorder=recorder),
            batch_points=batch_points,
            flush_interval=flush_interval,
        )
        self.catalog = catalog
        self.store = store
        self.metric_store = context.metric_store
        self._experiments = Experiments(context)
        self._lifecycle = Lifecycle(context, host=self)
        self._params = ParamsAndTags(context)
        self._artifacts = Artifacts(context)
        self._importer = RunImporter(context, self._lifecycle)
        self._search = RunSearch(context)
        self._environments = RunEnvironments(context)
        self._context = context

    @property
    def batch_points(self) -> int:
        """Points a run's metric writer gathers before it writes a batch."""
        return self._context.batch_points

    @property
    def flush_interval(self) -> float:
        """Seconds a run's metric writer waits at most before it writes what it has."""
        return self._context.flush_interval

    def __repr__(self) -> str:
        return f"RunTracker({self.catalog.url!r})"

    # -- experiments -------------------------------------------------------------------

    def create_experiment(
        self, name: str, *, description: str | None = None, exist_ok: bool = False
    ) -> Experiment:
        """A new experiment; ``Conflict`` if the name is taken (unless ``exist_ok``)."""
        return self._experiments.create_experiment(name, description=description, exist_ok=exist_ok)

    def experiment(self, experiment: str | int) -> Experiment:
        """An experiment by name or id; ``NotFound`` if there is none."""
        return self._experiments.experiment(experiment)

    def experiments(self, *, limit: int = 100, offset: int = 0) -> list[Experiment]:
        """Experiments, by name."""
        return self._experiments.experiments(limit=limit, offset=offset)

    # -- starting and joining runs -------------------------------------------------------

    def start(
        self,
        experiment: str = DEFAULT_EXPERIMENT,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        system_metrics: bool | float = False,
        capture_environment: bool | RunEnvironment = True,
    ) -> ActiveRun:
        """Start a run in ``experiment`` (created if new) and return its handle.

        Use it as a context manager: the run completes when the block ends,
        fails if it raises (cancelled on ``KeyboardInterrupt``). With
        ``system_metrics`` (``True`` for every 10 s, or an interval in seconds)
        CPU, memory and GPU use are sampled into ``system/…`` metrics.
        ``capture_environment`` records this process's reproducibility record
        (see :meth:`environment`); ``False`` records none.
        """
        return self._lifecycle.start(
            experiment,
            name=name,
            params=params,
            tags=tags,
            system_metrics=system_metrics,
            environment=environment_to_record(capture_environment),
        )

    def create(
        self,
        experiment: str = DEFAULT_EXPERIMENT,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        capture_environment: bool | RunEnvironment = True,
    ) -> Run:
        """Make a running run in ``experiment`` (created if new) without a handle on it.

        For a run that another process logs into (``attach`` or ``resume``, or
        points sent over the API): nothing of this process is added to its usage,
        and it stays running until its status is set. ``capture_environment``
        records this process's environment, none (``False``), or the record given.
        """
        return self._lifecycle.create(
            experiment,
            name=name,
            params=params,
            tags=tags,
            environment=environment_to_record(capture_environment),
        )

    def attach(self, run_id: int, *, system_metrics: bool | float = False) -> ActiveRun:
        """Join a running run, from this or another process, to log into it alongside others.

        The handle's ``close`` (or the end of its ``with`` block) flushes and
        lets go without changing the run's status; its resource use is added
        to the run's. Steps continue after the highest step logged so far, but
        processes logging one metric together should pass their own steps.
        """
        return self._lifecycle.attach(run_id, system_metrics=system_metrics)

    def resume(
        self,
        run_id: int,
        *,
        system_metrics: bool | float = False,
        from_step: int | None = None,
    ) -> ActiveRun:
        """Take a paused, failed or cancelled run back to running; return a handle that owns it.

        A run still marked running (its process was killed before it could say
        otherwise) is taken over as it is. Training resumed from a checkpoint
        passes its step as ``from_step``: the points logged after it (by the
        attempt that died) are superseded, kept but left out of histories and
        summaries, and the handle logs on from the step after it, so each curve
        holds one point per step. Without ``from_step`` it logs on after the
        last step.
        """
        return self._lifecycle.resume(run_id, system_metrics=system_metrics, from_step=from_step)

    # -- reproducibility records ---------------------------------------------------------

    def environment(self, run_id: int) -> RunEnvironment | None:
        """What a run was started with: git state, Python, packages, command, host, seeds.

        ``None`` for a run that recorded none (``capture_environment=False`` and
        no seeds set); ``NotFound`` if there is no such run.
        """
        return self._environments.environment(run_id)

    def compare_environments(self, first: int, second: int) -> EnvironmentDiff:
        """Where run ``second``'s environment differs from run ``first``'s."""
        return self._environments.compare(first, second)

    def record_seeds(self, run_id: int, seeds: Mapping[str, int]) -> None:
        """Add seeds (``{"numpy": 42}``, whole numbers in [0, 2**32)) to a run's record."""
        self._environments.record_seeds(run_id, seeds)

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
        return self._importer.import_run(
            experiment,
            started_at=started_at,
            ended_at=ended_at,
            status=status,
            status_reason=status_reason,
            name=name,
            params=params,
            tags=tags,
            metrics=metrics,
        )

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
        return self._lifecycle.set_status(run_id, status, reason=reason, usage=usage)

    def add_usage(self, run_id: int, usage: ResourceSample) -> None:
        """Add one process's resource use to a run's totals."""
        self._lifecycle.add_usage(run_id, usage)

    def log_params(self, run_id: int, params: Mapping[str, Any]) -> None:
        """Record params of a run; one logged before with another value is a ``Conflict``."""
        self._params.log_params(run_id, params)

    def set_tags(self, run_id: int, tags: Iterable[str]) -> None:
        """Add tags to a run (tags it has already are kept once)."""
        self._params.set_tags(run_id, tags)

    def remove_tags(self, run_id: int, tags: Iterable[str]) -> None:
        """Take tags off a run (absent ones are ignored)."""
        self._params.remove_tags(run_id, tags)

    # -- artifacts ---------------------------------------------------------------------

    def log_artifact(
        self,
        run_id: int,
        source: str | os.PathLike[str] | Mapping[str, Any] | Snapshot,
        *,
        name: str | None = None,
        overwrite: bool = False,
    ) -> Artifact:
        """Keep a file, a folder or named arrays as an artifact of a run, in the tensor store.

        ``name`` defaults to the file or folder's name (arrays and snapshots need
        one); a ``Snapshot`` already in the store is kept as it is. An artifact
        of that name already there is a ``Conflict`` unless ``overwrite``.
        """
        return self._artifacts.log_artifact(run_id, source, name=name, overwrite=overwrite)

    def artifacts(self, run_id: int) -> list[Artifact]:
        """A run's artifacts, by name."""
        return self._artifacts.artifacts(run_id)

    def artifact(self, run_id: int, name: str) -> Artifact:
        """One artifact of a run; ``NotFound`` if it has none of that name."""
        return self._artifacts.artifact(run_id, name)

    def load_artifact(self, run_id: int, name: str) -> dict[str, Any]:
        """An artifact's contents: ``{name: array}`` for arrays, ``{path: bytes}`` for files."""
        return self._artifacts.load_artifact(run_id, name)

    # -- reading runs ------------------------------------------------------------------

    def get(self, run_id: int) -> Run:
        """A run; ``NotFound`` if there is none with this id."""
        return self._search.get(run_id)

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
        return self._search.search(
            experiment=experiment,
            status=status,
            tags=tags,
            params=params,
            metrics=metrics,
            name=name,
            limit=limit,
            page_token=page_token,
        )

    def search_all(self, **filters: Any) -> list[Run]:
        """Every run matching ``filters`` (those of :meth:`search`), newest first, all pages."""
        return self._search.search_all(filters)

    # -- metrics -----------------------------------------------------------------------

    def history(
        self,
        run_id: int,
        name: str,
        *,
        dataset: str | None = None,
        include_superseded: bool = False,
    ) -> MetricHistory:
        """Every point of one metric of a run, as NumPy arrays ordered by step.

        ``NotFound`` if the run does not exist or never logged ``name``. Points
        still in a writer's buffer are not there yet (``flush`` first). Points
        superseded by a resume (see :meth:`resume`) only with
        ``include_superseded``, flagged in ``history.superseded``. A metric
        logged with a ``dataset`` is read with it (or as ``"name@dataset"``).
        """
        key = name if dataset is None else series_key(name, dataset)
        return self._search.history(run_id, key, include_superseded=include_superseded)

    def metric_names(self, run_id: int) -> list[str]:
        """The names of the metrics a run has logged, sorted."""
        return self._search.metric_names(run_id)

    def compact(self, run_id: int) -> int:
        """Merge a run's metric blocks (done when a run ends); the number of blocks removed."""
        return self._search.compact(run_id)

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
        return self._search.compare(
            runs, metrics=metrics, params=params, include_system=include_system
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
        return self._search.convergence(
            run_id, train=train, validation=validation, mode=mode, rules=rules
        )
