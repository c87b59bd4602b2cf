"""Subscription handles, subscriber checks, and reading the log inside a transaction."""

from __future__ import annotations

import pytest

from weightbase.catalog import Catalog
from weightbase.errors import ValidationError
from weightbase.events import Event, EventBus


@pytest.fixture
def bus(catalog: Catalog) -> EventBus:
    return EventBus(catalog)


def test_a_subscription_as_a_context_manager_ends_with_the_block(bus: EventBus) -> None:
    heard: list[str] = []
    with bus.on("model_created", lambda event: heard.append(event.type)) as subscription:
        assert subscription.event_type == "model_created"
        bus.emit("model_created")
    bus.emit("model_created")
    assert heard == ["model_created"]


def test_a_subscription_names_its_type_and_subscriber(bus: EventBus) -> None:
    def on_created(event: Event) -> None:
        pass

    subscription = bus.on("model_created", on_created)
    assert repr(subscription) == f"Subscription('model_created', {on_created!r})"


def test_a_subscriber_must_be_callable(bus: EventBus) -> None:
    with pytest.raises(ValidationError, match="subscriber 'print' is not callable"):
        bus.on("model_created", "print")  # type: ignore[arg-type]
    # nothing was subscribed: an emit still works and reaches no one
    assert bus.emit("model_created").type == "model_created"


def test_a_subscription_type_is_checked(bus: EventBus) -> None:
    with pytest.raises(ValidationError, match="invalid event type 'Model Created'"):
        bus.on("Model Created", print)


def test_history_in_a_session_sees_its_uncommitted_events(bus: EventBus, catalog: Catalog) -> None:
    committed = bus.emit("model_created", {"name": "bert"})
    with catalog.transaction() as session:
        pending = bus.emit("model_deleted", {"name": "bert"}, session=session)
        inside = bus.history(session=session)
        assert [event.id for event in inside] == [committed.id, pending.id]
        assert inside[1].payload == {"name": "bert"}
        assert [event.id for event in bus.history("model_deleted", session=session)] == [pending.id]
