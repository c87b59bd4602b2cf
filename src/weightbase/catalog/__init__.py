"""The relational catalog: schema, migrations and engines for SQLite and PostgreSQL.

    from weightbase.catalog import Catalog
    catalog = Catalog.open("sqlite:///catalog.db")      # creates or upgrades the schema
    with catalog.transaction() as session:
        session.add(...)

No business rules: the domain modules own what their tables may hold.
"""

from weightbase.catalog.engine import Catalog, create_engine, normalize_url
from weightbase.catalog.translate import translate_errors

__all__ = ["Catalog", "create_engine", "normalize_url", "translate_errors"]
