"""Migration 0005: the users, tokens and governance tables, down and up, and their rules."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from weightbase.catalog import Catalog
from weightbase.catalog import migrate as migrate_module
from weightbase.catalog.migrate import alembic_config, head_revision
from weightbase.catalog.schema import ApiTokenRow, ModelGovernanceRow, ModelRow, UserRow
from weightbase.errors import Conflict

GOVERNANCE_TABLES = {
    "users",
    "api_tokens",
    "model_governance",
    "approval_requests",
    "approval_decisions",
    "compliance_reports",
    "scan_results",
}


def _tables(catalog: Catalog) -> set[str]:
    return set(sa.inspect(catalog.engine).get_table_names())


def test_0005_goes_down_to_0004_and_up_again_keeping_older_rows(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        session.add(ModelRow(name="kept"))
        session.add(UserRow(name="ada", role="admin", teams=["vision"]))
    assert _tables(catalog) >= GOVERNANCE_TABLES
    with catalog.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0004")
    assert not GOVERNANCE_TABLES & _tables(catalog)
    assert "models" in _tables(catalog)
    assert catalog.revision() == "0004"
    migrate_module.upgrade(catalog.engine)
    assert _tables(catalog) >= GOVERNANCE_TABLES
    assert catalog.revision() == head_revision()
    with catalog.session() as session:
        assert session.scalars(sa.select(ModelRow.name)).all() == ["kept"]
        assert session.scalars(sa.select(UserRow)).all() == []


def test_a_role_outside_the_four_is_refused(catalog: Catalog) -> None:
    with pytest.raises(Conflict, match=r"ck_users_role\b"), catalog.transaction() as session:
        session.add(UserRow(name="mallory", role="root", teams=[]))


def test_user_names_and_token_ids_are_unique(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        user = UserRow(name="ada", role="editor", teams=[])
        session.add(user)
        session.flush()
        session.add(ApiTokenRow(user_id=user.id, token_id="abc", secret_hash="0" * 64, name="t"))
    with pytest.raises(Conflict), catalog.transaction() as session:
        session.add(UserRow(name="ada", role="viewer", teams=[]))
    with pytest.raises(Conflict), catalog.transaction() as session:
        session.add(ApiTokenRow(user_id=user.id, token_id="abc", secret_hash="1" * 64, name="u"))


def test_a_token_row_holds_a_sha256_hex_digest_only(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        user = UserRow(name="ada", role="editor", teams=[])
        session.add(user)
    with pytest.raises(Conflict, match="secret_hash_length"), catalog.transaction() as session:
        session.add(ApiTokenRow(user_id=user.id, token_id="abc", secret_hash="short", name="t"))


def test_deleting_a_model_deletes_its_governance(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        model = ModelRow(name="bert")
        session.add(model)
        session.flush()
        session.add(ModelGovernanceRow(model_id=model.id, team="nlp", approvers=["ada"]))
    with catalog.transaction() as session:
        session.execute(sa.delete(ModelRow))
    with catalog.session() as session:
        assert session.scalars(sa.select(ModelGovernanceRow)).all() == []
