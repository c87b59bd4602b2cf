"""The webhooks' tables: subscriptions to event types, and every delivery of an event to one.

Rows only; :mod:`weightbase.webhooks` owns the rules (what a subscription may
name, how deliveries are retried).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from weightbase.catalog.base import Base, BigId, utcnow

__all__ = ["DELIVERY_STATUSES", "WebhookDeliveryRow", "WebhookRow"]

#: Where a delivery stands: still to be tried (again), done, or given up on.
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookRow(Base):
    """A subscription: which event types to POST, where, signed with which secret."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[Any]]
    # The HMAC key deliveries are signed with; the receiver holds the same one.
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    # Events up to this id have been fanned out into deliveries (or were older
    # than the subscription).
    cursor_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))


class WebhookDeliveryRow(Base):
    """One event for one subscription: its attempts and how the last one went."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    # When the next attempt may start; an attempt in flight pushes it one lease ahead,
    # so a process that dies mid-delivery leaves it to be tried again.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_latency_ms: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        CheckConstraint(
            f"status IN ({', '.join(repr(status) for status in DELIVERY_STATUSES)})",
            name="status",
        ),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    )
