"""Catalog engines, sessions and error translation, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from weightbase.catalog import Catalog, create_engine, normalize_url, translate_errors
from weightbase.catalog.schema import ModelRow, ModelVersionRow, utcnow
from weightbase.errors import Conflict, StorageError, ValidationError, WeightbaseError

SNAPSHOT = "ab" * 32


def _version(model_id: int, version: str = "1.0.0", **values: object) -> ModelVersionRow:
    major, minor, patch = (int(part) for part in version.split("."))
    return ModelVersionRow(
        model_id=model_id,
        version=version,
        major=major,
        minor=minor,
        patch=patch,
        snapshot_id=SNAPSHOT,
        **values,
    )


# -- URLs and engines ------------------------------------------------------------------


def test_a_bare_path_means_sqlite(tmp_path: Path) -> None:
    url = normalize_url(str(tmp_path / "c.db"))
    assert url.get_backend_name() == "sqlite"
    assert url.database == str(tmp_path / "c.db")


def test_postgresql_urls_use_psycopg() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db", ""])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        create_engine(url)


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        with engine.connect() as connection:

            def pragma(name: str) -> object:
                return connection.exec_driver_sql(f"PRAGMA {name}").scalar()

            assert pragma("journal_mode") == "wal"
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") == 30_000
            assert pragma("synchronous") == 2  # FULL: commits survive power loss
    finally:
        engine.dispose()


def test_catalog_open_creates_the_sqlite_folder(tmp_path: Path) -> None:
    with Catalog.open(f"sqlite:///{tmp_path / 'a' / 'b' / 'catalog.db'}") as catalog:
        assert catalog.dialect == "sqlite"
    assert (tmp_path / "a" / "b" / "catalog.db").is_file()


def test_the_url_shown_hides_the_password() -> None:
    catalog = Catalog(create_engine("postgresql+psycopg://user:s3cret@127.0.0.1:1/db"))
    try:
        assert "s3cret" not in catalog.url
        assert "s3cret" not in repr(catalog)
    finally:
        catalog.close()


# -- sessions ----------------------------------------------------------------------------


def test_a_transaction_commits(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        session.add(ModelRow(name="bert"))
    with catalog.session() as session:
        assert session.scalars(sa.select(ModelRow.name)).all() == ["bert"]


def test_a_transaction_rolls_back_when_the_block_raises(catalog: Catalog) -> None:
    def write_then_fail() -> None:
        with catalog.transaction() as session:
            session.add(ModelRow(name="bert"))
            session.flush()
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        write_then_fail()
    with catalog.session() as session:
        assert session.scalars(sa.select(ModelRow)).all() == []


def test_rows_stay_readable_after_commit(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        row = ModelRow(name="bert", framework="torch")
        session.add(row)
    assert (row.id, row.name, row.framework) == (1, "bert", "torch")


def test_concurrent_writers_serialise(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        session.add(ModelRow(name="counter", description="0"))

    errors: list[BaseException] = []

    def increment(times: int) -> None:
        try:
            for _ in range(times):
                with catalog.transaction() as session:
                    row = session.scalars(sa.select(ModelRow).with_for_update()).one()
                    row.description = str(int(row.description or "0") + 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=increment, args=(10,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with catalog.session() as session:
        assert session.scalars(sa.select(ModelRow.description)).one() == "40"


# -- error translation -------------------------------------------------------------------


def test_a_unique_violation_is_a_conflict(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        session.add(ModelRow(name="bert"))
    with pytest.raises(Conflict) as caught, catalog.transaction() as session:
        session.add(ModelRow(name="bert"))
    assert caught.value.context["violation"] == "unique"
    assert "already exists" in str(caught.value)
    assert isinstance(caught.value.__cause__, sa.exc.IntegrityError)


def test_a_deleted_model_frees_its_name(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        session.add(ModelRow(name="bert", deleted_at=utcnow()))
        session.add(ModelRow(name="bert"))
    with pytest.raises(Conflict), catalog.transaction() as session:
        session.add(ModelRow(name="bert"))


def test_a_duplicate_version_is_a_conflict(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        model = ModelRow(name="bert")
        session.add(model)
        session.flush()
        session.add(_version(model.id))
    with pytest.raises(Conflict) as caught, catalog.transaction() as session:
        session.add(_version(model.id))
    assert caught.value.context["violation"] == "unique"


def test_foreign_keys_are_enforced(catalog: Catalog) -> None:
    with pytest.raises(Conflict) as caught, catalog.transaction() as session:
        session.add(_version(model_id=12345))
    assert caught.value.context["violation"] == "foreign_key"


def test_a_check_constraint_is_enforced(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        model = ModelRow(name="bert")
        session.add(model)
    with pytest.raises(Conflict) as caught, catalog.transaction() as session:
        session.add(_version(model.id, stage="live"))
    assert caught.value.context["violation"] == "check"


def test_a_conflict_can_be_caught_inside_a_savepoint(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        session.add(ModelRow(name="bert"))
    with catalog.transaction() as session:
        with pytest.raises(Conflict), translate_errors(), session.begin_nested():
            session.add(ModelRow(name="bert"))
        session.add(ModelRow(name="gpt"))
    with catalog.session() as session:
        assert sorted(session.scalars(sa.select(ModelRow.name))) == ["bert", "gpt"]


def test_a_naive_timestamp_is_refused(catalog: Catalog) -> None:
    from datetime import datetime

    with pytest.raises(WeightbaseError), catalog.transaction() as session:
        session.add(ModelRow(name="bert", created_at=datetime(2024, 1, 1)))


def test_an_unreachable_postgres_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="cannot reach") as caught:
        Catalog.open("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")
    assert caught.value.context["retryable"] is True
    assert "psycopg" not in type(caught.value).__module__


def test_an_unopenable_sqlite_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "catalog.db").mkdir()  # a folder where the file should be
    with pytest.raises(StorageError, match="cannot reach"):
        Catalog.open(f"sqlite:///{tmp_path / 'catalog.db'}")


def test_a_locked_sqlite_database_is_a_retryable_storage_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    Catalog.open(url).close()
    holder = Catalog(create_engine(url))
    impatient = Catalog(create_engine(url, busy_timeout=0.05))
    try:
        with holder.transaction() as session:
            session.add(ModelRow(name="holding the write lock"))
            session.flush()
            with (
                pytest.raises(StorageError, match="busy") as caught,
                impatient.transaction() as other,
            ):
                other.add(ModelRow(name="waiting"))
        assert caught.value.context["retryable"] is True
        assert isinstance(caught.value, OSError)
    finally:
        holder.close()
        impatient.close()


def test_write_retries_what_the_database_asks_to_retry(catalog: Catalog) -> None:
    calls: list[int] = []

    def work(session: Session) -> int:
        calls.append(1)
        session.add(ModelRow(name=f"attempt-{len(calls)}"))
        session.flush()
        if len(calls) < 3:
            raise StorageError("deadlock detected", retryable=True)
        return len(calls)

    assert catalog.write(work) == 3
    with catalog.session() as session:
        assert session.scalars(sa.select(ModelRow.name)).all() == ["attempt-3"]

    def never_works(session: Session) -> None:
        raise StorageError("still locked", retryable=True)

    with pytest.raises(StorageError, match="still locked"):
        catalog.write(never_works, attempts=2)

    def broken(session: Session) -> None:
        calls.append(1)
        raise StorageError("disk on fire", retryable=False)

    calls.clear()
    with pytest.raises(StorageError, match="disk on fire"):
        catalog.write(broken)
    assert len(calls) == 1


def test_sqlite_statistics_are_refreshed_when_missing_or_stale(tmp_path: Path) -> None:
    from weightbase.catalog.schema import ModelRow, ModelVersionRow
    from weightbase.catalog.sessions import ANALYZE_MIN_ROWS

    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    with Catalog.open(url) as catalog:
        assert catalog.analyze() is False  # small: left alone
        with catalog.transaction() as session:
            session.add(ModelRow(name="m"))
            session.flush()
            session.execute(
                sa.insert(ModelVersionRow),
                [
                    {
                        "model_id": 1,
                        "version": f"0.{i}.0",
                        "major": 0,
                        "minor": i,
                        "patch": 0,
                        "snapshot_id": "0" * 64,
                        "stage": "development",
                    }
                    for i in range(ANALYZE_MIN_ROWS)
                ],
            )
    with Catalog.open(url) as catalog:  # opening analyses the grown catalog
        with catalog.session() as session:
            stat = session.execute(
                sa.text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'model_versions' LIMIT 1")
            ).scalar_one()
        assert ANALYZE_MIN_ROWS / 2 <= int(stat.split()[0]) <= ANALYZE_MIN_ROWS * 2  # sampled
        assert catalog.analyze() is False  # fresh statistics: nothing to do
        assert catalog.analyze(force=True) is True


def test_engines_migrations_and_sessions_import_one_way() -> None:
    """engine ← migrate ← sessions: a module imports only those before it, at any time."""
    import ast
    import importlib

    order = ["engine", "migrate", "sessions"]
    for position, name in enumerate(order):
        module = importlib.import_module(f"weightbase.catalog.{name}")
        assert module.__file__ is not None
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = {
            node.module.rsplit(".", 1)[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and node.module is not None
            and node.module.startswith("weightbase.catalog.")
        }
        assert not imported & set(order[position:]), name
