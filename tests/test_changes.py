"""The change recorder: an audit entry, an event and lineage edges in the caller's transaction."""

from __future__ import annotations

import pytest

from weightbase.catalog import Catalog
from weightbase.changes import ChangeRecorder
from weightbase.errors import NotFound, ValidationError
from weightbase.lineage import Node


@pytest.fixture
def recorder(catalog: Catalog) -> ChangeRecorder:
    return ChangeRecorder.on(catalog, actor="carol")


def test_a_change_is_an_audit_entry_and_an_event_with_a_derived_payload(
    catalog: Catalog, recorder: ChangeRecorder
) -> None:
    with catalog.transaction() as session:
        entry = recorder.record(
            session,
            "run.status",
            "run",
            7,
            before={"status": "running"},
            after={"status": "finished"},
            reason="done",
            event="run_status_changed",
        )
        recorder.record(session, "run.tag", "run", 7, after={"tags": ["x"]})  # no event
    assert entry.actor == "carol"
    assert [e.action for e in recorder.audit.entries("run", 7)] == ["run.status", "run.tag"]
    (event,) = recorder.events.history()
    assert event.type == "run_status_changed"
    assert dict(event.payload) == {
        "run_id": 7,
        "status": "finished",
        "previous_status": "running",
        "reason": "done",
    }


def test_a_change_rolled_back_leaves_no_record(catalog: Catalog, recorder: ChangeRecorder) -> None:
    def record_then_fail() -> None:
        with catalog.transaction() as session:
            recorder.record(session, "model.update", "model", 1, event="model_updated")
            recorder.link(
                session, Node("model_version", "2"), Node("model_version", "1"), "derived_from"
            )
            raise RuntimeError("the change itself failed")

    with pytest.raises(RuntimeError):
        record_then_fail()
    assert recorder.audit.entries() == []
    assert recorder.events.history() == []


def test_links_are_recorded_once_and_checked(catalog: Catalog, recorder: ChangeRecorder) -> None:
    child, parent = Node("model_version", "2"), Node("model_version", "1")
    with catalog.transaction() as session:
        first = recorder.link(session, child, parent, "fine_tuned_from")
        again = recorder.link(session, child, parent, "fine_tuned_from")
        with pytest.raises(ValidationError, match="unknown lineage relation"):
            recorder.link(session, child, parent, "copied_from")
    assert first == again
    assert [e.action for e in recorder.audit.entries("lineage_edge")] == ["lineage.add_edge"]
    with catalog.transaction() as session:
        recorder.unlink(session, child, parent, "fine_tuned_from")
    with catalog.transaction() as session, pytest.raises(NotFound):
        recorder.unlink(session, child, parent, "fine_tuned_from")
    assert [e.type for e in recorder.events.history()] == [
        "lineage_edge_added",
        "lineage_edge_removed",
    ]
