"""``wb.webhooks``: subscriptions to event types and the log of their deliveries.

    hook, secret = wb.webhooks.subscribe("https://ci.example/hooks", ["model_version_created"])
    wb.webhooks.deliveries(hook.id)              # status, attempts, last HTTP status, latency

A subscription sees the events committed after it was made. The secret signs
every delivery (see :mod:`weightbase.webhooks.signing`); it is returned once,
by ``subscribe``, and is never written to the audit log.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from weightbase.catalog.schema import EventRow
from weightbase.catalog.webhook_tables import DELIVERY_STATUSES, WebhookDeliveryRow, WebhookRow
from weightbase.errors import NotFound, ValidationError
from weightbase.events import ALL_EVENTS
from weightbase.webhooks.signing import new_secret

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder

__all__ = ["Delivery", "Webhook", "Webhooks"]

_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,127}\Z")
_KIND = "webhook"


@dataclass(frozen=True, slots=True)
class Webhook:
    """A subscription (its secret is not part of the record)."""

    id: int
    url: str
    event_types: tuple[str, ...]
    description: str | None
    created_at: datetime
    created_by: str | None

    def wants(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` is delivered to this subscription."""
        return ALL_EVENTS in self.event_types or event_type in self.event_types

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "event_types": list(self.event_types),
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event sent (or still to be sent) to one subscription."""

    id: int
    webhook_id: int
    event_id: int
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    last_latency_ms: float | None
    created_at: datetime
    delivered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "last_latency_ms": self.last_latency_ms,
            "created_at": self.created_at.isoformat(),
            "delivered_at": None if self.delivered_at is None else self.delivered_at.isoformat(),
        }


class Webhooks:
    """Subscribe URLs to event types; list subscriptions and their deliveries."""

    def __init__(self, catalog: Catalog, *, recorder: ChangeRecorder) -> None:
        self._catalog = catalog
        self._recorder = recorder

    def subscribe(
        self,
        url: str,
        event_types: Iterable[str],
        *,
        description: str | None = None,
        secret: str | None = None,
    ) -> tuple[Webhook, str]:
        """POST every later event of ``event_types`` (``"*"``: all) to ``url``; the hook and
        its signing secret (``secret``, or a new random one), which is not shown again."""
        checked_url = _check_url(url)
        types = _check_event_types(event_types)
        if secret is not None and not 16 <= len(secret) <= 128:
            raise ValidationError("a webhook secret must be 16 to 128 characters")
        key = secret if secret is not None else new_secret()

        def work(session: Session) -> int:
            newest = session.scalar(select(func.max(EventRow.id))) or 0
            row = WebhookRow(
                url=checked_url,
                event_types=list(types),
                secret=key,
                description=description,
                cursor_event_id=newest,
                created_by=self._recorder.actor,
            )
            session.add(row)
            session.flush()
            after = {"url": checked_url, "event_types": list(types)}
            self._recorder.record(session, "webhook.create", _KIND, row.id, after=after)
            return row.id

        return self.get(self._catalog.write(work)), key

    def get(self, webhook_id: int) -> Webhook:
        """The subscription ``webhook_id``; ``NotFound`` if there is none."""
        with self._catalog.session() as session:
            return _to_webhook(_require(session, webhook_id))

    def list(self) -> list[Webhook]:
        """Every subscription, oldest first."""
        with self._catalog.session() as session:
            return [
                _to_webhook(row)
                for row in session.scalars(select(WebhookRow).order_by(WebhookRow.id))
            ]

    def remove(self, webhook_id: int, *, reason: str | None = None) -> None:
        """Delete a subscription and its delivery log; nothing more is sent to it."""

        def work(session: Session) -> None:
            row = _require(session, webhook_id)
            before = {"url": row.url, "event_types": list(row.event_types)}
            session.delete(row)
            self._recorder.record(
                session, "webhook.remove", _KIND, webhook_id, before=before, reason=reason
            )

        self._catalog.write(work)

    def deliveries(
        self,
        webhook_id: int | None = None,
        *,
        status: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> builtins.list[Delivery]:
        """Deliveries, newest first: of one subscription and in one status when given.

        ``before_id`` pages on: the id of the last (oldest) delivery seen.
        """
        if status is not None and status not in DELIVERY_STATUSES:
            raise ValidationError(
                f"unknown delivery status {status!r}; choose one of {', '.join(DELIVERY_STATUSES)}"
            )
        if not 1 <= limit <= 1000:
            raise ValidationError(f"limit must be between 1 and 1000, not {limit}")
        query = select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.id.desc()).limit(limit)
        if webhook_id is not None:
            query = query.where(WebhookDeliveryRow.webhook_id == webhook_id)
        if status is not None:
            query = query.where(WebhookDeliveryRow.status == status)
        if before_id is not None:
            query = query.where(WebhookDeliveryRow.id < before_id)
        with self._catalog.session() as session:
            if webhook_id is not None:
                _require(session, webhook_id)
            return [to_delivery(row) for row in session.scalars(query)]


def _check_url(url: str) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"a webhook URL must be http(s)://host/…, not {url!r}", url=url)
    if len(url) > 2048:
        raise ValidationError("a webhook URL must be at most 2048 characters")
    return url


def _check_event_types(event_types: Iterable[str]) -> Sequence[str]:
    types = [event_types] if isinstance(event_types, str) else list(event_types)
    if not types:
        raise ValidationError("a webhook needs at least one event type ('*' for every event)")
    for event_type in types:
        if event_type != ALL_EVENTS and (
            not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type)
        ):
            raise ValidationError(f"invalid event type {event_type!r}", event_type=event_type)
    return tuple(dict.fromkeys(types))


def _require(session: Session, webhook_id: int) -> WebhookRow:
    row = session.get(WebhookRow, webhook_id)
    if row is None:
        raise NotFound(f"no webhook {webhook_id}", webhook=webhook_id)
    return row


def _to_webhook(row: WebhookRow) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        event_types=tuple(row.event_types),
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def to_delivery(row: WebhookDeliveryRow) -> Delivery:
    """The record of a delivery row."""
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        last_latency_ms=row.last_latency_ms,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )
