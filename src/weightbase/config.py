"""Settings, read from ``WEIGHTBASE_*`` environment variables in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Where weightbase keeps its data.

    ``WEIGHTBASE_HOME`` (default ``~/.weightbase``) holds everything of an
    embedded install; ``WEIGHTBASE_STORE_URL`` moves the tensor store elsewhere
    (``s3://bucket/prefix`` for an S3-compatible service).
    """

    home: Path
    store_url: str

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("WEIGHTBASE_HOME", "~/.weightbase")).expanduser()
        store_url = os.environ.get("WEIGHTBASE_STORE_URL") or str(home / "store")
        return cls(home=home, store_url=store_url)


def settings() -> Settings:
    """The settings in force now (read afresh, so tests can change the environment)."""
    return Settings.from_env()
