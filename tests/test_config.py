"""Settings from WEIGHTBASE_* variables, and who the acting user is."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from weightbase.config import Settings, default_actor, settings, sqlite_url


def test_settings_default_to_files_under_home(weightbase_home: Path) -> None:
    current = settings()
    assert current == Settings(
        home=weightbase_home,
        store_url=str(weightbase_home / "store"),
        catalog_url=f"sqlite:///{weightbase_home / 'catalog.db'}",
    )


def test_settings_are_read_afresh(weightbase_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings().store_url == str(weightbase_home / "store")
    monkeypatch.setenv("WEIGHTBASE_STORE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("WEIGHTBASE_CATALOG_URL", "postgresql+psycopg://db/catalog")
    assert settings().store_url == "s3://bucket/prefix"
    assert settings().catalog_url == "postgresql+psycopg://db/catalog"
    assert settings().home == weightbase_home


def test_an_explicit_home_replaces_the_environment(weightbase_home: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    assert Settings.from_env(other).home == other
    assert Settings.from_env(other).catalog_url == sqlite_url(other / "catalog.db")


def test_home_expands_the_user_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.from_env("~/wb").home == tmp_path / "wb"


def test_the_actor_is_unknown_without_a_login_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_login_name() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.delenv("WEIGHTBASE_ACTOR", raising=False)
    monkeypatch.setattr(getpass, "getuser", no_login_name)
    assert default_actor() == "unknown"


def test_a_blank_actor_variable_falls_back_to_the_os_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEIGHTBASE_ACTOR", "   ")
    monkeypatch.setattr(getpass, "getuser", lambda: "os-user")
    assert default_actor() == "os-user"
    monkeypatch.setenv("WEIGHTBASE_ACTOR", " ci-bot ")
    assert default_actor() == "ci-bot"
