"""Engines for the catalog's two databases: URLs, connection settings, write transactions.

SQLite (the embedded default) runs in WAL mode with a 30 s busy timeout,
foreign keys on and ``synchronous=FULL``, so a committed transaction survives
power loss, not only a process crash (the WAL is fsynced at every commit: about
0.35 ms a commit on the benchmark machine's disk). Its write transactions start with
``BEGIN IMMEDIATE``, so concurrent writers queue on the database lock at the
start instead of failing with "database is locked" half-way through.
PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://…``).
``Catalog`` (in ``sessions``) opens its sessions on these engines.
"""

from __future__ import annotations

import importlib.util
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from weightbase.errors import MissingExtraError, ValidationError

__all__ = ["BUSY_TIMEOUT_S", "WRITE_OPTION", "create_engine", "normalize_url"]

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
            # FULL: a commit is durable against power loss once it returns, as the docs
            # promise of flush() and registry writes; NORMAL would lose the WAL's tail
            cursor.execute("PRAGMA synchronous = FULL")
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
