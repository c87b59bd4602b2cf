"""Engines for the catalog's two databases, and :class:`Catalog`, the handle services use.

SQLite (the embedded default) runs in WAL mode with a 30 s busy timeout,
foreign keys on and ``synchronous=NORMAL``. Its write transactions start with
``BEGIN IMMEDIATE``, so concurrent writers queue on the database lock at the
start instead of failing with "database is locked" half-way through.
PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://…``).
"""

from __future__ import annotations

import importlib.util
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from weightbase.catalog.translate import translate_errors
from weightbase.config import settings
from weightbase.errors import MissingExtraError, StorageError, ValidationError

__all__ = ["BUSY_TIMEOUT_S", "Catalog", "create_engine", "normalize_url"]

T = TypeVar("T")

#: How long a SQLite connection waits for another writer before giving up.
BUSY_TIMEOUT_S = 30.0

# Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE.
WRITE_OPTION = "weightbase_write"


def normalize_url(url: str | URL) -> URL:
    """A catalog URL as SQLAlchemy wants it: a bare path means SQLite, PostgreSQL means psycopg."""
    if isinstance(url, str):
        text = url.strip()
        if not text:
            raise ValidationError("the catalog URL is empty")
        if "://" not in text:
            text = f"sqlite:///{Path(text).expanduser()}"
        elif text.startswith(("postgres://", "postgresql://")):
            text = "postgresql+psycopg://" + text.split("://", 1)[1]
        try:
            url = make_url(text)
        except sa.exc.ArgumentError as exc:
            raise ValidationError(f"not a database URL: {text!r}", url=text) from exc
    return url


def create_engine(url: str | URL, *, busy_timeout: float = BUSY_TIMEOUT_S, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine for a catalog URL (``sqlite:///…`` or ``postgresql+psycopg://…``).

    ``busy_timeout`` (seconds, SQLite only) is how long to wait for another
    writer; other keyword arguments go to :func:`sqlalchemy.create_engine`.
    """
    url = normalize_url(url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, busy_timeout, **kwargs)
    if backend == "postgresql":
        return _postgres_engine(url, **kwargs)
    raise ValidationError(
        f"unsupported catalog database {url.drivername!r}: use sqlite:///path/to/catalog.db "
        "or postgresql+psycopg://user@host/database",
        url=url.render_as_string(hide_password=True),
    )


def _sqlite_engine(url: URL, busy_timeout: float, **kwargs: Any) -> Engine:
    connect_args = {"timeout": busy_timeout, **kwargs.pop("connect_args", {})}
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    in_memory = url.database in (None, "", ":memory:") or "mode=memory" in str(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event (below) issue BEGIN, instead of pysqlite's
        # own implicit transaction handling, which defers it past the first read.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                _use_wal(cursor, busy_timeout)
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _use_wal(cursor: Any, busy_timeout: float) -> None:
    """Put the database in WAL mode (it stays so), waiting out another process's lock.

    Changing the journal mode does not wait on SQLite's busy handler: on a new
    catalog that a second process is already migrating it fails at once with
    "database is locked", so it is retried here for up to ``busy_timeout``.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


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


def _postgres_engine(url: URL, **kwargs: Any) -> Engine:
    if url.get_driver_name() != "psycopg":
        raise ValidationError(
            f"unsupported PostgreSQL driver {url.drivername!r}: use postgresql+psycopg://…",
            url=url.render_as_string(hide_password=True),
        )
    if importlib.util.find_spec("psycopg") is None:
        raise MissingExtraError(
            "a PostgreSQL catalog needs psycopg: pip install 'weightbase[postgres]'",
            extra="postgres",
        )
    connect_args = dict(kwargs.pop("connect_args", {}))
    if "connect_timeout" not in url.query:
        connect_args.setdefault("connect_timeout", 10)
    if "application_name" not in url.query:
        connect_args.setdefault("application_name", "weightbase")
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, connect_args=connect_args, **kwargs)


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
