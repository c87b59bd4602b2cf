"""``wb.monitoring`` of a remote workspace: production monitoring on a weightbase server.

Every public method of :class:`~weightbase.monitoring.service.Monitoring` is overridden (a
test checks that none is inherited) and answers from ``/api/v1/monitoring``. A drift
report travels as its share of drifted features.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from weightbase.errors import ValidationError
from weightbase.monitoring.alerts import drift_share_of
from weightbase.monitoring.drift import drift_report
from weightbase.monitoring.drift_records import DriftReport
from weightbase.monitoring.recorder import SampleRecorder
from weightbase.monitoring.records import (
    Alert,
    CheckResult,
    Health,
    LabelReceipt,
    ObservedRequest,
    Performance,
    Sample,
    SamplePage,
)
from weightbase.monitoring.samples import LabelLike, parse_labels
from weightbase.monitoring.service import Monitoring

if TYPE_CHECKING:
    from weightbase.remote.http import Connection

__all__ = ["RemoteMonitoring"]

_MONITORING = "/api/v1/monitoring"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class RemoteMonitoring(Monitoring):
    """Monitoring kept by the server: the same records, over HTTP."""

    def __init__(self, connection: Connection) -> None:  # no catalog: the server has it
        self._http = connection

    def _alert_path(self, alert_id: str, tail: str = "") -> str:
        if not isinstance(alert_id, str) or not alert_id:
            raise ValidationError(f"an alert id is text, not {alert_id!r}", field="alert")
        return f"{_MONITORING}/alerts/{quote(alert_id, safe='')}{tail}"

    def recorder(
        self,
        *,
        rate: float = 0.1,
        max_bytes: int = 64 * 1024,
        max_per_window: int = 1000,
        flush_interval_s: float = 5.0,
    ) -> SampleRecorder:
        return SampleRecorder(
            self,
            rate=rate,
            max_bytes=max_bytes,
            max_per_window=max_per_window,
            flush_interval_s=flush_interval_s,
        )

    def record_samples(self, samples: Sequence[ObservedRequest]) -> int:
        if isinstance(samples, str | bytes) or not isinstance(samples, Sequence):
            raise ValidationError("samples are a list", field="samples")
        if not samples:
            return 0
        body = {"samples": [item.to_dict() for item in samples]}
        return int(self._http.post(f"{_MONITORING}/samples", body)["recorded"])

    def samples(
        self,
        target: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> SamplePage:
        found = self._http.get(
            f"{_MONITORING}/samples",
            target=target,
            since=_iso(since),
            until=_iso(until),
            limit=limit,
            cursor=cursor,
        )
        return SamplePage(tuple(Sample.from_dict(item) for item in found["items"]), found["next"])

    def inputs(
        self,
        target: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> dict[str, builtins.list[Any]]:
        found = self._http.get(
            f"{_MONITORING}/inputs",
            target=target,
            since=_iso(since),
            until=_iso(until),
            limit=limit,
        )
        return {str(key): list(values) for key, values in found["columns"].items()}

    def drift(
        self,
        target: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        reference: Any = None,
        limit: int = 10_000,
        **options: Any,
    ) -> DriftReport:
        if reference is not None:  # the caller's reference: compared here, on the samples
            current = self.inputs(target, since=since, until=until, limit=limit)
            return drift_report(reference, current, **options)
        if options:
            raise ValidationError(
                f"through a server the default reference takes no options ({', '.join(options)})"
                "; pass reference= to compare here with them",
                field="options",
            )
        found = self._http.get(
            f"{_MONITORING}/drift", target=target, since=_iso(since), until=_iso(until), limit=limit
        )
        return DriftReport.from_dict(found)

    def prune(self, before: datetime, *, target: str | None = None) -> int:
        if not isinstance(before, datetime) or before.tzinfo is None:
            raise ValidationError("before must be a time with its zone", field="before")
        found = self._http.delete(
            f"{_MONITORING}/samples", before=before.isoformat(), target=target
        )
        return int(found["deleted"])

    def label(self, request_id: str, label: Any) -> LabelReceipt:
        return self.labels([(request_id, label)])

    def labels(self, labels: Sequence[LabelLike]) -> LabelReceipt:
        # checked here as the server checks them: JSON cannot carry every refusal (NaN)
        parsed = parse_labels(labels)
        body = {"labels": [{"request_id": key, "label": value} for key, value in parsed.items()]}
        return LabelReceipt.from_dict(self._http.post(f"{_MONITORING}/labels", body))

    def performance(
        self,
        target: str,
        *,
        window_s: float = 3600.0,
        kind: str = "auto",
        threshold: float | None = None,
        min_labels: int = 10,
        since: datetime | None = None,
    ) -> Performance:
        found = self._http.get(
            f"{_MONITORING}/performance",
            target=target,
            window_s=window_s,
            kind=kind,
            threshold=threshold,
            min_labels=min_labels,
            since=_iso(since),
        )
        return Performance.from_dict(found)

    def check(
        self,
        deployment: str,
        *,
        environment: str | None = None,
        drift: Any = None,
        lookback_s: float = 300.0,
        window_s: float = 3600.0,
        min_labels: int = 10,
    ) -> CheckResult:
        body = {
            "deployment": deployment,
            "environment": environment,
            "drift_share": drift_share_of(drift),
            "lookback_s": lookback_s,
            "window_s": window_s,
            "min_labels": min_labels,
        }
        return CheckResult.from_dict(self._http.post(f"{_MONITORING}/check", body))

    def alerts(
        self,
        *,
        deployment: str | None = None,
        environment: str | None = None,
        status: str | None = None,
        rule: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Alert]:
        found = self._http.get(
            f"{_MONITORING}/alerts",
            deployment=deployment,
            environment=environment,
            status=status,
            rule=rule,
            limit=limit,
        )
        return [Alert.from_dict(item) for item in found["items"]]

    def alert(self, alert_id: str) -> Alert:
        return Alert.from_dict(self._http.get(self._alert_path(alert_id)))

    def acknowledge(self, alert_id: str, *, reason: str | None = None) -> Alert:
        found = self._http.post(self._alert_path(alert_id, "/acknowledge"), {"reason": reason})
        return Alert.from_dict(found)

    def resolve(self, alert_id: str, *, reason: str | None = None) -> Alert:
        found = self._http.post(self._alert_path(alert_id, "/resolve"), {"reason": reason})
        return Alert.from_dict(found)

    def health(
        self,
        deployment: str,
        *,
        environment: str | None = None,
        drift: Any = None,
        lookback_s: float = 300.0,
        window_s: float = 3600.0,
        min_labels: int = 10,
    ) -> Health:
        found = self._http.get(
            f"{_MONITORING}/health",
            deployment=deployment,
            environment=environment,
            drift_share=drift_share_of(drift),
            lookback_s=lookback_s,
            window_s=window_s,
            min_labels=min_labels,
        )
        return Health.from_dict(found)
