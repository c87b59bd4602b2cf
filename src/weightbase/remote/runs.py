"""``wb.runs`` of a remote workspace: the run tracker's API, over ``/api/v1/runs`` and friends.

Every method takes and returns what ``weightbase.tracking.RunTracker``'s does.
``start``, ``resume`` and ``attach`` return a :class:`~weightbase.remote.run.RemoteRun`,
whose metric points are batched in the background and sent numbered, so a
training loop on another machine logs at local speed and outlives a restart
of the server. Artifacts are written here as snapshots and only the chunks the
server lacks are uploaded; reads of them are verified chunk by chunk.
"""

from __future__ import annotations

import builtins
import math
import os
import tempfile
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import numpy as np

from weightbase.errors import Conflict, NotFound, NotSupported, ValidationError
from weightbase.remote.decode import decode, decode_all
from weightbase.remote.http import path_of
from weightbase.remote.run import RemoteRun
from weightbase.tensors import FileSource, Snapshot, TensorStore
from weightbase.tracking.capture import environment_to_record
from weightbase.tracking.convergence import RULES, ConvergenceReport
from weightbase.tracking.environment import RunEnvironment, check_seeds, compare_environments
from weightbase.tracking.lifecycle import DEFAULT_EXPERIMENT, check_run_name
from weightbase.tracking.metrics import check_resume_step
from weightbase.tracking.params import canonical_params, check_tags, param_values
from weightbase.tracking.reads import MAX_PAGE, check_limit, check_run_id
from weightbase.tracking.records import (
    Artifact,
    Experiment,
    MetricFilter,
    MetricHistory,
    Run,
    RunComparison,
    RunPage,
    RunStatus,
    check_name,
    check_series,
    series_key,
)
from weightbase.tracking.service import RunTracker
from weightbase.tracking.system import require_psutil

if TYPE_CHECKING:
    from weightbase.lineage import Node
    from weightbase.remote.http import Connection
    from weightbase.remote.store import RemoteStore
    from weightbase.tracking.environment import EnvironmentDiff
    from weightbase.tracking.system import ResourceSample

__all__ = ["RemoteRuns"]

_EXPERIMENTS = "/api/v1/experiments"
_RUNS = "/api/v1/runs"
#: The most items the server gives in one page.
_SERVER_PAGE = 500
#: The thresholds of ``weightbase.tracking.convergence.analyze`` that ``convergence`` passes on.
_RULES = frozenset(RULES)


class RemoteRuns(RunTracker):
    """Experiments and runs on a weightbase server: ``RunTracker``'s every method.

    Each is overridden (a test checks that none is inherited), so nothing here
    reaches for a catalog. ``batch_points`` and ``flush_interval`` tune every
    run's writer as embedded; ``flush_timeout`` is how long a run's ``flush``,
    ``pause``, ``end`` and ``close`` wait for the server before raising a
    ``StorageError`` (the points are kept and still being sent).
    """

    def __init__(
        self,
        connection: Connection,
        store: RemoteStore,
        *,
        batch_points: int = 100_000,
        flush_interval: float = 1.0,
        flush_timeout: float = 300.0,
    ) -> None:  # no super().__init__: the base's state is a catalog, which is remote
        self._handles: weakref.WeakSet[RemoteRun] = weakref.WeakSet()
        self.connection = connection
        self.store = store
        self._store = store
        self.flush_timeout = flush_timeout
        self._http = connection
        self._batch_points = batch_points
        self._flush_interval = flush_interval

    @property
    def batch_points(self) -> int:
        """Points a run's metric writer gathers before it sends a batch."""
        return self._batch_points

    @property
    def flush_interval(self) -> float:
        """Seconds a run's metric writer waits at most before it sends what it has."""
        return self._flush_interval

    def __repr__(self) -> str:
        return f"RemoteRuns({self._http.url!r})"

    def __getattr__(self, name: str) -> NoReturn:
        # RunTracker.__init__'s catalog and metric_store are never set here
        if name in ("catalog", "metric_store"):
            raise NotSupported(
                f"a remote workspace has no {name}; use wb.runs' methods, or run on the server"
            )
        raise AttributeError(name)

    # -- experiments -------------------------------------------------------------------

    def create_experiment(
        self, name: str, *, description: str | None = None, exist_ok: bool = False
    ) -> Experiment:
        body = {"name": name, "description": description, "exist_ok": exist_ok}
        return decode(Experiment, self._http.post(_EXPERIMENTS, body))

    def experiment(self, experiment: str | int) -> Experiment:
        key = f"id:{experiment}" if isinstance(experiment, int) else path_of(experiment)
        return decode(Experiment, self._http.get(f"{_EXPERIMENTS}/{key}"))

    def experiments(self, *, limit: int = 100, offset: int = 0) -> list[Experiment]:
        check_limit(limit)
        if offset < 0:
            raise ValidationError(f"offset must be at least 0, not {offset}")
        items = self._pages(_EXPERIMENTS, offset + limit)
        return decode_all(Experiment, items[offset : offset + limit])

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
    ) -> RemoteRun:
        """Start a run on the server and return its handle (see ``RunTracker.start``).

        The environment recorded and ``system_metrics`` are this machine's, not the server's.
        """
        if system_metrics:
            require_psutil()  # refuse before the run exists
        run = self.create(
            experiment, name=name, params=params, tags=tags, capture_environment=capture_environment
        )
        try:
            return self._handle(run, owner=True, system_metrics=system_metrics)
        except BaseException as exc:
            self.set_status(run.id, RunStatus.FAILED, reason=f"could not start: {exc}")
            raise

    def create(
        self,
        experiment: str = DEFAULT_EXPERIMENT,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        capture_environment: bool | RunEnvironment = True,
    ) -> Run:
        check_name(experiment, what="experiment")
        check_run_name(name)
        # captured here: the run's environment is the client's, never the server's
        environment = environment_to_record(capture_environment)
        body = {
            "experiment": experiment,
            "name": name,
            "params": param_values(canonical_params(params or {})),
            "tags": check_tags(tags),
            "environment": None if environment is None else environment.to_dict(),
        }
        return decode(Run, self._http.post(_RUNS, body))

    def attach(self, run_id: int, *, system_metrics: bool | float = False) -> RemoteRun:
        run = self.get(run_id)
        if run.status is not RunStatus.RUNNING:
            raise Conflict(
                f"run {run_id} is {run.status.value}: attach to a running run "
                "(resume() a paused one)",
                run_id=run_id,
                status=run.status.value,
            )
        return self._handle(run, owner=False, system_metrics=system_metrics)

    def resume(
        self,
        run_id: int,
        *,
        system_metrics: bool | float = False,
        from_step: int | None = None,
    ) -> RemoteRun:
        if from_step is not None:  # refused before the run is touched
            check_resume_step(from_step)
        run = self.get(run_id)
        if run.status is not RunStatus.RUNNING:
            run = self.set_status(run_id, RunStatus.RUNNING)
        if from_step is not None:
            self._http.post(f"{_run(run_id)}/supersede", {"after_step": from_step})
            run = self.get(run_id)
        return self._handle(run, owner=True, system_metrics=system_metrics)

    def _handle(self, run: Run, *, owner: bool, system_metrics: bool | float) -> RemoteRun:
        # one past the highest step logged (not counting the sampler's), as embedded
        steps = [s.last_step for n, s in run.metrics.items() if not n.startswith("system/")]
        handle = RemoteRun(
            self,
            self._http,
            run.id,
            run.experiment,
            owner=owner,
            next_step=max(steps) + 1 if steps else 0,
            system_metrics=system_metrics,
        )
        self._handles.add(handle)
        return handle

    def close_handles(self) -> None:
        """Send what every open handle still holds and let go of it (status unchanged):
        what a workspace does before it closes its connection."""
        for handle in list(self._handles):
            handle.close()

    def environment(self, run_id: int) -> RunEnvironment | None:
        found = self._http.get(f"{_run(run_id)}/environment")["environment"]
        return None if found is None else RunEnvironment.from_dict(found)

    def compare_environments(self, first: int, second: int) -> EnvironmentDiff:
        return compare_environments(self.environment(first), self.environment(second))

    def record_seeds(self, run_id: int, seeds: Mapping[str, int]) -> None:
        self._http.post(f"{_run(run_id)}/seeds", {"seeds": check_seeds(seeds)})

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
        body = {
            "experiment": experiment,
            "started_at": started_at.isoformat(),
            "ended_at": None if ended_at is None else ended_at.isoformat(),
            "status": RunStatus.parse(status).value,
            "status_reason": status_reason,
            "name": name,
            "params": param_values(canonical_params(params or {})),
            "tags": check_tags(tags),
            "metrics": {name: _series(name, points) for name, points in (metrics or {}).items()},
        }
        return decode(Run, self._http.post(f"{_RUNS}/imports", body))

    # -- status and bookkeeping --------------------------------------------------------

    def set_status(
        self,
        run_id: int,
        status: str | RunStatus,
        *,
        reason: str | None = None,
        usage: ResourceSample | None = None,
    ) -> Run:
        body = {"status": RunStatus.parse(status).value, "reason": reason, "usage": _usage(usage)}
        return decode(Run, self._http.put(f"{_run(run_id)}/status", body))

    def _settle_status(
        self, run_id: int, status: RunStatus, *, reason: str | None, usage: ResourceSample | None
    ) -> Run:
        """``set_status``, retried while the server is away; a repeat that finds it done is done."""
        body = {"status": status.value, "reason": reason, "usage": _usage(usage)}
        try:
            return decode(Run, self._http.put(f"{_run(run_id)}/status", body, retry=True))
        except Conflict:
            run = self.get(run_id)  # an earlier try may have moved it, its answer lost
            if run.status is status:
                return run
            raise

    def add_usage(self, run_id: int, usage: ResourceSample) -> None:
        self._http.post(f"{_run(run_id)}/usage", _usage(usage))

    def log_params(self, run_id: int, params: Mapping[str, Any]) -> None:
        values = param_values(canonical_params(params))
        self._http.post(f"{_run(run_id)}/params", {"params": values})

    def set_tags(self, run_id: int, tags: Iterable[str]) -> None:
        self._http.post(f"{_run(run_id)}/tags", {"add": check_tags(tags)})

    def remove_tags(self, run_id: int, tags: Iterable[str]) -> None:
        self._http.post(f"{_run(run_id)}/tags", {"remove": check_tags(tags)})

    def _link(self, run_id: int, target: Node, relation: str) -> None:
        body = {"relation": relation, "kind": target.kind, "id": target.id}
        self._http.post(f"{_run(run_id)}/links", body)

    # -- artifacts ---------------------------------------------------------------------

    def log_artifact(
        self,
        run_id: int,
        source: str | os.PathLike[str] | Mapping[str, Any] | Snapshot,
        *,
        name: str | None = None,
        overwrite: bool = False,
    ) -> Artifact:
        """Keep a file, a folder or named arrays with a run (see ``RunTracker.log_artifact``).

        Written here as a snapshot; only the chunks the server lacks are uploaded.
        """
        if isinstance(source, Snapshot | Mapping):
            if name is None:
                raise ValidationError("arrays logged as an artifact need a name")
        else:
            path = Path(os.fspath(source))
            if not path.exists():
                raise NotFound(f"no file or folder {str(path)!r} to log", path=str(path))
            name = path.name if name is None else name
        check_name(name, what="artifact")
        if not overwrite and name in {found.name for found in self.artifacts(run_id)}:
            raise Conflict(
                f"run {run_id} already has an artifact {name!r} (overwrite=True replaces it)",
                run_id=run_id,
                name=name,
            )
        snapshot = source if isinstance(source, Snapshot) else self._upload(run_id, source)
        body = {"name": name, "snapshot": snapshot.id, "overwrite": overwrite}
        return decode(Artifact, self._http.post(f"{_run(run_id)}/artifacts", body))

    def _upload(self, run_id: int, source: str | os.PathLike[str] | Mapping[str, Any]) -> Snapshot:
        """``source`` as a snapshot on the server (its chunks the server lacks sent), unpinned."""
        if isinstance(source, Mapping):
            kind, tensors, files = "tensors", source, []
        else:
            path = Path(os.fspath(source))
            kind = "folder" if path.is_dir() else "file"
            tensors, files = {}, _file_sources(path)
        metadata = {"run_id": str(run_id), "artifact_kind": kind}
        with tempfile.TemporaryDirectory(prefix="weightbase-artifact-") as folder:
            staging = self._store.staging(Path(folder))
            staged = TensorStore(staging, options=self._store.options)
            snapshot = staged.write(tensors, ref="staged", files=files, metadata=metadata)
            self._store.upload(staging, snapshot)
            staging.close()
        return snapshot

    def artifacts(self, run_id: int) -> builtins.list[Artifact]:
        check_run_id(run_id)
        return decode_all(Artifact, self._pages(f"{_run(run_id)}/artifacts", None))

    def artifact(self, run_id: int, name: str) -> Artifact:
        check_run_id(run_id)
        return decode(Artifact, self._http.get(f"{_run(run_id)}/artifacts/{path_of(name)}"))

    def load_artifact(self, run_id: int, name: str) -> dict[str, Any]:
        """An artifact's contents, read from the server and verified here."""
        found = self.artifact(run_id, name)
        if found.kind == "tensors":
            return self.store.read(found.snapshot_id)
        snapshot = self.store.snapshot(found.snapshot_id)
        return {path: self.store.file_bytes(snapshot, path) for path in snapshot.files}

    # -- reading runs ------------------------------------------------------------------

    def get(self, run_id: int) -> Run:
        check_run_id(run_id)
        return decode(Run, self._http.get(_run(run_id)))

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
        check_limit(limit)
        statuses = [status] if isinstance(status, str | RunStatus) else list(status or ())
        if status is not None and not statuses:
            return RunPage((), None)  # no status allowed: no run matches, as embedded
        query: dict[str, Any] = {
            "experiment": f"id:{experiment}" if isinstance(experiment, int) else experiment,
            "status": [RunStatus.parse(value).value for value in statuses] or None,
            "tag": check_tags(tags) or None,
            "param": [f"{k}={v}" for k, v in canonical_params(params or {}).items()] or None,
            "metric": [_filter_text(MetricFilter.coerce(item)) for item in metrics] or None,
            "name": name,
        }
        # a page of the server holds at most 500: a bigger one is put together from several
        runs: list[Run] = []
        token = page_token
        while len(runs) < limit:
            found = self._http.get(
                _RUNS, **query, limit=min(_SERVER_PAGE, limit - len(runs)), after=token
            )
            runs += decode_all(Run, found["items"])
            token = found["next"]
            if token is None:
                break
        return RunPage(tuple(runs), token)

    def search_all(self, **filters: Any) -> builtins.list[Run]:
        found: list[Run] = []
        token: str | None = None
        filters.setdefault("limit", MAX_PAGE)
        while True:
            page = self.search(**{**filters, "page_token": token})
            found.extend(page.runs)
            token = page.next_page_token
            if token is None:
                return found

    # -- metrics -----------------------------------------------------------------------

    def history(
        self,
        run_id: int,
        name: str,
        *,
        dataset: str | None = None,
        include_superseded: bool = False,
    ) -> MetricHistory:
        check_run_id(run_id)
        name = check_series(name) if dataset is None else series_key(name, dataset)
        query = {"include_superseded": "true"} if include_superseded else {}
        found = self._http.get(f"{_run(run_id)}/metrics/{path_of(name)}", **query)
        epochs = [math.nan if epoch is None else epoch for epoch in found["epochs"]]
        return MetricHistory(
            run_id=run_id,
            name=name,
            steps=np.asarray(found["steps"], dtype=np.int64),
            epochs=np.asarray(epochs, dtype=np.float64),
            times=np.asarray(found["times"], dtype=np.float64),
            values=np.asarray([float(value) for value in found["values"]], dtype=np.float64),
            superseded=np.asarray(found.get("superseded", []), dtype=np.bool_),
        )

    def metric_names(self, run_id: int) -> builtins.list[str]:
        check_run_id(run_id)
        names: list[str] = self._http.get(f"{_run(run_id)}/metrics")["names"]
        return names

    def compact(self, run_id: int) -> int:
        check_run_id(run_id)
        removed: int = self._http.post(f"{_run(run_id)}/compact")["removed_blocks"]
        return removed

    def compare(
        self,
        runs: Iterable[int | Run],
        *,
        metrics: Iterable[str] | None = None,
        params: Iterable[str] | None = None,
        include_system: bool = False,
    ) -> RunComparison:
        ids = [run.id if isinstance(run, Run) else run for run in runs]
        if not ids:
            raise ValidationError("compare needs at least one run")
        for run_id in ids:
            check_run_id(run_id)
        metric_names = None if metrics is None else list(metrics)
        param_names = None if params is None else list(params)
        found = self._http.get(
            f"{_RUNS}/compare",
            run=ids,
            metric=metric_names or None,
            param=param_names or None,
            include_system=include_system,
        )
        # rows asked for by an empty list: none (the query cannot say "none")
        metric_rows = {} if metric_names == [] else found["metrics"]
        param_rows = {} if param_names == [] else found["params"]
        return RunComparison(
            run_ids=tuple(found["run_ids"]),
            run_names=tuple(found["run_names"]),
            params={key: tuple(values) for key, values in param_rows.items()},
            metrics={
                key: tuple(None if value is None else float(value) for value in values)
                for key, values in metric_rows.items()
            },
            differing_params=() if param_names == [] else tuple(found["differing_params"]),
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
        unknown = sorted(set(rules) - _RULES)
        if unknown:
            raise ValidationError(
                f"unknown convergence rule {unknown[0]!r}; known: {', '.join(sorted(_RULES))}"
            )
        check_run_id(run_id)
        found = self._http.get(
            f"{_run(run_id)}/convergence",
            train=train,
            validation=validation or "",
            mode=mode,
            **rules,
        )
        return decode(ConvergenceReport, found)

    # -- helpers -------------------------------------------------------------------------

    def _pages(self, path: str, wanted: int | None) -> builtins.list[dict[str, Any]]:
        """The items of a paged listing from its start: ``wanted`` of them, or all (None)."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while wanted is None or len(items) < wanted:
            size = _SERVER_PAGE if wanted is None else min(_SERVER_PAGE, wanted - len(items))
            found = self._http.get(path, limit=size, after=cursor)
            items += found["items"]
            cursor = found["next"]
            if cursor is None:
                break
        return items


def _run(run_id: int) -> str:
    check_run_id(run_id)
    return f"{_RUNS}/{int(run_id)}"


def _usage(usage: ResourceSample | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "cpu_seconds": usage.cpu_seconds,
        "gpu_seconds": usage.gpu_seconds,
        "peak_memory_bytes": usage.peak_memory_bytes,
    }


def _filter_text(metric_filter: MetricFilter) -> str:
    """A metric filter as ``GET /runs`` takes it: ``val/acc>=0.9``, ``min(val/loss)<0.3``."""
    name = metric_filter.name
    subject = name if metric_filter.of == "last" else f"{metric_filter.of}({name})"
    return f"{subject}{metric_filter.op}{float(metric_filter.value)!r}"


def _series(name: str, points: Any) -> dict[str, Any]:
    """An imported metric's ``(n, 4)`` points as the columns ``POST /runs/imports`` takes."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"points of metric {name!r} are not numbers: {exc}") from exc
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValidationError(
            f"points of metric {name!r} must be an (n, 4) array of step, epoch, time, value, "
            f"not shape {array.shape}"
        )
    return {
        "steps": array[:, 0].tolist(),
        "epochs": [None if math.isnan(epoch) else epoch for epoch in array[:, 1].tolist()],
        "times": array[:, 2].tolist(),
        "values": [value if math.isfinite(value) else str(value) for value in array[:, 3].tolist()],
    }


def _file_sources(path: Path) -> list[FileSource]:
    if path.is_file():
        return [FileSource(name=path.name, data=path.read_bytes())]
    files = sorted(item for item in path.rglob("*") if item.is_file())
    return [
        FileSource(name=item.relative_to(path).as_posix(), data=item.read_bytes()) for item in files
    ]
