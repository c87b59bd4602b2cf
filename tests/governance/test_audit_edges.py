"""Audit log inputs the main tests leave out: reasons, limits, reading in a transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from weightbase.catalog import Catalog
from weightbase.catalog.schema import AuditLogRow
from weightbase.errors import ValidationError
from weightbase.governance import AuditLog


@pytest.fixture
def audit(catalog: Catalog) -> AuditLog:
    return AuditLog(catalog, actor="alice")


def test_a_reason_is_kept(audit: AuditLog) -> None:
    audit.record(
        None, action="alias.set", entity_kind="model", entity_id=1, reason="promoted after eval"
    )
    assert [entry.reason for entry in audit.entries()] == ["promoted after eval"]


def test_a_reason_must_be_text(audit: AuditLog, catalog: Catalog) -> None:
    with pytest.raises(ValidationError, match="reason must be text, not int"):
        audit.record(None, action="alias.set", entity_kind="model", entity_id=1, reason=42)  # type: ignore[arg-type]
    with catalog.session() as session:
        assert session.scalars(sa.select(AuditLogRow)).all() == []


@pytest.mark.parametrize("limit", [0, -3])
def test_entries_need_a_positive_limit(audit: AuditLog, limit: int) -> None:
    with pytest.raises(ValidationError, match=f"limit must be at least 1, not {limit}"):
        audit.entries(limit=limit)


def test_entries_in_a_session_see_its_uncommitted_changes(
    audit: AuditLog, catalog: Catalog
) -> None:
    audit.record(None, action="model.create", entity_kind="model", entity_id=1)
    with catalog.transaction() as session:
        audit.record(session, action="model.delete", entity_kind="model", entity_id=1)
        inside = audit.entries("model", 1, session=session)
        assert [entry.action for entry in inside] == ["model.create", "model.delete"]
        assert [entry.actor for entry in inside] == ["alice", "alice"]
    assert len(audit.entries()) == 2
