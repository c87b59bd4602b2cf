"""The schema comes from the packaged Alembic migrations, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from weightbase.catalog import Catalog
from weightbase.catalog import migrate as migrate_module
from weightbase.catalog.migrate import MIGRATIONS, alembic_config, head_revision
from weightbase.catalog.schema import Base, ModelRow, utcnow

TABLES = {
    "models",
    "model_versions",
    "model_version_layers",
    "aliases",
    "tags",
    "version_metrics",
    "lineage_edges",
    "audit_log",
    "events",
    "experiments",
    "runs",
    "run_params",
    "metric_keys",
    "metric_blocks",
    "run_metrics",
    "run_artifacts",
    "metric_writers",
    "run_environments",
    "datasets",
    "dataset_versions",
    "users",
    "api_tokens",
    "model_governance",
    "approval_requests",
    "approval_decisions",
    "compliance_reports",
    "scan_results",
    "webhooks",
    "webhook_deliveries",
    "deployments",
    "deployment_events",
    "inference_metrics",
    "inference_sessions",
    "checkpoints",
    "ab_tests",
    "ab_test_stats",
    "reactors",
    "reactor_operations",
    "monitoring_samples",
    "monitoring_labels",
    "monitoring_alerts",
    "ethics_reviews",
    "explanations",
}


def test_migrations_create_every_table(catalog: Catalog) -> None:
    tables = set(sa.inspect(catalog.engine).get_table_names())
    assert tables == TABLES | {"alembic_version"}
    assert set(Base.metadata.tables) == TABLES
    assert catalog.revision() == head_revision()


def test_the_head_revision_matches_the_models(catalog: Catalog) -> None:
    with catalog.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_indexes_exist(catalog: Catalog) -> None:
    inspector = sa.inspect(catalog.engine)
    names = {index["name"] for index in inspector.get_indexes("model_versions")}
    assert {"ix_model_versions_order", "ix_model_versions_snapshot_id"} <= names
    assert "ix_lineage_edges_target" in {i["name"] for i in inspector.get_indexes("lineage_edges")}
    assert "uq_models_name_live" in {i["name"] for i in inspector.get_indexes("models")}


def test_reopening_is_a_no_op(catalog_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with Catalog.open(catalog_url) as catalog, catalog.transaction() as session:
        session.add(ModelRow(name="kept"))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a catalog at head must not be migrated again")

    monkeypatch.setattr(command, "upgrade", refuse)
    with Catalog.open(catalog_url) as catalog, catalog.session() as session:
        assert catalog.revision() == head_revision()
        assert session.scalars(sa.select(ModelRow.name)).all() == ["kept"]


def test_downgrade_to_base_and_back(catalog: Catalog) -> None:
    with catalog.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(sa.inspect(catalog.engine).get_table_names()) <= {"alembic_version"}
    migrate_module.upgrade(catalog.engine)
    assert set(sa.inspect(catalog.engine).get_table_names()) == TABLES | {"alembic_version"}


def test_the_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS / "env.py").is_file()
    assert (MIGRATIONS / "script.py.mako").is_file()
    assert any(MIGRATIONS.glob("versions/0001_*.py"))


def _open_catalog(url: str, barrier: Any, results: Any) -> None:
    barrier.wait(timeout=60)
    try:
        with Catalog.open(url) as catalog, catalog.transaction() as session:
            session.add(ModelRow(name=f"from-{multiprocessing.current_process().name}"))
        results.put("ok")
    except BaseException as exc:  # report anything to the parent
        results.put(f"{type(exc).__name__}: {exc}")


def _process_context() -> Any:
    """fork where it is safe (quick: no re-import), else spawn; both give separate processes."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def test_two_processes_open_a_fresh_catalog_at_once(catalog_url: str) -> None:
    context = _process_context()
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [
        context.Process(target=_open_catalog, args=(catalog_url, barrier, results), name=f"p{i}")
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == ["ok", "ok"]
    with Catalog.open(catalog_url) as catalog, catalog.session() as session:
        assert catalog.revision() == head_revision()
        names = session.scalars(sa.select(ModelRow.name).order_by(ModelRow.name)).all()
    assert names == ["from-p0", "from-p1"]


def test_timestamps_come_back_aware_in_utc(catalog: Catalog) -> None:
    before = utcnow()
    with catalog.transaction() as session:
        row = ModelRow(name="clock")
        session.add(row)
    with catalog.session() as session:
        created = session.scalars(sa.select(ModelRow.created_at)).one()
    offset = created.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0
    assert abs((created - before).total_seconds()) < 60
