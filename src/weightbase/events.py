"""Events: a persisted log of what happened in the catalog, plus in-process subscribers.

    bus.on("model_version_created", lambda event: print(event.payload["version"]))
    with catalog.transaction() as session:
        ...                                              # the change itself
        bus.emit("model_version_created", {...}, session=session)

An emitted event is a row in the ``events`` table, written in the caller's
transaction, so the change and its event commit (or vanish) together.
Subscribers run in this process once that transaction has committed; one that
raises is logged and does not affect the write or the other subscribers. Other
processes read the log with :meth:`EventBus.history` (``since_id`` to follow it).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event as sa_event
from sqlalchemy import insert, select

from weightbase.catalog.schema import EventRow, utcnow
from weightbase.catalog.values import JSONObject, JSONValue, freeze_object, json_object
from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog

__all__ = ["ALL_EVENTS", "Event", "EventBus", "Subscriber", "Subscription"]

logger = logging.getLogger(__name__)

#: Subscribe with this type to receive every event.
ALL_EVENTS = "*"

_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,127}\Z")


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened: its place in the log, when, what, and the details."""

    id: int
    at: datetime
    type: str
    payload: Mapping[str, JSONValue]

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON-ready data."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "type": self.type,
            "payload": dict(self.payload),
        }


Subscriber = Callable[[Event], object]


class Subscription:
    """What :meth:`EventBus.on` returns: call it (or ``cancel()``) to unsubscribe."""

    def __init__(self, bus: EventBus, event_type: str, subscriber: Subscriber) -> None:
        self.event_type = event_type
        self.subscriber = subscriber
        self._bus = bus

    def cancel(self) -> None:
        """Stop receiving events; calling it again does nothing."""
        self._bus._remove(self)

    def __call__(self) -> None:
        self.cancel()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def __repr__(self) -> str:
        return f"Subscription({self.event_type!r}, {self.subscriber!r})"


class EventBus:
    """Emit events into the catalog's event log and to this process's subscribers."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        # Key under which a session's not-yet-committed events wait (one per bus).
        self._pending_key = ("weightbase.events.pending", id(self))

    # -- subscribing -----------------------------------------------------------------

    def on(self, event_type: str, subscriber: Subscriber) -> Subscription:
        """Call ``subscriber(event)`` after each committed ``event_type`` event (``"*"``: all)."""
        if event_type != ALL_EVENTS:
            _check_type(event_type)
        if not callable(subscriber):
            raise ValidationError(f"subscriber {subscriber!r} is not callable")
        subscription = Subscription(self, event_type, subscriber)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    # -- emitting --------------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        session: Session | None = None,
    ) -> Event:
        """Record an event; subscribers hear of it once its transaction commits.

        With ``session``, the event row joins that session's transaction and
        subscribers run after it commits (not at all if it rolls back). Without,
        the event is committed on its own at once.
        """
        _check_type(event_type)
        data = json_object(payload or {}, what=f"the payload of event {event_type!r}")
        if session is None:
            with self._catalog.transaction() as own_session:
                event = self._insert(own_session, event_type, data)
            self._deliver([event])
            return event
        event = self._insert(session, event_type, data)
        self._pending(session).append(event)
        return event

    def _insert(self, session: Session, event_type: str, payload: JSONObject) -> Event:
        at = utcnow()
        statement = (
            insert(EventRow).values(at=at, type=event_type, payload=payload).returning(EventRow.id)
        )
        event_id = session.execute(statement).scalar_one()
        frozen = freeze_object(payload)
        assert frozen is not None
        return Event(id=event_id, at=at, type=event_type, payload=frozen)

    def _pending(self, session: Session) -> list[Event]:
        pending: list[Event] | None = session.info.get(self._pending_key)
        if pending is None:
            pending = session.info[self._pending_key] = []
            sa_event.listen(session, "after_commit", self._after_commit)
            sa_event.listen(session, "after_rollback", self._after_rollback)
        return pending

    def _after_commit(self, session: Session) -> None:
        pending: list[Event] = session.info.get(self._pending_key, [])
        delivered = list(pending)
        pending.clear()
        self._deliver(delivered)

    def _after_rollback(self, session: Session) -> None:
        session.info.get(self._pending_key, []).clear()

    def _deliver(self, events: list[Event]) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        for event in events:
            for subscription in subscriptions:
                if subscription.event_type not in (event.type, ALL_EVENTS):
                    continue
                try:
                    subscription.subscriber(event)
                except Exception:
                    logger.exception(
                        "event subscriber %r failed on event %d (%s)",
                        subscription.subscriber,
                        event.id,
                        event.type,
                    )

    # -- reading ---------------------------------------------------------------------

    def history(
        self,
        event_type: str | None = None,
        *,
        since_id: int | None = None,
        limit: int = 1000,
        session: Session | None = None,
    ) -> list[Event]:
        """Persisted events, oldest first: of ``event_type`` if given, after ``since_id`` if given.

        To follow the log, pass the id of the last event seen as ``since_id``.
        """
        if event_type is not None:
            _check_type(event_type)
        if limit < 1:
            raise ValidationError(f"limit must be at least 1, not {limit}")
        query = select(EventRow).order_by(EventRow.id).limit(limit)
        if event_type is not None:
            query = query.where(EventRow.type == event_type)
        if since_id is not None:
            query = query.where(EventRow.id > since_id)
        if session is not None:
            return [_to_event(row) for row in session.scalars(query)]
        with self._catalog.session() as own_session:
            return [_to_event(row) for row in own_session.scalars(query)]


def _check_type(event_type: str) -> None:
    if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
        raise ValidationError(
            f"invalid event type {event_type!r}: lower-case letters, digits and _ . : -, "
            "starting with a letter, at most 128 characters",
            event_type=event_type,
        )


def _to_event(row: EventRow) -> Event:
    payload = freeze_object(dict(row.payload))
    assert payload is not None
    return Event(id=row.id, at=row.at, type=row.type, payload=payload)
