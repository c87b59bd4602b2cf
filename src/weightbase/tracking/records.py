"""The records of experiment tracking: experiments, runs, metric summaries and histories.

Also the naming rule every metric, param and artifact name must pass
(:func:`check_name`), so that a bad name is refused before anything is written.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from weightbase.catalog.values import JSONValue
from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "NAME_PATTERN",
    "Artifact",
    "Experiment",
    "MetricFilter",
    "MetricHistory",
    "MetricSummary",
    "ResourceUsage",
    "Run",
    "RunComparison",
    "RunPage",
    "RunStatus",
    "check_dataset",
    "check_name",
    "check_series",
    "plain_fields",
    "series_key",
]

#: Metric, param and artifact names: 1 to 250 characters of letters, digits and
#: ``_ - . / :`` or space; starting with a letter, digit or ``_``; not ending in
#: ``/`` or space; no ``//``. ``system/`` names are the system-metrics sampler's.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_\-./: ]{0,248}[A-Za-z0-9_\-.:])?\Z")
_NAME_RULE = (
    "1 to 250 letters, digits and _ - . / : or spaces, starting with a letter, digit or _, "
    "not ending in / or a space, without //"
)


def check_name(name: object, *, what: str = "metric") -> str:
    """``name`` if it is a valid metric/param/artifact name, else a ``ValidationError``."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or "//" in name:
        raise ValidationError(f"invalid {what} name {name!r}: {_NAME_RULE}", name=name)
    return name


#: What a metric was measured on (``dataset=``): 1 to 128 letters, digits and
#: ``_ - . / : @`` or spaces, starting with a letter, digit or ``_``.
DATASET_PATTERN = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_\-./:@ ]{0,126}[A-Za-z0-9_\-.:@])?\Z")
#: The longest series key, ``name@dataset`` (the width of a metric key in the catalog).
MAX_SERIES_KEY = 255


def check_dataset(dataset: object) -> str:
    """``dataset`` if it is a valid label of what a metric was measured on."""
    if not isinstance(dataset, str) or not DATASET_PATTERN.match(dataset):
        raise ValidationError(
            f"invalid dataset {dataset!r}: 1 to 128 letters, digits and _ - . / : @ or "
            "spaces, starting with a letter, digit or _, not ending in / or a space",
            dataset=dataset,
        )
    return dataset


def series_key(name: str, dataset: str | None = None) -> str:
    """The key a metric's series is stored and read under: ``name``, or ``name@dataset``.

    Names hold no ``@``, so the first ``@`` splits the two: one series, and one
    summary, per (metric, dataset).
    """
    check_name(name)
    if dataset is None:
        return name
    key = f"{name}@{check_dataset(dataset)}"
    if len(key) > MAX_SERIES_KEY:
        raise ValidationError(
            f"metric {name!r} on dataset {dataset!r} is {len(key)} characters as "
            f"name@dataset; at most {MAX_SERIES_KEY}"
        )
    return key


def check_series(key: object) -> str:
    """``key`` if it is a valid series key (``name`` or ``name@dataset``)."""
    if isinstance(key, str) and "@" in key:
        name, dataset = key.split("@", 1)
        return series_key(name, dataset)
    return check_name(key)


class RunStatus(StrEnum):
    """Where a run is in its life. ``running`` and ``paused`` are live; the others final.

    Allowed moves: running → paused, completed, failed, cancelled;
    paused → running (resume), completed, failed, cancelled; failed and
    cancelled → running (resumed from a checkpoint). A completed run is final.
    """

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def live(self) -> bool:
        """Whether the run can still change state."""
        return self in (RunStatus.RUNNING, RunStatus.PAUSED)

    @classmethod
    def parse(cls, value: str | RunStatus) -> RunStatus:
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(status.value for status in cls)
            raise ValidationError(
                f"unknown run status {value!r}; known: {known}", status=value
            ) from None


#: ``(from, to)`` status moves a run may make.
TRANSITIONS = frozenset(
    {
        (RunStatus.RUNNING, RunStatus.PAUSED),
        (RunStatus.RUNNING, RunStatus.COMPLETED),
        (RunStatus.RUNNING, RunStatus.FAILED),
        (RunStatus.RUNNING, RunStatus.CANCELLED),
        (RunStatus.PAUSED, RunStatus.RUNNING),
        (RunStatus.PAUSED, RunStatus.COMPLETED),
        (RunStatus.PAUSED, RunStatus.FAILED),
        (RunStatus.PAUSED, RunStatus.CANCELLED),
        (RunStatus.FAILED, RunStatus.RUNNING),
        (RunStatus.CANCELLED, RunStatus.RUNNING),
    }
)


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    id: int
    name: str
    description: str | None
    created_at: datetime
    created_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """What a run used, summed over every process that logged into it.

    ``cpu_hours``: process CPU time (user + system); ``gpu_hours``: seconds of
    sampled GPU activity (see :mod:`weightbase.tracking.system`); ``peak_memory_bytes``:
    the largest resident set seen in any of its processes (``None`` if never
    measured); ``storage_bytes``: the stored size of its artifacts.
    """

    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    peak_memory_bytes: int | None = None
    storage_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """One metric of one run: its latest point (highest step), finite extremes and counts.

    ``last`` may be NaN or ±inf (then ``nonfinite`` is at least 1); ``minimum`` and
    ``maximum`` ignore non-finite values and are ``None`` if there were only those.
    ``name`` is the series key: the metric's name, or ``name@dataset`` for one
    logged with a ``dataset`` (``metric`` and ``dataset`` are its two parts).
    """

    name: str
    last: float
    last_step: int
    last_time: float
    minimum: float | None
    maximum: float | None
    count: int
    nonfinite: int

    @property
    def metric(self) -> str:
        """The metric's name, without its dataset."""
        return self.name.split("@", 1)[0]

    @property
    def dataset(self) -> str | None:
        """What the metric was measured on (``log(..., dataset=)``), or ``None``."""
        parts = self.name.split("@", 1)
        return parts[1] if len(parts) == 2 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metric": self.metric,
            "dataset": self.dataset,
            "last": _json_float(self.last),
            "last_step": self.last_step,
            "last_time": self.last_time,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "count": self.count,
            "nonfinite": self.nonfinite,
        }


def plain_fields(record: DataclassInstance) -> dict[str, Any]:
    """A flat record's fields in order, ready for JSON: datetimes as ISO text, tuples as lists."""
    return {item.name: _plain(getattr(record, item.name)) for item in fields(record)}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _json_float(value: float) -> float | str:
    """A float for JSON: NaN and infinities as the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
    return value if math.isfinite(value) else str(value)


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class MetricHistory:
    """Every point logged for one metric of one run, ordered by step.

    Points logged twice at one step are all kept, in the order they were stored.

    Read-only NumPy arrays of equal length: ``steps`` (int64), ``epochs``
    (float64, NaN where a point had no epoch), ``times`` (Unix seconds) and
    ``values`` (float64, NaN/±inf as logged). ``nonfinite`` flags the NaN/inf points.
    ``superseded`` (bool) flags points a killed attempt logged past the
    checkpoint its run resumed from; only a history read with
    ``include_superseded=True`` has any.
    """

    run_id: int
    name: str
    steps: IntArray
    epochs: FloatArray
    times: FloatArray
    values: FloatArray
    superseded: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))

    def __post_init__(self) -> None:
        if self.superseded.shape[0] != self.steps.shape[0]:
            if self.superseded.shape[0]:
                raise ValidationError("a history's superseded flags must match its points")
            object.__setattr__(self, "superseded", np.zeros(self.steps.shape[0], dtype=np.bool_))
        for array in (self.steps, self.epochs, self.times, self.values, self.superseded):
            array.flags.writeable = False

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    @property
    def nonfinite(self) -> npt.NDArray[np.bool_]:
        """True where the value is NaN or ±inf."""
        return ~np.isfinite(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "name": self.name,
            "steps": self.steps.tolist(),
            "epochs": [None if math.isnan(e) else e for e in self.epochs.tolist()],
            "times": self.times.tolist(),
            "values": [_json_float(v) for v in self.values.tolist()],
            "superseded": self.superseded.tolist(),
        }


@dataclass(frozen=True, slots=True)
class Artifact:
    """A named output of a run, kept as a snapshot in the tensor store.

    ``kind`` is ``tensors`` (named arrays), ``file`` or ``folder``; ``size_bytes``
    is its logical size and ``stored_bytes`` what its chunks take in the store.
    """

    run_id: int
    name: str
    kind: Literal["tensors", "file", "folder"]
    snapshot_id: str
    size_bytes: int
    stored_bytes: int
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True, slots=True)
class Run:
    """A run as the catalog has it: status, params, tags, metric summaries, resource usage."""

    id: int
    experiment_id: int
    experiment: str
    name: str | None
    status: RunStatus
    status_reason: str | None
    params: Mapping[str, JSONValue]
    tags: tuple[str, ...]
    metrics: Mapping[str, MetricSummary]
    resources: ResourceUsage
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    created_by: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    @property
    def duration_seconds(self) -> float | None:
        """From start to end; ``None`` while the run is live."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment_id": self.experiment_id,
            "experiment": self.experiment,
            "name": self.name,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "params": dict(self.params),
            "tags": list(self.tags),
            "metrics": {name: summary.to_dict() for name, summary in self.metrics.items()},
            "resources": self.resources.to_dict(),
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of a run search; pass ``next_page_token`` back for the next (``None``: last)."""

    runs: tuple[Run, ...]
    next_page_token: str | None

    def __iter__(self) -> Any:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)


_OPERATORS = ("<", "<=", ">", ">=", "==", "!=")


@dataclass(frozen=True, slots=True)
class MetricFilter:
    """``name op value`` on a run's metric summary, e.g. ``MetricFilter("val/acc", ">=", 0.9)``.

    ``of`` picks the summary field compared: the latest value (``"last"``), or
    the finite ``"min"`` or ``"max"``. A run without the metric never matches.
    """

    name: str
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    value: float
    of: Literal["last", "min", "max"] = "last"

    def __post_init__(self) -> None:
        check_series(self.name)
        if self.op not in _OPERATORS:
            raise ValidationError(
                f"unknown comparison {self.op!r}; use one of {', '.join(_OPERATORS)}", op=self.op
            )
        if self.of not in ("last", "min", "max"):
            raise ValidationError(f"of must be 'last', 'min' or 'max', not {self.of!r}")
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise ValidationError(f"a metric filter compares with a number, not {self.value!r}")
        if not math.isfinite(self.value):
            raise ValidationError(f"a metric filter compares with a finite number: {self.value}")

    @classmethod
    def coerce(cls, value: MetricFilter | Sequence[Any]) -> MetricFilter:
        """A filter from itself or a ``(name, op, value)`` / ``(name, op, value, of)`` tuple."""
        if isinstance(value, MetricFilter):
            return value
        if isinstance(value, Sequence) and not isinstance(value, str) and len(value) in (3, 4):
            return cls(*value)
        raise ValidationError(
            f"not a metric filter: {value!r}; use MetricFilter(name, op, value) "
            "or a (name, op, value) tuple"
        )


@dataclass(frozen=True, slots=True)
class RunComparison:
    """Several runs side by side: each param and each metric's latest value, one column a run.

    ``params[name]`` and ``metrics[name]`` hold one entry per run, in
    ``run_ids`` order, ``None`` where a run lacks it. ``differing_params``
    names the params whose values are not all equal.
    """

    run_ids: tuple[int, ...]
    run_names: tuple[str | None, ...]
    params: Mapping[str, tuple[JSONValue, ...]]
    metrics: Mapping[str, tuple[float | None, ...]]
    differing_params: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    def to_table(self, *, only_differences: bool = False) -> list[list[str]]:
        """Rows of text: a header (``""`` then one run label per column), then params, then metrics.

        Param rows are named ``param:<name>``, metric rows ``metric:<name>``; a
        missing value is ``""``. ``only_differences`` keeps just the params that differ.
        """
        header = [""] + [
            f"{run_id} ({name})" if name else str(run_id)
            for run_id, name in zip(self.run_ids, self.run_names, strict=True)
        ]
        rows = [header]
        for name, values in self.params.items():
            if only_differences and name not in self.differing_params:
                continue
            rows.append([f"param:{name}"] + [_cell(value) for value in values])
        for name, metric_values in self.metrics.items():
            rows.append([f"metric:{name}"] + [_cell(value) for value in metric_values])
        return rows

    def __str__(self) -> str:
        rows = self.to_table()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_ids": list(self.run_ids),
            "run_names": list(self.run_names),
            "params": {name: list(values) for name, values in self.params.items()},
            "metrics": {
                name: [None if v is None else _json_float(v) for v in values]
                for name, values in self.metrics.items()
            },
            "differing_params": list(self.differing_params),
        }


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)
