"""Import experiments and runs from an MLflow tracking store, through MLflow's own client.

    report = import_mlflow(wb, "sqlite:///mlruns.db")   # or a file store: "file:///…/mlruns"
    report.imported                                     # ((mlflow run id, weightbase run id), …)

Each MLflow run becomes a finished weightbase run in the experiment of the same
name, with its status, start and end times, params (as the strings MLflow
keeps), tags (as ``key=value``) and every point of every metric with its step
and timestamp. The MLflow run id is kept as the tag ``mlflow.run_id=<id>``, so
importing again skips what is already there. Needs ``weightbase[mlflow]``.

An import only reads. Its source must exist before it starts: MLflow's client
would create an empty store where a path names none, and import nothing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

import numpy as np
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from weightbase.errors import NotFound, ValidationError
from weightbase.tracking._extras import require
from weightbase.tracking.records import NAME_PATTERN, RunStatus

if TYPE_CHECKING:
    from weightbase.tracking.service import RunTracker

__all__ = [
    "MLFLOW_RUN_TAG",
    "SUPPORTED_SCHEMES",
    "ImportReport",
    "check_tracking_uri",
    "import_mlflow",
]

#: The tag prefix that records which MLflow run a weightbase run was imported from.
MLFLOW_RUN_TAG = "mlflow.run_id="

#: The tracking URI schemes an import reads; a URI without one is a file store's folder.
SUPPORTED_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql")
_SUPPORTED = (
    "sqlite:///path/to/mlflow.db, file:///path/to/mlruns (or the folder's path), "
    "http(s)://an MLflow server, postgresql://, mysql:// or mssql:// databases"
)
_SQLITE_HEADER = b"SQLite format 3\x00"
# The tables every MLflow tracking database has.
_MLFLOW_TABLES = {"experiments", "runs"}

_MAX_TAG = 255
_PAGE = 1000
# MLflow's run statuses; a run still live there is imported paused, saying so.
_STATUSES = {
    "FINISHED": RunStatus.COMPLETED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.CANCELLED,
    "RUNNING": RunStatus.PAUSED,
    "SCHEDULED": RunStatus.PAUSED,
}


class _HasRuns(Protocol):
    @property
    def runs(self) -> RunTracker: ...


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What one import did.

    ``imported``: ``(mlflow run id, weightbase run id)`` pairs of the runs
    created; ``existing``: the same for runs imported before and skipped;
    ``points``: metric points stored; ``dropped``: one line for each thing that
    could not be carried over (a name weightbase refuses, a tag too long, a
    negative step), saying what and why.
    """

    experiments: tuple[str, ...]
    imported: tuple[tuple[str, int], ...]
    existing: tuple[tuple[str, int], ...]
    points: int
    dropped: tuple[str, ...] = ()
    _by_mlflow_id: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_by_mlflow_id", MappingProxyType(dict(self.imported + self.existing))
        )

    def run_id(self, mlflow_run_id: str) -> int:
        """The weightbase run an MLflow run was imported as (now or before)."""
        try:
            return self._by_mlflow_id[mlflow_run_id]
        except KeyError:
            raise NotFound(
                f"MLflow run {mlflow_run_id!r} was not imported", mlflow_run_id=mlflow_run_id
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiments": list(self.experiments),
            "imported": [{"mlflow_run_id": m, "run_id": r} for m, r in self.imported],
            "existing": [{"mlflow_run_id": m, "run_id": r} for m, r in self.existing],
            "points": self.points,
            "dropped": list(self.dropped),
        }


def import_mlflow(
    wb_or_tracker: RunTracker | _HasRuns,
    tracking_uri: str,
    *,
    experiments: Iterable[str] | None = None,
) -> ImportReport:
    """Import the runs of an MLflow tracking store (every active experiment, or those named).

    ``tracking_uri`` is one of :data:`SUPPORTED_SCHEMES`: ``sqlite:///path.db``
    (an MLflow database that exists), ``file:///path/mlruns`` or a folder's
    path (an MLflow file store that exists), an MLflow server or a database
    server. Deleted experiments and runs are left out. Runs already imported
    (tagged ``mlflow.run_id=<id>``) are skipped. ``ValidationError`` before
    anything is read or created if the URI names no MLflow store.
    """
    from weightbase.tracking.service import RunTracker

    tracker = wb_or_tracker if isinstance(wb_or_tracker, RunTracker) else wb_or_tracker.runs
    file_store = check_tracking_uri(tracking_uri) == "file"
    client_module, entities, errors = require(
        "mlflow.tracking",
        "mlflow.entities",
        "mlflow.exceptions",
        purpose="importing from MLflow",
        extra="mlflow",
    )
    with _file_store_allowed(file_store):
        try:
            client = client_module.MlflowClient(tracking_uri=tracking_uri)
            found = client.search_experiments(view_type=entities.ViewType.ACTIVE_ONLY)
        except errors.MlflowException as exc:
            lines = str(exc.message).strip().splitlines() or [type(exc).__name__]
            raise ValidationError(
                f"cannot read the MLflow store {tracking_uri}: {lines[0]}", uri=tracking_uri
            ) from None
        return _import(tracker, client, entities, tracking_uri, found, experiments)


def check_tracking_uri(tracking_uri: str) -> str:
    """The scheme of ``tracking_uri`` (``"file"`` for a folder), if it names an MLflow store.

    ``ValidationError`` for an empty URI, a scheme not in :data:`SUPPORTED_SCHEMES`,
    a SQLite URI whose file is missing or is not an MLflow database, or a file
    store whose folder is missing or holds no experiments.
    """
    if not isinstance(tracking_uri, str) or not tracking_uri.strip():
        raise ValidationError(
            f"give the MLflow tracking URI to import from: {_SUPPORTED}", uri=tracking_uri
        )
    scheme = urlsplit(tracking_uri).scheme.lower() if "://" in tracking_uri else ""
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        _check_sqlite(tracking_uri)
        return base
    if base in ("", "file"):
        _check_file_store(tracking_uri if base == "" else _file_path(tracking_uri))
        return "file"
    if base not in SUPPORTED_SCHEMES:
        raise ValidationError(
            f"cannot import from {tracking_uri!r}: unsupported scheme {scheme!r}; use {_SUPPORTED}",
            uri=tracking_uri,
            supported=SUPPORTED_SCHEMES,
        )
    return base


def _check_sqlite(tracking_uri: str) -> None:
    try:
        database = make_url(tracking_uri).database
    except ArgumentError:
        database = None
    if not database or database == ":memory:":
        raise ValidationError(
            f"{tracking_uri!r} names no database file; use sqlite:///path/to/mlflow.db",
            uri=tracking_uri,
        )
    path = Path(database)
    if not path.exists():
        raise ValidationError(
            f"no MLflow database at {path}: the file does not exist", uri=tracking_uri
        )
    if not path.is_file():
        raise ValidationError(f"{path} is not a file, so not an MLflow database", uri=tracking_uri)
    try:
        with path.open("rb") as file:
            head = file.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise ValidationError(
            f"cannot read {path}: {exc.strerror or exc}", uri=tracking_uri
        ) from None
    if head != _SQLITE_HEADER:
        raise ValidationError(f"{path} is not a SQLite database", uri=tracking_uri)
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
    except sqlite3.Error as exc:
        raise ValidationError(
            f"cannot read {path} as a SQLite database: {exc}", uri=tracking_uri
        ) from None
    if not _MLFLOW_TABLES.issubset(tables):
        raise ValidationError(
            f"{path} is a SQLite database but not an MLflow tracking store "
            "(it has no experiments and runs tables)",
            uri=tracking_uri,
        )


def _file_path(tracking_uri: str) -> str:
    parts = urlsplit(tracking_uri)
    if parts.netloc not in ("", "localhost"):
        raise ValidationError(
            f"{tracking_uri!r} names a folder on host {parts.netloc!r}; "
            "use file:///path/to/mlruns for a folder on this machine",
            uri=tracking_uri,
        )
    return url2pathname(parts.path)


def _check_file_store(folder: str) -> None:
    path = Path(folder)
    if not path.exists():
        raise ValidationError(
            f"no MLflow file store at {path}: the folder does not exist", uri=folder
        )
    if not path.is_dir():
        hint = ""
        with contextlib.suppress(OSError), path.open("rb") as file:
            if file.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER:
                hint = f"; for a SQLite database use sqlite:///{path}"
        raise ValidationError(
            f"{path} is a file, not an MLflow file store folder{hint}", uri=folder
        )
    if not any(path.glob("*/meta.yaml")):
        raise ValidationError(
            f"{path} is not an MLflow file store: it has no experiment folders (*/meta.yaml)",
            uri=folder,
        )


@contextmanager
def _file_store_allowed(allowed: bool) -> Iterator[None]:
    """Let MLflow open a file store, which MLflow 3 refuses unless told: an import only reads it."""
    if not allowed:
        yield
        return
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def _import(
    tracker: RunTracker,
    client: Any,
    entities: Any,
    tracking_uri: str,
    found: list[Any],
    experiments: Iterable[str] | None,
) -> ImportReport:
    wanted = None if experiments is None else list(experiments)
    if wanted is not None:
        names = {experiment.name for experiment in found}
        missing = [name for name in wanted if name not in names]
        if missing:
            raise NotFound(
                f"no experiment {missing[0]!r} in the MLflow store {tracking_uri}",
                experiment=missing[0],
            )
        found = [experiment for experiment in found if experiment.name in wanted]

    imported: list[tuple[str, int]] = []
    existing: list[tuple[str, int]] = []
    dropped: list[str] = []
    points = 0
    done: list[str] = []
    for experiment in sorted(found, key=lambda e: e.name):
        if not NAME_PATTERN.match(experiment.name) or "//" in experiment.name:
            dropped.append(
                f"experiment {experiment.name!r}: not a valid weightbase experiment name; "
                "its runs were not imported"
            )
            continue
        done.append(experiment.name)
        tracker.create_experiment(
            experiment.name,
            description=(experiment.tags or {}).get("mlflow.note.content"),
            exist_ok=True,
        )
        for mlflow_run in _runs(client, entities, experiment.experiment_id):
            run_id = mlflow_run.info.run_id
            previous = tracker.search(tags=[f"{MLFLOW_RUN_TAG}{run_id}"], limit=1).runs
            if previous:
                existing.append((run_id, previous[0].id))
                continue
            new_id, count = _import_run(tracker, client, experiment.name, mlflow_run, dropped)
            imported.append((run_id, new_id))
            points += count
    return ImportReport(
        experiments=tuple(done),
        imported=tuple(imported),
        existing=tuple(existing),
        points=points,
        dropped=tuple(dropped),
    )


def _runs(client: Any, entities: Any, experiment_id: str) -> Iterable[Any]:
    """Every active run of an experiment, oldest first."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            run_view_type=entities.ViewType.ACTIVE_ONLY,
            max_results=_PAGE,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _import_run(
    tracker: RunTracker, client: Any, experiment: str, mlflow_run: Any, dropped: list[str]
) -> tuple[int, int]:
    info, data = mlflow_run.info, mlflow_run.data
    where = f"MLflow run {info.run_id}"
    status = _STATUSES.get(info.status, RunStatus.FAILED)
    reason = None
    if status is RunStatus.PAUSED:
        reason = f"{info.status.lower()} in MLflow when imported"
    elif info.status not in _STATUSES:
        reason = f"unknown MLflow status {info.status!r}"

    params: dict[str, str] = {}
    for key, value in sorted(data.params.items()):
        if _valid(key):
            params[key] = value
        else:
            dropped.append(f"{where}: param {key!r} is not a valid weightbase name")
    tags = [f"{MLFLOW_RUN_TAG}{info.run_id}"]
    for key, value in sorted(data.tags.items()):
        tag = f"{key}={value}"
        if len(tag) > _MAX_TAG or not tag.strip():
            dropped.append(f"{where}: tag {key!r} is over {_MAX_TAG} characters as key=value")
        elif _has_control(tag):
            dropped.append(f"{where}: tag {key!r} holds line breaks or control characters")
        else:
            tags.append(tag)

    metrics: dict[str, np.ndarray[Any, np.dtype[np.float64]]] = {}
    for key in sorted(data.metrics):
        if not _valid(key):
            dropped.append(f"{where}: metric {key!r} is not a valid weightbase name")
            continue
        history = client.get_metric_history(info.run_id, key)
        array = np.array(
            [(m.step, np.nan, m.timestamp / 1000.0, m.value) for m in history], dtype=np.float64
        ).reshape(-1, 4)
        negative = array[:, 0] < 0
        if negative.any():
            dropped.append(
                f"{where}: metric {key!r}: {int(negative.sum())} point(s) at negative steps"
            )
            array = array[~negative]
        metrics[key] = array

    name = info.run_name or None
    if name is not None and len(name) > _MAX_TAG:
        name = name[:_MAX_TAG]
    if name is not None and _has_control(name):
        dropped.append(f"{where}: run name {name!r} holds control characters; left unnamed")
        name = None
    try:
        run = tracker.import_run(
            experiment,
            name=name,
            status=status,
            status_reason=reason,
            started_at=_when(info.start_time),
            ended_at=None if info.end_time is None else _when(info.end_time),
            params=params,
            tags=tags,
            metrics=metrics,
        )
    except ValidationError as exc:
        raise ValidationError(f"{where} could not be imported: {exc}") from exc
    return run.id, sum(int(points.shape[0]) for points in metrics.values())


def _valid(name: str) -> bool:
    return bool(NAME_PATTERN.match(name)) and "//" not in name


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _when(milliseconds: int | None) -> datetime:
    return datetime.fromtimestamp((milliseconds or 0) / 1000.0, UTC)
