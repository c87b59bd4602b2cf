"""Import experiments and runs from an MLflow tracking store, through MLflow's own client.

    report = import_mlflow(wb, "sqlite:///mlruns.db")   # or a file store: "file:///…/mlruns"
    report.imported                                     # ((mlflow run id, weightbase run id), …)

Each MLflow run becomes a finished weightbase run in the experiment of the same
name, with its status, start and end times, params (as the strings MLflow
keeps), tags (as ``key=value``) and every point of every metric with its step
and timestamp. The MLflow run id is kept as the tag ``mlflow.run_id=<id>``, so
importing again skips what is already there. Needs ``weightbase[mlflow]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from weightbase.errors import NotFound, ValidationError
from weightbase.tracking._extras import require
from weightbase.tracking.records import NAME_PATTERN, RunStatus

if TYPE_CHECKING:
    from weightbase.tracking.service import RunTracker

__all__ = ["MLFLOW_RUN_TAG", "ImportReport", "import_mlflow"]

#: The tag prefix that records which MLflow run a weightbase run was imported from.
MLFLOW_RUN_TAG = "mlflow.run_id="

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

    ``tracking_uri`` is any URI ``MlflowClient`` takes (``sqlite:///path.db``,
    ``file:///path/mlruns``, a server). Deleted experiments and runs are left
    out. Runs already imported (tagged ``mlflow.run_id=<id>``) are skipped.
    """
    from weightbase.tracking.service import RunTracker

    tracker = wb_or_tracker if isinstance(wb_or_tracker, RunTracker) else wb_or_tracker.runs
    client_module, entities = require(
        "mlflow.tracking", "mlflow.entities", purpose="importing from MLflow", extra="mlflow"
    )
    client = client_module.MlflowClient(tracking_uri=tracking_uri)
    wanted = None if experiments is None else list(experiments)
    found = client.search_experiments(view_type=entities.ViewType.ACTIVE_ONLY)
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
