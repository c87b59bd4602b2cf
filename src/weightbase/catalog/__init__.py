"""The relational catalog: schema, migrations and engines for SQLite and PostgreSQL.

    from weightbase.catalog import Catalog
    catalog = Catalog.open("sqlite:///catalog.db")      # creates or upgrades the schema
    with catalog.transaction() as session:
        session.add(...)

No business rules: the domain modules own what their tables may hold. ``engine``
makes engines from URLs, ``migrate`` runs Alembic on them, ``sessions`` holds
``Catalog``, which opens one, migrates it and hands out sessions.
"""

from weightbase.catalog.engine import create_engine, normalize_url
from weightbase.catalog.sessions import Catalog
from weightbase.catalog.translate import translate_errors

__all__ = ["Catalog", "create_engine", "normalize_url", "translate_errors"]
