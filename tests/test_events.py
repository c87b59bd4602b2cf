"""The event bus: persisted in the caller's transaction, delivered in-process after commit."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from weightbase.catalog import Catalog
from weightbase.catalog.schema import EventRow, ModelRow
from weightbase.errors import ValidationError
from weightbase.events import Event, EventBus


@pytest.fixture
def bus(catalog: Catalog) -> EventBus:
    return EventBus(catalog)


def test_emit_persists_and_delivers(bus: EventBus) -> None:
    heard: list[Event] = []
    bus.on("model_created", heard.append)
    event = bus.emit("model_created", {"name": "bert", "versions": [1, 2]})
    assert heard == [event]
    assert event.type == "model_created"
    assert event.payload == {"name": "bert", "versions": [1, 2]}
    assert event.at.tzinfo is not None
    assert bus.history() == [event]


def test_events_are_frozen_records(bus: EventBus) -> None:
    event = bus.emit("model_created", {"name": "bert"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.type = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.payload["name"] = "gpt"  # type: ignore[index]
    assert event.to_dict()["payload"] == {"name": "bert"}


def test_an_event_in_a_transaction_is_delivered_after_commit(
    bus: EventBus, catalog: Catalog
) -> None:
    heard: list[Event] = []
    bus.on("model_created", heard.append)
    with catalog.transaction() as session:
        session.add(ModelRow(name="bert"))
        bus.emit("model_created", {"name": "bert"}, session=session)
        assert heard == []  # not before the change is visible
    assert [event.payload["name"] for event in heard] == ["bert"]


def test_an_event_and_its_change_roll_back_together(bus: EventBus, catalog: Catalog) -> None:
    heard: list[Event] = []
    bus.on("*", heard.append)

    def write_then_fail() -> None:
        with catalog.transaction() as session:
            session.add(ModelRow(name="bert"))
            bus.emit("model_created", {"name": "bert"}, session=session)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert heard == []
    assert bus.history() == []
    with catalog.session() as session:
        assert session.scalars(sa.select(ModelRow)).all() == []


def test_a_failing_subscriber_is_logged_and_harms_nothing(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.on("model_created", broken)
    bus.on("model_created", heard.append)
    with caplog.at_level(logging.ERROR, logger="weightbase.events"):
        event = bus.emit("model_created", {"name": "bert"})
    assert heard == [event]
    assert bus.history() == [event]
    assert "subscriber bug" in caplog.text


def test_unsubscribe_and_wildcard(bus: EventBus) -> None:
    specific: list[str] = []
    everything: list[str] = []
    subscription = bus.on("model_created", lambda event: specific.append(event.type))
    bus.on("*", lambda event: everything.append(event.type))
    bus.emit("model_created")
    bus.emit("model_deleted")
    subscription()  # the handle unsubscribes when called
    subscription.cancel()  # and twice is harmless
    bus.emit("model_created")
    assert specific == ["model_created"]
    assert everything == ["model_created", "model_deleted", "model_created"]


def test_history_filters_and_pages(bus: EventBus) -> None:
    emitted = [bus.emit("a" if i % 2 else "b", {"i": i}) for i in range(10)]
    assert [e.id for e in bus.history()] == [e.id for e in emitted]
    assert [e.payload["i"] for e in bus.history("a")] == [1, 3, 5, 7, 9]
    assert [e.payload["i"] for e in bus.history(since_id=emitted[6].id)] == [7, 8, 9]
    assert [e.payload["i"] for e in bus.history("b", since_id=emitted[3].id, limit=2)] == [4, 6]
    with pytest.raises(ValidationError):
        bus.history(limit=0)


def test_payloads_are_normalised_to_json(bus: EventBus) -> None:
    at = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    event = bus.emit("run_finished", {"at": at, "tags": ("x", "y")})
    assert event.payload == {"at": "2024-05-06T07:08:09+00:00", "tags": ["x", "y"]}
    assert bus.history()[0].payload == event.payload


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("", {}),
        ("Model Created", {}),
        ("*", {}),
        ("x" * 200, {}),
        ("ok", {"value": object()}),
        ("ok", {"value": float("nan")}),
        ("ok", {1: "integer key"}),
    ],
)
def test_bad_events_are_refused_before_writing(
    bus: EventBus, catalog: Catalog, event_type: str, payload: dict[object, object]
) -> None:
    with pytest.raises(ValidationError):
        bus.emit(event_type, payload)  # type: ignore[arg-type]
    with catalog.session() as session:
        assert session.scalars(sa.select(EventRow)).all() == []


def test_two_buses_on_one_session_deliver_their_own_events(catalog: Catalog) -> None:
    first, second = EventBus(catalog), EventBus(catalog)
    heard_first: list[str] = []
    heard_second: list[str] = []
    first.on("*", lambda event: heard_first.append(event.type))
    second.on("*", lambda event: heard_second.append(event.type))
    with catalog.transaction() as session:
        first.emit("one", session=session)
        second.emit("two", session=session)
    assert (heard_first, heard_second) == (["one"], ["two"])
    assert [event.type for event in first.history()] == ["one", "two"]
