"""The databases the registry benchmark runs on: fresh PostgreSQL databases, SQLite files.

Each catalog (weightbase's, and MLflow's registry as the anchor) gets its own
database, created for one run and dropped afterwards.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from benchmarks.registry import RegistryConfig

__all__ = ["database", "postgres_problem", "server_version"]


@contextmanager
def _postgres_database(server_url: str, prefix: str = "wb_bench_registry") -> Iterator[str]:
    """A new, empty database on the server for one run, dropped afterwards."""
    import psycopg

    url = make_url(server_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database(backend: str, config: RegistryConfig, *, mlflow: bool = False) -> Iterator[str]:
    """weightbase's catalog database, or (``mlflow``) a separate one for MLflow's registry."""
    if backend == "sqlite":
        name = "mlflow-registry.db" if mlflow else "registry-catalog.db"
        yield f"sqlite:///{config.workdir / name}"
    else:
        assert config.postgres_url is not None
        prefix = "wb_bench_mlflow" if mlflow else "wb_bench_registry"
        with _postgres_database(config.postgres_url, prefix) as url:
            yield url


def server_version(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with engine.connect() as connection:
        version = connection.execute(select(func.current_setting("server_version"))).scalar_one()
    return f"PostgreSQL {str(version).split()[0]}"


def postgres_problem(server_url: str) -> str | None:
    """Why the PostgreSQL server at ``server_url`` cannot be used, or None when it can."""
    url = make_url(server_url)
    shown = url.render_as_string(hide_password=True)
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'weightbase[postgres]')"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5):
            return None
    except psycopg.Error as exc:
        return f"cannot reach PostgreSQL at {shown} ({' '.join(str(exc).split())})"
