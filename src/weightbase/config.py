"""Settings, read from ``WEIGHTBASE_*`` environment variables in one place."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "default_actor", "settings", "sqlite_url"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Where weightbase keeps its data.

    ``WEIGHTBASE_HOME`` (default ``~/.weightbase``) holds everything of an
    embedded install; ``WEIGHTBASE_STORE_URL`` moves the tensor store elsewhere
    (``s3://bucket/prefix`` for an S3-compatible service) and
    ``WEIGHTBASE_CATALOG_URL`` the catalog (``postgresql+psycopg://…``).
    """

    home: Path
    store_url: str
    catalog_url: str

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        """The settings from the environment; ``home``, if given, replaces ``WEIGHTBASE_HOME``."""
        if home is None:
            home = os.environ.get("WEIGHTBASE_HOME", "~/.weightbase")
        home_path = Path(home).expanduser()
        store_url = os.environ.get("WEIGHTBASE_STORE_URL") or str(home_path / "store")
        catalog_url = os.environ.get("WEIGHTBASE_CATALOG_URL") or sqlite_url(
            home_path / "catalog.db"
        )
        return cls(home=home_path, store_url=store_url, catalog_url=catalog_url)


def settings() -> Settings:
    """The settings in force now (read afresh, so tests can change the environment)."""
    return Settings.from_env()


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of the SQLite database file at ``path``."""
    return f"sqlite:///{Path(path)}"


def default_actor() -> str:
    """Who is acting: ``WEIGHTBASE_ACTOR``, else the operating-system user."""
    actor = os.environ.get("WEIGHTBASE_ACTOR", "").strip()
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"
