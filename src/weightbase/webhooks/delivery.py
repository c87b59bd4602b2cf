"""Delivering events to webhooks: fan out from the event log, POST signed, retry with backoff.

The dispatcher follows the catalog's persisted event log, so it sees every
process's events, and keeps all its state in the catalog, so several server
processes can run one each:

- **fan out**: each subscription's cursor moves over the events committed
  since; every event it wants becomes one delivery row (unique per
  subscription and event, so two dispatchers never make two);
- **claim**: an attempt starts by moving the delivery's next attempt one lease
  ahead in a conditional update, which only one dispatcher wins; one that dies
  mid-attempt leaves the delivery to be tried again when the lease ends;
- **send**: the event as JSON, signed (:mod:`weightbase.webhooks.signing`),
  redirects not followed; a 2xx answer delivers it; anything else, a timeout
  or a refused connection is retried after ``base_delay_s · 2^(attempt-1)``
  (at most ``max_delay_s``), until ``max_attempts`` attempts have failed.

Every attempt updates the delivery's log: attempts, the last status code or
error, and the latency.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from weightbase.catalog.base import utcnow
from weightbase.catalog.rows import insert_or_ignore
from weightbase.catalog.schema import EventRow
from weightbase.catalog.webhook_tables import WebhookDeliveryRow, WebhookRow
from weightbase.errors import MissingExtraError, ValidationError
from weightbase.events import ALL_EVENTS
from weightbase.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog

__all__ = ["Dispatcher"]

logger = logging.getLogger(__name__)

_ERROR_CHARS = 500


class Dispatcher:
    """Fans committed events out to subscriptions and sends them, retrying with backoff."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        max_attempts: int = 8,
        base_delay_s: float = 1.0,
        max_delay_s: float = 600.0,
        timeout_s: float = 10.0,
        lease_s: float = 60.0,
        settle_s: float = 2.0,
        batch: int = 100,
    ) -> None:
        if max_attempts < 1:
            raise ValidationError(f"max_attempts must be at least 1, not {max_attempts}")
        if min(base_delay_s, max_delay_s, timeout_s, lease_s, settle_s) < 0:
            raise ValidationError("webhook delays and timeouts cannot be negative")
        try:
            import httpx
        except ImportError as exc:
            raise MissingExtraError(
                "delivering webhooks needs httpx: pip install 'weightbase[server]'"
            ) from exc
        self._catalog = catalog
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.lease_s = lease_s
        # An event's id is taken when its transaction inserts it, not when it
        # commits: events younger than this may still be joined by lower ids.
        self.settle_s = settle_s
        self.batch = batch
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one round -------------------------------------------------------------------

    def run_once(self) -> int:
        """Fan out new events, then attempt every delivery that is due; the attempts made."""
        self.fan_out()
        return self.deliver_due()

    def fan_out(self) -> int:
        """Turn the events committed since each subscription's cursor into deliveries."""
        settled = utcnow() - timedelta(seconds=self.settle_s)

        def work(session: Session) -> int:
            made = 0
            for hook in session.scalars(select(WebhookRow).order_by(WebhookRow.id)):
                events = session.execute(
                    select(EventRow.id, EventRow.type)
                    .where(EventRow.id > hook.cursor_event_id, EventRow.at <= settled)
                    .order_by(EventRow.id)
                    .limit(self.batch)
                ).all()
                wanted = set(hook.event_types)
                for event_id, event_type in events:
                    if ALL_EVENTS in wanted or event_type in wanted:
                        inserted = insert_or_ignore(
                            session,
                            WebhookDeliveryRow,
                            webhook_id=hook.id,
                            event_id=event_id,
                            event_type=event_type,
                            status="pending",
                            attempts=0,
                            next_attempt_at=utcnow(),
                            created_at=utcnow(),
                        )
                        made += inserted is not None
                if events:
                    hook.cursor_event_id = max(hook.cursor_event_id, events[-1][0])
            return made

        return self._catalog.write(work)

    def deliver_due(self) -> int:
        """Attempt every pending delivery whose time has come; the attempts made."""
        now = utcnow()
        with self._catalog.session() as session:
            due = session.execute(
                select(WebhookDeliveryRow.id, WebhookDeliveryRow.attempts)
                .where(
                    WebhookDeliveryRow.status == "pending",
                    WebhookDeliveryRow.next_attempt_at <= now,
                )
                .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.id)
                .limit(self.batch)
            ).all()
        made = 0
        for delivery_id, attempts in due:
            request = self._claim(delivery_id, attempts)
            if request is not None:
                self._attempt(delivery_id, attempts + 1, *request)
                made += 1
        return made

    # -- one delivery ----------------------------------------------------------------

    def _claim(self, delivery_id: int, attempts: int) -> tuple[str, str, bytes, str] | None:
        """Take the delivery for one attempt; its URL, secret, body and event type, or None."""
        now = utcnow()

        def work(session: Session) -> tuple[str, str, bytes, str] | None:
            taken = session.execute(
                update(WebhookDeliveryRow)
                .where(
                    WebhookDeliveryRow.id == delivery_id,
                    WebhookDeliveryRow.status == "pending",
                    WebhookDeliveryRow.attempts == attempts,
                    WebhookDeliveryRow.next_attempt_at <= now,
                )
                .values(
                    attempts=attempts + 1, next_attempt_at=now + timedelta(seconds=self.lease_s)
                )
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another dispatcher has it, or it changed since it was listed
            delivery = session.get_one(WebhookDeliveryRow, delivery_id)
            hook = session.get_one(WebhookRow, delivery.webhook_id)
            event = session.get(EventRow, delivery.event_id)
            body: dict[str, Any] = {"delivery_id": delivery_id, "event": None}
            if event is not None:
                body["event"] = {
                    "id": event.id,
                    "at": event.at.isoformat(),
                    "type": event.type,
                    "payload": dict(event.payload),
                }
            data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
            return hook.url, hook.secret, data, delivery.event_type

        return self._catalog.write(work)

    def _attempt(
        self, delivery_id: int, attempt: int, url: str, secret: str, body: bytes, event_type: str
    ) -> None:
        sent = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "weightbase-webhooks",
            "X-Weightbase-Event": event_type,
            "X-Weightbase-Delivery": str(delivery_id),
            TIMESTAMP_HEADER: str(sent),
            SIGNATURE_HEADER: sign(secret, body, sent),
        }
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            response = self._client.post(url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except Exception as exc:  # any failure to reach the receiver is retried
            error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
        latency_ms = (time.perf_counter() - started) * 1000
        self._record(delivery_id, attempt, status_code, error, latency_ms)

    def _record(
        self,
        delivery_id: int,
        attempt: int,
        status_code: int | None,
        error: str | None,
        latency_ms: float,
    ) -> None:
        now = utcnow()
        values: dict[str, Any] = {
            "last_status_code": status_code,
            "last_error": error,
            "last_latency_ms": round(latency_ms, 3),
        }
        if error is None:
            values.update(status="delivered", delivered_at=now)
        elif attempt >= self.max_attempts:
            values.update(status="failed")
        else:
            values.update(next_attempt_at=now + timedelta(seconds=self.backoff(attempt)))

        def work(session: Session) -> None:
            session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == delivery_id)
                .values(**values)
            )

        self._catalog.write(work)
        if error is not None:
            logger.warning("webhook delivery %d, attempt %d: %s", delivery_id, attempt, error)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))

    # -- in the background -----------------------------------------------------------

    def start(self, *, poll_interval_s: float = 1.0) -> None:
        """Run rounds in a daemon thread every ``poll_interval_s`` until :meth:`stop`."""
        if self._thread is not None:
            raise ValidationError("this dispatcher is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop,
            args=(poll_interval_s, self.run_once),
            daemon=True,
            name="wb-webhooks",
        )
        self._thread.start()

    def _loop(self, poll_interval_s: float, round_: Callable[[], int]) -> None:
        while not self._stop.is_set():
            try:
                round_()
            except Exception:
                logger.exception("webhook dispatcher round failed; trying again")
            self._stop.wait(poll_interval_s)

    def stop(self) -> None:
        """Stop the background thread (after its current round) and close the HTTP client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._client.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
