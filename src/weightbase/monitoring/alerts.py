"""Alert rules and alert rows of ``wb.monitoring``: which thresholds of a deployment's
``alertThresholds`` a check evaluates, how a drift report reads as a share, and the
alerts' rows (opened, counted, acknowledged, resolved) in the caller's transaction.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weightbase.catalog.schema import MonitoringAlertRow, utcnow
from weightbase.errors import NotFound, ValidationError
from weightbase.monitoring.records import Alert

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.serving.records import Deployment

__all__ = [
    "DEFAULT_THRESHOLDS",
    "RULES",
    "alert_record",
    "drift_share_of",
    "find_alert",
    "open_alert",
    "unresolved",
]

#: The rules a check evaluates, by their ``alertThresholds`` name: an alert opens when the
#: measured value is above the threshold. ``p99_latency_ms`` and ``error_rate`` are the
#: names the Kubernetes manifests already read; others in the configuration
#: (``memory_fraction``, ``cpu_fraction``) are Prometheus's, not read here.
RULES = {
    "error_rate": "share of requests that failed",
    "p50_latency_ms": "median request latency (ms), the worst window's",
    "p95_latency_ms": "95th percentile request latency (ms), the worst window's",
    "p99_latency_ms": "99th percentile request latency (ms), the worst window's",
    "accuracy_drop": "drop of the latest labeled window from the registered metric",
    "drift_share": "share of features whose distribution drifted",
}
#: What health scores against where the deployment sets no threshold of its own.
DEFAULT_THRESHOLDS = {
    "error_rate": 0.05,
    "p95_latency_ms": 1000.0,
    "accuracy_drop": 0.05,
    "drift_share": 0.5,
}

_ALERT_ID = re.compile(r"[0-9a-f]{32}")
_SHARE_KEYS = ("drifted_share", "share_of_drifted_features", "share_drifted")


def drift_share_of(drift: Any) -> float | None:
    """The share of drifted features a drift report gives: a number as it is; a
    :class:`~weightbase.monitoring.drift_records.DriftReport`'s ``drifted_share``; or from a
    mapping (or an object's ``to_dict()``) its ``drifted_share``, else its per-column
    ``drifted`` flags (``columns`` or ``features``). ``None`` for no report.

    A report's ``drift_share`` is Evidently's threshold for dataset drift, not a
    measurement, and is not read."""
    if drift is None:
        return None
    if isinstance(drift, int | float) and not isinstance(drift, bool):
        share = float(drift)
    elif isinstance(getattr(drift, "drifted_share", None), int | float):
        share = float(drift.drifted_share)
    else:
        data = drift.to_dict() if hasattr(drift, "to_dict") else drift
        if not isinstance(data, Mapping):
            raise ValidationError(
                "drift is a share (0 to 1) or a drift report with to_dict()", field="drift"
            )
        found = next((data[key] for key in _SHARE_KEYS if key in data), None)
        if found is None:
            columns = data.get("columns", data.get("features"))
            items = list(columns.values()) if isinstance(columns, Mapping) else columns
            if not isinstance(items, list) or not items:
                raise ValidationError("the drift report names no drift share", field="drift")
            flags = [bool(item.get("drifted", item.get("drift_detected"))) for item in items]
            found = sum(flags) / len(flags)
        share = float(found)
    if not 0 <= share <= 1:
        raise ValidationError(f"a drift share is between 0 and 1, not {share!r}", field="drift")
    return share


def alert_record(row: MonitoringAlertRow, model: str, environment: str) -> Alert:
    return Alert(
        id=row.id,
        deployment_id=row.deployment_id,
        model=model,
        environment=environment,
        rule=row.rule,
        status=row.status,
        value=row.value,
        threshold=row.threshold,
        message=row.message,
        opened=row.opened_at,
        acknowledged=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution=row.resolution,
        checks=row.checks,
    )


def find_alert(session: Session, alert_id: str, *, lock: bool = False) -> MonitoringAlertRow:
    if not isinstance(alert_id, str) or not _ALERT_ID.fullmatch(alert_id):
        raise ValidationError(f"an alert id is 32 hex digits, not {alert_id!r}", field="alert")
    row = session.get(MonitoringAlertRow, alert_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"no alert {alert_id}", alert=alert_id)
    return row


def unresolved(session: Session, deployment_id: str) -> dict[str, MonitoringAlertRow]:
    """The deployment's open or acknowledged alerts, by rule."""
    query = select(MonitoringAlertRow).where(
        MonitoringAlertRow.deployment_id == deployment_id,
        MonitoringAlertRow.status != "resolved",
    )
    return {row.rule: row for row in session.scalars(query.with_for_update())}


def open_alert(
    session: Session, deployment: Deployment, rule: str, value: float, threshold: float
) -> MonitoringAlertRow:
    message = (
        f"{deployment.model}@{deployment.version} in {deployment.environment}: "
        f"{RULES[rule]} is {value:.4g}, above {threshold:.4g}"
    )
    row = MonitoringAlertRow(
        id=uuid.uuid4().hex,
        deployment_id=deployment.id,
        rule=rule,
        status="open",
        value=value,
        threshold=threshold,
        message=message,
        opened_at=utcnow(),
        checks=1,
    )
    session.add(row)
    return row
