"""The developer tools around the migrations: autogenerating a revision, offline SQL.

``new_revision`` writes into the migrations folder, so these tests point
``MIGRATIONS`` at a copy of the packaged one.
"""

from __future__ import annotations

import runpy
import shutil
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from weightbase.catalog import migrate as migrate_module
from weightbase.catalog.migrate import alembic_config, head_revision, new_revision
from weightbase.catalog.schema import Base


@pytest.fixture
def migrations_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(migrate_module.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate_module, "MIGRATIONS", copy)
    return copy


def _next_number() -> str:
    return f"{int(head_revision()) + 1:04d}"


def _body(script: str, function: str) -> list[str]:
    """The statements of ``function`` in a generated script, without Alembic's comments."""
    lines = script.split(f"def {function}() -> None:\n", 1)[1].splitlines()
    body = []
    for line in lines:
        if line and not line.startswith(" "):
            break
        if line.strip() and not line.strip().startswith("#"):
            body.append(line.strip())
    return body


def test_a_revision_without_schema_changes_is_empty(migrations_copy: Path) -> None:
    created = new_revision("nothing changed")
    assert created == migrations_copy / "versions" / f"{_next_number()}_nothing_changed.py"
    text = created.read_text()
    assert f"revision: str = '{_next_number()}'" in text
    assert f"down_revision: str | Sequence[str] | None = '{head_revision()}'" in text
    assert _body(text, "upgrade") == ["pass"]
    assert _body(text, "downgrade") == ["pass"]
    # the packaged folder is untouched
    assert not list(
        (Path(migrate_module.__file__).parent / "migrations" / "versions").glob(
            f"{_next_number()}_*"
        )
    )


def test_a_revision_picks_up_a_new_table(migrations_copy: Path) -> None:
    table = sa.Table(
        "scratch_notes",
        Base.metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    try:
        created = new_revision("add scratch notes")
    finally:
        Base.metadata.remove(table)
    text = created.read_text()
    assert created.name == f"{_next_number()}_add_scratch_notes.py"
    assert _body(text, "upgrade")[0] == "op.create_table('scratch_notes',"
    assert "sa.Column('body', sa.Text(), nullable=False)," in _body(text, "upgrade")
    assert _body(text, "downgrade") == ["op.drop_table('scratch_notes')"]


def test_the_command_line_writes_a_revision_and_prints_its_path(
    migrations_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrate_module._main(["revision", "from the shell"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert Path(printed) == migrations_copy / "versions" / f"{_next_number()}_from_the_shell.py"
    assert Path(printed).is_file()


@pytest.mark.parametrize("argv", [[], ["revision"], ["upgrade", "head"], ["revision", "a", "b"]])
def test_the_command_line_explains_its_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrate_module._main(argv) == 2
    assert capsys.readouterr().out == (
        'usage: python -m weightbase.catalog.migrate revision "what changed"\n'
    )


def test_offline_mode_prints_the_sql(capsys: pytest.CaptureFixture[str]) -> None:
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://db/catalog")
    command.upgrade(config, "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE models (" in sql
    assert f"UPDATE alembic_version SET version_num='{head_revision()}'" in sql


def test_online_migrations_need_a_connection() -> None:
    with pytest.raises(RuntimeError, match="which passes them a connection"):
        command.upgrade(alembic_config(None), "head")


def test_running_the_module_exits_with_the_usage_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["migrate.py"])
    with pytest.raises(SystemExit) as caught:
        runpy.run_path(migrate_module.__file__, run_name="__main__")
    assert caught.value.code == 2
    assert capsys.readouterr().out.startswith("usage: python -m weightbase.catalog.migrate")
