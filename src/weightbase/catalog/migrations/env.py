"""Alembic environment of the catalog, run by ``weightbase.catalog.migrate`` (not by an ini file).

Online, it migrates the connection handed over in ``config.attributes``;
offline (``alembic upgrade --sql``) it prints the SQL for ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context

from weightbase.catalog.schema import Base


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "the catalog migrations run through weightbase.catalog.migrate, "
            "which passes them a connection"
        )
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
