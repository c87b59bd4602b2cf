"""``Catalog``: an engine, and the sessions services read and write through.

Opening a catalog creates or upgrades its schema (``migrate``) on an engine from
``engine``, and refreshes SQLite's planner statistics when they have gone stale.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session, sessionmaker

from weightbase.catalog.engine import WRITE_OPTION, create_engine, normalize_url
from weightbase.catalog.translate import translate_errors
from weightbase.config import settings
from weightbase.errors import StorageError, ValidationError

__all__ = ["ANALYZE_MIN_ROWS", "Catalog"]

T = TypeVar("T")

#: Catalogs with fewer model versions and runs than this are not analysed on open.
ANALYZE_MIN_ROWS = 2_000


def _stale(connection: sa.Connection, rows: int) -> bool:
    """Whether statistics are missing, or were taken at under half or over twice ``rows``."""
    if rows < ANALYZE_MIN_ROWS:
        return False
    has_stats = connection.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
    ).scalar_one()
    if not has_stats:
        return True
    stats = connection.exec_driver_sql(
        "SELECT (SELECT stat FROM sqlite_stat1 WHERE tbl = 'model_versions' LIMIT 1),"
        " (SELECT stat FROM sqlite_stat1 WHERE tbl = 'runs' LIMIT 1)"
    ).one()
    seen = sum(int(stat.split()[0]) for stat in stats if stat)
    return not rows / 2 <= seen <= rows * 2


class Catalog:
    """The relational catalog: an engine plus sessions that translate driver errors.

    ``session()`` is for reads, ``transaction()`` for writes; both commit when the
    block ends and roll back if it raises. Driver errors raised inside either
    leave it as :mod:`weightbase.errors` (see :func:`translate_errors`).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        self.description = f"the catalog at {self.url}"
        self._read_sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    @classmethod
    def open(cls, url: str | URL | None = None, *, migrate: bool = True) -> Catalog:
        """Open the catalog at ``url`` (default: the settings), creating or upgrading its schema.

        Safe to call from several processes at once: the upgrade runs under a
        lock (a file beside a SQLite database, an advisory lock on PostgreSQL)
        and is a no-op once the schema is at the newest revision.
        """
        # migrate (and Alembic) is imported when used: importing the package stays light,
        # and ``python -m weightbase.catalog.migrate`` finds it not yet imported
        from weightbase.catalog.migrate import upgrade

        url = normalize_url(url if url is not None else settings().catalog_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        catalog = cls(create_engine(url))
        if migrate:
            try:
                with catalog.translate_errors():
                    upgrade(catalog.engine)
            except BaseException:
                catalog.close()
                raise
            catalog.analyze()
        return catalog

    def analyze(self, *, force: bool = False) -> bool:
        """Refresh SQLite's query-planner statistics when they are missing or stale.

        Without statistics SQLite can pick a plan that reads a whole table, so
        opening a catalog of at least ``ANALYZE_MIN_ROWS`` model versions and
        runs analyses it when it has no statistics or has grown or shrunk by
        more than half since; sampling a few hundred rows per index keeps that
        to milliseconds. A small catalog is left alone, and so is one another
        writer holds (the next open catches up). PostgreSQL's autovacuum does
        this on its own. Returns whether statistics were refreshed.
        """
        if self.dialect != "sqlite" or self.engine.url.database in (None, "", ":memory:"):
            return False
        with self.engine.connect() as connection:
            rows = int(
                connection.exec_driver_sql(
                    "SELECT coalesce((SELECT max(id) FROM model_versions), 0)"
                    " + coalesce((SELECT max(id) FROM runs), 0)"
                ).scalar_one()
            )
            if not force and not _stale(connection, rows):
                connection.rollback()
                return False
            busy_ms = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
            connection.exec_driver_sql("PRAGMA busy_timeout = 0")
            try:
                connection.exec_driver_sql("PRAGMA analysis_limit = 400")
                connection.exec_driver_sql("ANALYZE")
                connection.commit()
                return True
            except sa_exc.OperationalError:
                connection.rollback()  # another writer holds the lock: only an optimisation
                return False
            finally:
                # the pool hands this connection out again: give it its timeout back
                connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(busy_ms)}")
                connection.commit()

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def translate_errors(self) -> AbstractContextManager[None]:
        """A context manager that turns driver errors into weightbase errors naming this catalog."""
        return translate_errors(self.description)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reading; committed (or rolled back on error) when the block ends."""
        with self.translate_errors(), self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session for writing, committed when the block ends, rolled back if it raises.

        On SQLite the transaction takes the write lock at its start, so writers
        from other threads and processes wait their turn (up to the busy
        timeout) instead of failing mid-way.
        """
        with self.translate_errors(), self._write_sessions() as session, session.begin():
            yield session

    def write(self, work: Callable[[Session], T], *, attempts: int = 5) -> T:
        """Run ``work(session)`` in :meth:`transaction`, again if the database asks for a retry.

        A deadlock, a serialization failure or a lock wait that timed out
        (``StorageError`` with ``retryable=True``) rolls the attempt back and
        runs ``work`` afresh, up to ``attempts`` times with a short random
        back-off; ``work`` must therefore do nothing outside the session that
        cannot be repeated. Events emitted in a failed attempt are never delivered.
        """
        if attempts < 1:
            raise ValidationError(f"attempts must be at least 1, not {attempts}")
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as session:
                    return work(session)
            except StorageError as exc:
                if not exc.context.get("retryable") or attempt == attempts:
                    raise
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def revision(self) -> str | None:
        """The schema revision the database is at (``None`` before the first migration)."""
        from weightbase.catalog.migrate import current_revision

        with self.translate_errors(), self.engine.connect() as connection:
            return current_revision(connection)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.url!r})"
