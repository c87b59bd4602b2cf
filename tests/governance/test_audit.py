"""The audit log: one entry per change, in the change's transaction, read back as records."""

from __future__ import annotations

import dataclasses
import getpass

import pytest
import sqlalchemy as sa

from weightbase.catalog import Catalog
from weightbase.catalog.schema import AuditLogRow, ModelRow
from weightbase.errors import ValidationError
from weightbase.governance import AuditEntry, AuditLog


@pytest.fixture
def audit(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    monkeypatch.setenv("WEIGHTBASE_ACTOR", "alice")
    return AuditLog(catalog)


def test_record_and_read_back(audit: AuditLog) -> None:
    entry = audit.record(
        None,
        action="alias.set",
        entity_kind="model",
        entity_id=7,
        before={"production": "1.0.0"},
        after={"production": "1.1.0"},
        reason="1.1.0 passed the evaluation",
    )
    assert isinstance(entry, AuditEntry)
    assert (entry.actor, entry.action, entry.entity_kind, entry.entity_id) == (
        "alice",
        "alias.set",
        "model",
        "7",
    )
    assert entry.before == {"production": "1.0.0"}
    assert entry.after == {"production": "1.1.0"}
    assert entry.at.tzinfo is not None
    assert audit.entries() == [entry]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.actor = "mallory"  # type: ignore[misc]
    assert entry.to_dict()["reason"] == "1.1.0 passed the evaluation"


def test_an_entry_commits_or_rolls_back_with_its_change(audit: AuditLog, catalog: Catalog) -> None:
    with catalog.transaction() as session:
        model = ModelRow(name="bert")
        session.add(model)
        session.flush()
        audit.record(session, action="model.create", entity_kind="model", entity_id=model.id)

    def write_then_fail() -> None:
        with catalog.transaction() as session:
            session.add(ModelRow(name="gpt"))
            audit.record(session, action="model.create", entity_kind="model", entity_id=2)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert [entry.entity_id for entry in audit.entries()] == [str(model.id)]


def test_the_actor_comes_from_the_environment_then_the_os_user(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(catalog)
    monkeypatch.setenv("WEIGHTBASE_ACTOR", "ci-bot")
    assert log.record(None, action="x.y", entity_kind="model", entity_id=1).actor == "ci-bot"
    monkeypatch.delenv("WEIGHTBASE_ACTOR")
    monkeypatch.setattr(getpass, "getuser", lambda: "os-user")
    assert log.record(None, action="x.y", entity_kind="model", entity_id=1).actor == "os-user"
    assert (
        log.record(None, action="x.y", entity_kind="model", entity_id=1, actor="bob").actor == "bob"
    )
    assert AuditLog(catalog, actor="service").actor == "service"


def test_entries_filter_and_page(audit: AuditLog) -> None:
    for model_id in (1, 2):
        for action in ("model.create", "alias.set", "alias.set"):
            audit.record(None, action=action, entity_kind="model", entity_id=model_id)
    audit.record(None, action="alias.set", entity_kind="model", entity_id=1, actor="bob")
    assert len(audit.entries()) == 7
    of_one = audit.entries("model", 1)
    assert [entry.action for entry in of_one] == [
        "model.create",
        "alias.set",
        "alias.set",
        "alias.set",
    ]
    assert len(audit.entries("model", "1", action="alias.set")) == 3
    assert [entry.actor for entry in audit.entries(actor="bob")] == ["bob"]
    newest = audit.entries(limit=2, newest_first=True)
    assert [entry.id for entry in newest] == sorted((entry.id for entry in newest), reverse=True)
    assert newest[0].actor == "bob"
    page = audit.entries(limit=3)
    rest = audit.entries(since_id=page[-1].id)
    assert [entry.id for entry in page + rest] == [entry.id for entry in audit.entries()]
    with pytest.raises(ValidationError):
        audit.entries(entity_id=1)  # an id needs its kind


def test_before_and_after_hold_json(audit: AuditLog) -> None:
    entry = audit.record(
        None,
        action="model.update",
        entity_kind="model",
        entity_id=1,
        before={"tags": ("a", "b"), "nested": {"x": None}},
        after=None,
    )
    assert audit.entries()[0].before == {"tags": ["a", "b"], "nested": {"x": None}}
    assert entry.after is None


@pytest.mark.parametrize(
    "change",
    [
        {"action": "", "entity_kind": "model", "entity_id": 1},
        {"action": "Model Create", "entity_kind": "model", "entity_id": 1},
        {"action": "model.create", "entity_kind": "", "entity_id": 1},
        {"action": "model.create", "entity_kind": "model", "entity_id": ""},
        {"action": "model.create", "entity_kind": "model", "entity_id": 1, "after": {"x": {1, 2j}}},
        {"action": "model.create", "entity_kind": "model", "entity_id": 1, "actor": " "},
    ],
)
def test_bad_entries_are_refused(
    audit: AuditLog, catalog: Catalog, change: dict[str, object]
) -> None:
    with pytest.raises(ValidationError):
        audit.record(None, **change)  # type: ignore[arg-type]
    with catalog.session() as session:
        assert session.scalars(sa.select(AuditLogRow)).all() == []
