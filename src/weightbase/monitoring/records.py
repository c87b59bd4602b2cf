"""The records of ``wb.monitoring``: sampled requests, labels, performance windows, alerts,
checks and health.

Frozen; ``to_dict`` gives JSON-ready values and ``from_dict`` reads them back (the remote
client rebuilds what the server answers, and the server reads what a recorder sends).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from weightbase.errors import ValidationError

__all__ = [
    "RECOMMENDATIONS",
    "Alert",
    "CheckResult",
    "Health",
    "LabelReceipt",
    "ObservedRequest",
    "Performance",
    "PerformanceWindow",
    "Sample",
    "SamplePage",
]

#: What :meth:`~weightbase.monitoring.service.Monitoring.health` advises.
RECOMMENDATIONS = ("none", "retrain", "rollback")
Recommendation = Literal["none", "retrain", "rollback"]
#: The longest request id kept.
MAX_REQUEST_ID = 128


def when(value: Any, name: str) -> datetime:
    """A time with its zone, from a ``datetime`` or ISO 8601 text."""
    if isinstance(value, datetime):
        found = value
    else:
        try:
            found = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValidationError(
                f"{name} must be an ISO 8601 time, not {value!r}", field=name
            ) from None
    if found.tzinfo is None:
        raise ValidationError(f"{name} must say its time zone", field=name)
    return found


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _maybe(value: Any, name: str) -> datetime | None:
    return None if value is None else when(value, name)


def request_id_of(value: Any) -> str:
    """A request id: text of 1 to 128 characters."""
    if not isinstance(value, str) or not value or len(value) > MAX_REQUEST_ID:
        raise ValidationError(
            f"a request id is text of 1 to {MAX_REQUEST_ID} characters, not {value!r}",
            field="request_id",
        )
    return value


def latency_of(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"latency_ms must be a finite number, not {value!r}", field="latency")
    if value < 0:
        raise ValidationError(f"latency_ms must be 0 or more, not {value!r}", field="latency_ms")
    return float(value)


@dataclass(frozen=True, slots=True)
class ObservedRequest:
    """A request a recorder kept, on its way to the catalog: the served ``target`` (a
    ``model@version`` ref or a deployment id), and the inputs and outputs as JSON values
    (``None`` where they were over the size limit, with ``truncated`` set)."""

    target: str
    request_id: str
    at: datetime
    latency_ms: float
    error: str | None = None
    inputs: Any = None
    outputs: Any = None
    truncated: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target or len(self.target) > 512:
            raise ValidationError(
                "a sample's target is a model@version ref or a deployment id", field="target"
            )
        request_id_of(self.request_id)
        object.__setattr__(self, "at", when(self.at, "at"))
        object.__setattr__(self, "latency_ms", latency_of(self.latency_ms))
        if self.error is not None and not isinstance(self.error, str):
            raise ValidationError("error must be text or null", field="error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "request_id": self.request_id,
            "at": self.at.isoformat(),
            "latency_ms": self.latency_ms,
            "error": self.error,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "truncated": self.truncated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObservedRequest:
        if not isinstance(data, Mapping):
            raise ValidationError("a sample is a JSON object", field="samples")
        try:
            return cls(
                target=data["target"],
                request_id=data["request_id"],
                at=data["at"],
                latency_ms=data["latency_ms"],
                error=data.get("error"),
                inputs=data.get("inputs"),
                outputs=data.get("outputs"),
                truncated=bool(data.get("truncated", False)),
            )
        except KeyError as exc:
            raise ValidationError(f"a sample needs {exc.args[0]}", field=str(exc.args[0])) from exc


@dataclass(frozen=True, slots=True)
class Sample:
    """A stored sampled request of a model version (and the deployment that served it),
    with the label that arrived for it, if one has."""

    id: int
    model: str
    version: str
    request_id: str
    at: datetime
    latency_ms: float
    error: str | None = None
    inputs: Any = None
    outputs: Any = None
    truncated: bool = False
    deployment_id: str | None = None
    label: Any = None

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "request_id": self.request_id,
            "at": self.at.isoformat(),
            "latency_ms": self.latency_ms,
            "error": self.error,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "truncated": self.truncated,
            "deployment_id": self.deployment_id,
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        return cls(
            id=int(data["id"]),
            model=str(data["model"]),
            version=str(data["version"]),
            request_id=str(data["request_id"]),
            at=when(data["at"], "at"),
            latency_ms=float(data["latency_ms"]),
            error=data.get("error"),
            inputs=data.get("inputs"),
            outputs=data.get("outputs"),
            truncated=bool(data.get("truncated", False)),
            deployment_id=data.get("deployment_id"),
            label=data.get("label"),
        )


@dataclass(frozen=True, slots=True)
class SamplePage:
    """One page of samples, oldest first; pass ``next`` back as the cursor (None: the end)."""

    items: tuple[Sample, ...]
    next: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [item.to_dict() for item in self.items], "next": self.next}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SamplePage:
        return cls(tuple(Sample.from_dict(item) for item in data["items"]), data.get("next"))


@dataclass(frozen=True, slots=True)
class LabelReceipt:
    """What a batch of labels did: how many were stored, how many met a sampled request."""

    stored: int
    matched: int

    def to_dict(self) -> dict[str, Any]:
        return {"stored": self.stored, "matched": self.matched}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelReceipt:
        return cls(int(data["stored"]), int(data["matched"]))


@dataclass(frozen=True, slots=True)
class PerformanceWindow:
    """A model version's labeled samples in one window: how many, accuracy (classification)
    or MAE and RMSE (regression), the drop from the registered metric and whether it passes
    the threshold."""

    start: datetime
    end: datetime
    count: int
    accuracy: float | None = None
    mae: float | None = None
    rmse: float | None = None
    drop: float | None = None
    degraded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "count": self.count,
            "accuracy": self.accuracy,
            "mae": self.mae,
            "rmse": self.rmse,
            "drop": self.drop,
            "degraded": self.degraded,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceWindow:
        return cls(
            start=when(data["start"], "start"),
            end=when(data["end"], "end"),
            count=int(data["count"]),
            accuracy=data.get("accuracy"),
            mae=data.get("mae"),
            rmse=data.get("rmse"),
            drop=data.get("drop"),
            degraded=bool(data.get("degraded", False)),
        )


@dataclass(frozen=True, slots=True)
class Performance:
    """A model version's performance on labeled samples, window by window, against the
    metric registered with the version (``baseline``; None when it has none)."""

    model: str
    version: str
    kind: Literal["classification", "regression"]
    metric: str
    baseline: float | None
    threshold: float
    window_s: float
    windows: tuple[PerformanceWindow, ...] = ()

    @property
    def latest(self) -> PerformanceWindow | None:
        """The newest window with labels (``None``: none has)."""
        return self.windows[-1] if self.windows else None

    @property
    def degraded(self) -> bool:
        latest = self.latest
        return latest is not None and latest.degraded

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "kind": self.kind,
            "metric": self.metric,
            "baseline": self.baseline,
            "threshold": self.threshold,
            "window_s": self.window_s,
            "windows": [item.to_dict() for item in self.windows],
            "degraded": self.degraded,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Performance:
        return cls(
            model=str(data["model"]),
            version=str(data["version"]),
            kind=data["kind"],
            metric=str(data["metric"]),
            baseline=data.get("baseline"),
            threshold=float(data["threshold"]),
            window_s=float(data["window_s"]),
            windows=tuple(PerformanceWindow.from_dict(item) for item in data["windows"]),
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert on a deployment: the rule crossed, its value against the threshold, and its
    state (``open`` → ``acknowledged`` → ``resolved``)."""

    id: str
    deployment_id: str
    model: str
    environment: str
    rule: str
    status: str
    value: float
    threshold: float
    message: str
    opened: datetime
    acknowledged: datetime | None = None
    acknowledged_by: str | None = None
    resolved: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    checks: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment_id": self.deployment_id,
            "model": self.model,
            "environment": self.environment,
            "rule": self.rule,
            "status": self.status,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "opened": self.opened.isoformat(),
            "acknowledged": _iso(self.acknowledged),
            "acknowledged_by": self.acknowledged_by,
            "resolved": _iso(self.resolved),
            "resolved_by": self.resolved_by,
            "resolution": self.resolution,
            "checks": self.checks,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        return cls(
            id=str(data["id"]),
            deployment_id=str(data["deployment_id"]),
            model=str(data["model"]),
            environment=str(data["environment"]),
            rule=str(data["rule"]),
            status=str(data["status"]),
            value=float(data["value"]),
            threshold=float(data["threshold"]),
            message=str(data["message"]),
            opened=when(data["opened"], "opened"),
            acknowledged=_maybe(data.get("acknowledged"), "acknowledged"),
            acknowledged_by=data.get("acknowledged_by"),
            resolved=_maybe(data.get("resolved"), "resolved"),
            resolved_by=data.get("resolved_by"),
            resolution=data.get("resolution"),
            checks=int(data.get("checks", 1)),
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One evaluation of a deployment's rules: what was measured (None: no data), the
    thresholds used, and the alerts it opened, resolved, and left open."""

    deployment_id: str
    measured: Mapping[str, float | None]
    thresholds: Mapping[str, float]
    opened: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()
    open: tuple[Alert, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "measured": dict(self.measured),
            "thresholds": dict(self.thresholds),
            "opened": [item.to_dict() for item in self.opened],
            "resolved": [item.to_dict() for item in self.resolved],
            "open": [item.to_dict() for item in self.open],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(
            deployment_id=str(data["deployment_id"]),
            measured=dict(data["measured"]),
            thresholds=dict(data["thresholds"]),
            opened=tuple(Alert.from_dict(item) for item in data["opened"]),
            resolved=tuple(Alert.from_dict(item) for item in data["resolved"]),
            open=tuple(Alert.from_dict(item) for item in data["open"]),
        )


@dataclass(frozen=True, slots=True)
class Health:
    """A deployment's health: a score from 0 (failing) to 100 (healthy), the points each
    signal took off, what was measured, and a recommendation with the version to roll back
    to where it is ``rollback``."""

    deployment_id: str
    model: str
    version: str
    environment: str
    score: float
    penalties: Mapping[str, float]
    measured: Mapping[str, float | None]
    recommendation: Recommendation
    rollback_to: str | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "model": self.model,
            "version": self.version,
            "environment": self.environment,
            "score": self.score,
            "penalties": dict(self.penalties),
            "measured": dict(self.measured),
            "recommendation": self.recommendation,
            "rollback_to": self.rollback_to,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Health:
        return cls(
            deployment_id=str(data["deployment_id"]),
            model=str(data["model"]),
            version=str(data["version"]),
            environment=str(data["environment"]),
            score=float(data["score"]),
            penalties=dict(data["penalties"]),
            measured=dict(data["measured"]),
            recommendation=data["recommendation"],
            rollback_to=data.get("rollback_to"),
            reasons=tuple(data.get("reasons", ())),
        )
