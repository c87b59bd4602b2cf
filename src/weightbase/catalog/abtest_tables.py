"""The A/B tests' tables: each test with its variants and allocation, and the running sums
of its outcomes per variant and metric.

Rows only; :mod:`weightbase.serving.abtests` owns the rules (who is assigned where, which
outcomes count, what a result says).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
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

from weightbase.catalog.base import Base, utcnow

__all__ = ["ABTEST_STATUSES", "METRIC_KINDS", "ABTestRow", "ABTestStatRow"]

#: Where a test stands: ``running`` ones take outcomes, ``stopped`` ones keep their results.
ABTEST_STATUSES = ("running", "stopped")
#: How a metric's outcomes are read: 0/1 (``binary``) or any number (``continuous``).
METRIC_KINDS = ("binary", "continuous")

# A name names one running test at a time: a stopped one frees it.
_RUNNING = text("status = 'running'")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class ABTestRow(Base):
    """An A/B test: its variants, traffic allocation, salt, metrics, plan and decision."""

    __tablename__ = "ab_tests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="running")
    # [{"name", "model", "version", "deployment_id"}, ...]; the first is control.
    variants: Mapped[list[Any]]
    # The serving.ab_assign.Allocation, as its to_dict() writes it: the weights and the
    # bucket ranges, so a reweight moves only the buckets it must.
    allocation: Mapped[dict[str, Any]]
    # Each stretch of traffic under one set of weights: [{"weights", "counts"}, ...], with
    # the primary metric's outcomes per variant when it began, so the sample-ratio check
    # expects what each stretch's weights promised, not the latest weights for all.
    weight_periods: Mapped[list[Any]]
    salt: Mapped[str] = mapped_column(String(255))
    metric: Mapped[str] = mapped_column(String(128))
    metric_kind: Mapped[str] = mapped_column(String(16))
    higher_is_better: Mapped[bool] = mapped_column(Boolean)
    # [{"name", "kind", "higher_is_better"}, ...]
    guardrails: Mapped[list[Any]]
    planned_units: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]
    decision: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    winner: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint(_in("status", ABTEST_STATUSES), name="status"),
        CheckConstraint(_in("metric_kind", METRIC_KINDS), name="metric_kind"),
        CheckConstraint("planned_units IS NULL OR planned_units > 0", name="planned_units"),
        Index(
            "uq_ab_tests_name_running",
            "name",
            unique=True,
            sqlite_where=_RUNNING,
            postgresql_where=_RUNNING,
        ),
        Index("ix_ab_tests_started", "started_at"),
    )


class ABTestStatRow(Base):
    """One variant's outcomes of one metric: count, sum and sum of squares, kept up to date
    with every batch of outcomes; and the running minimum of its always-valid p-value
    against control over the looks so far (``None`` for control, or before a first look)."""

    __tablename__ = "ab_test_stats"

    test_id: Mapped[str] = mapped_column(
        ForeignKey("ab_tests.id", ondelete="CASCADE"), primary_key=True
    )
    variant: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String(128), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[float] = mapped_column(Double, default=0.0)
    total_squares: Mapped[float] = mapped_column(Double, default=0.0)
    min_p_value: Mapped[float | None] = mapped_column(Double)
    looks: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint("count >= 0", name="count"),)
