"""The monitoring tables: sampled requests of served models, late labels by request id,
and alerts raised on deployments.

Rows only; :mod:`weightbase.monitoring` owns the rules (what is sampled, how a label joins
a prediction, when an alert opens and resolves).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from weightbase.catalog.base import Base, BigId

__all__ = ["ALERT_STATUSES", "MonitoringAlertRow", "MonitoringLabelRow", "MonitoringSampleRow"]

#: An alert's life: ``open`` → ``acknowledged`` → ``resolved`` (or straight to resolved).
ALERT_STATUSES = ("open", "acknowledged", "resolved")

# Any JSON value (a document, a list, a number, a string); SQL NULL for None.
_JSON = JSON(none_as_null=True)

# One unresolved alert per deployment and rule.
_UNRESOLVED = text("status != 'resolved'")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class MonitoringSampleRow(Base):
    """One sampled request of a served model version: when, how fast, whether it failed,
    and its inputs and outputs as JSON (``None`` where they were over the size limit)."""

    __tablename__ = "monitoring_samples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL")
    )
    request_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    latency_ms: Mapped[float] = mapped_column(Double)
    error: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[Any | None] = mapped_column(_JSON)
    outputs: Mapped[Any | None] = mapped_column(_JSON)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        CheckConstraint("latency_ms >= 0", name="latency_ms"),
        Index("ix_monitoring_samples_version_at", "version_id", "at"),
        Index("ix_monitoring_samples_deployment_at", "deployment_id", "at"),
        Index("ix_monitoring_samples_request", "request_id"),
    )


class MonitoringLabelRow(Base):
    """The true outcome of a request, arrived late: joined to its sample by request id."""

    __tablename__ = "monitoring_labels"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    label: Mapped[Any] = mapped_column(_JSON)
    at: Mapped[datetime]


class MonitoringAlertRow(Base):
    """An alert on a deployment: the rule crossed, the value against its threshold, and
    its state (open, acknowledged, resolved) with who moved it and when."""

    __tablename__ = "monitoring_alerts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    value: Mapped[float] = mapped_column(Double)
    threshold: Mapped[float] = mapped_column(Double)
    message: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    # "auto" when a check found the value back under its threshold, else "manual"
    resolution: Mapped[str | None] = mapped_column(String(16))
    checks: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        Index(
            "uq_monitoring_alerts_unresolved",
            "deployment_id",
            "rule",
            unique=True,
            sqlite_where=_UNRESOLVED,
            postgresql_where=_UNRESOLVED,
        ),
        Index("ix_monitoring_alerts_opened", "opened_at"),
    )
