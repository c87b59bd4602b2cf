"""Driver errors the other catalog tests do not provoke still leave as weightbase errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from weightbase.catalog import Catalog, translate_errors
from weightbase.errors import StorageError, ValidationError


def test_a_failing_statement_is_a_storage_error_that_retrying_will_not_fix(
    catalog: Catalog,
) -> None:
    with (
        catalog.engine.connect() as connection,
        pytest.raises(StorageError) as caught,
        translate_errors("the test catalog"),
    ):
        connection.execute(sa.text("SELECT * FROM no_such_table"))
    assert caught.value.retryable is False
    assert caught.value.target == "the test catalog"
    assert str(caught.value).startswith("the test catalog failed: ")
    assert "no_such_table" in str(caught.value)
    assert isinstance(caught.value.__cause__, sa_exc.DBAPIError)


def test_a_statement_error_that_is_not_about_a_value_is_not_disguised(catalog: Catalog) -> None:
    # A missing bind parameter is a bug in the caller's SQL, not bad user input.
    with (
        catalog.engine.connect() as connection,
        pytest.raises(sa_exc.StatementError) as caught,
        translate_errors(),
    ):
        connection.execute(sa.text("SELECT :missing"))
    assert not isinstance(caught.value, ValidationError | StorageError)
    assert "missing" in str(caught.value)


def test_a_pool_that_ran_dry_is_a_retryable_storage_error(tmp_path: Path) -> None:
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}",
        poolclass=sa.pool.QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.05,
    )
    try:
        with (
            engine.connect(),
            pytest.raises(StorageError) as caught,
            translate_errors("the small pool"),
        ):
            engine.connect()
    finally:
        engine.dispose()
    assert caught.value.retryable is True
    assert str(caught.value).startswith("no free connection to the small pool: ")
    assert isinstance(caught.value.__cause__, sa_exc.TimeoutError)


def test_a_value_postgresql_refuses_is_a_validation_error(postgres_url: str) -> None:
    with (
        Catalog.open(postgres_url) as catalog,
        catalog.engine.connect() as connection,
        pytest.raises(ValidationError) as caught,
        translate_errors("the pg catalog"),
    ):
        connection.execute(sa.text("SELECT CAST('not a number' AS integer)"))
    assert caught.value.target == "the pg catalog"
    assert str(caught.value).startswith("the pg catalog refused a value: ")
    assert "not a number" in str(caught.value)
    # the driver's first line only, without SQLAlchemy's echo of the statement
    assert "SELECT" not in str(caught.value)


def test_a_cancelled_postgresql_statement_is_retryable(postgres_url: str) -> None:
    with Catalog.open(postgres_url) as catalog, catalog.engine.connect() as connection:
        connection.execute(sa.text("SET statement_timeout = '20ms'"))
        with pytest.raises(StorageError) as caught, translate_errors("the pg catalog"):
            connection.execute(sa.text("SELECT pg_sleep(5)"))
    assert caught.value.retryable is True
    assert str(caught.value).startswith("the pg catalog could not complete the transaction (")
    assert str(caught.value).endswith("); try again")
