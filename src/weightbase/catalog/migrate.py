"""Alembic, run from code: bring a catalog's schema to the newest revision, under a lock.

The migration scripts ship inside the package (``catalog/migrations``), so an
installed wheel can upgrade its own catalog; no ``alembic.ini`` is involved.
To write a new migration, change ``schema.py`` and run::

    python -m weightbase.catalog.migrate revision "what changed"

which autogenerates ``migrations/versions/NNNN_what_changed.py`` against a
scratch SQLite database at the current head; read and edit it before use.
Runs on engines from ``weightbase.catalog.engine``; ``Catalog.open`` (in
``sessions``) calls ``upgrade``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from weightbase.catalog.engine import WRITE_OPTION, create_engine

__all__ = ["MIGRATIONS", "alembic_config", "current_revision", "head_revision", "upgrade"]

#: The folder holding ``env.py`` and ``versions/``.
MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration for the packaged migrations, running on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest revision among the packaged migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the connected database is at, ``None`` if it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: sa.Engine) -> None:
    """Create or upgrade the schema to the newest revision; a no-op when it is there already."""
    with engine.connect() as connection:
        if current_revision(connection) == head_revision():
            return
    # Two processes may find an old schema at once; the lock makes the second
    # one wait, then find the first one's work done (Alembic re-reads the
    # revision inside the locked transaction).
    writer = engine.execution_options(**{WRITE_OPTION: True})
    with _migration_lock(engine), writer.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Per schema, so catalogs in different schemas of one database do not queue.
            connection.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock("
                    "hashtext('weightbase.catalog.migrate:' || coalesce(current_schema(), '')))"
                )
            )
        command.upgrade(alembic_config(connection), "head")


@contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[None]:
    """An exclusive file lock beside a SQLite database file; nothing for other databases."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        yield
        return
    lock_path = Path(database).expanduser().with_name(Path(database).name + ".migrate-lock")
    with open(lock_path, "a+b") as handle:
        _lock_file(handle.fileno())
        try:
            yield
        finally:
            _unlock_file(handle.fileno())


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_file(fd: int) -> None:
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for ~10 s, then raises
                return
            except OSError:
                continue

    def _unlock_file(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def new_revision(message: str) -> Path:
    """Autogenerate the next migration from the difference between ``schema.py`` and head."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    number = int(head) + 1 if head is not None and head.isdigit() else 1
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        try:
            upgrade(engine)
            with engine.begin() as connection:
                created = command.revision(
                    alembic_config(connection),
                    message=message,
                    autogenerate=True,
                    rev_id=f"{number:04d}",
                )
        finally:
            engine.dispose()
    revisions = created if isinstance(created, list) else [created]
    if not revisions or revisions[0] is None:  # pragma: no cover - alembic always returns one
        raise RuntimeError("alembic created no revision")
    return Path(revisions[0].path)


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "revision":
        print('usage: python -m weightbase.catalog.migrate revision "what changed"')
        return 2
    print(new_revision(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
