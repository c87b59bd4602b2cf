"""``weightbase users teams`` and ``weightbase users own``: teams and model ownership."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import weightbase
from weightbase.cli import ExitCode, app

DOCS = Path(__file__).parents[2] / "docs"


@pytest.fixture
def run(weightbase_home: Path) -> Any:
    """Run ``weightbase …`` in-process; expect exit code ``code`` (default 0)."""
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


def _json(run: Any, *args: str) -> Any:
    return json.loads(run(*args, "--json").stdout)


def test_users_teams_sets_exactly_the_teams_given(run: Any, weightbase_home: Path) -> None:
    run("users", "add", "ada", "--team", "nlp")
    assert _json(run, "users", "teams", "ada", "vision", "cv")["teams"] == ["cv", "vision"]
    assert "teams of ada: nlp" in run("users", "teams", "ada", "nlp", "--reason", "moved").stdout
    assert "teams of ada: none" in run("users", "teams", "ada", "--clear").stdout
    with weightbase.open(weightbase_home) as wb:
        assert wb.access.users.get("ada").teams == ()
        entry = wb.audit.entries(action="users.set_teams", newest_first=True, limit=1)[0]
    assert entry.reason is None
    assert entry.actor == "test-user"
    assert (entry.token_id, entry.remote_address) == (None, None)


def test_users_own_sets_shows_and_clears_a_models_owner(run: Any, weightbase_home: Path) -> None:
    run("users", "add", "ada", "--role", "editor")
    with weightbase.open(weightbase_home) as wb:
        wb.models.create("org/bert")
    shown = run("users", "own", "org/bert").stdout
    assert "no owner" in shown
    assert "no team" in shown
    owned = _json(run, "users", "own", "org/bert", "--owner", "ada", "--team", "nlp")
    assert (owned["model"], owned["owner"], owned["team"]) == ("org/bert", "ada", "nlp")
    assert "ada, team nlp" in run("users", "own", "org/bert").stdout
    assert _json(run, "users", "own", "org/bert", "--team", "cv")["owner"] is None
    cleared = _json(run, "users", "own", "org/bert", "--clear", "--reason", "open")
    assert (cleared["owner"], cleared["team"]) == (None, None)
    with weightbase.open(weightbase_home) as wb:
        entry = wb.audit.entries(action="model.set_owner", newest_first=True, limit=1)[0]
    assert entry.reason == "open"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("users", "teams", "ada"), ExitCode.USAGE),
        (("users", "teams", "ada", "nlp", "--clear"), ExitCode.USAGE),
        (("users", "teams", "ada", "bad team"), ExitCode.USAGE),
        (("users", "teams", "nobody", "nlp"), ExitCode.NOT_FOUND),
        (("users", "own", "org/none", "--owner", "ada"), ExitCode.NOT_FOUND),
        (("users", "own", "org/bert", "--owner", "nobody"), ExitCode.NOT_FOUND),
        (("users", "own", "org/bert", "--owner", "ada", "--clear"), ExitCode.USAGE),
    ],
)
def test_errors_exit_with_their_code(
    run: Any, weightbase_home: Path, args: tuple[str, ...], code: int
) -> None:
    run("users", "add", "ada")
    with weightbase.open(weightbase_home) as wb:
        wb.models.create("org/bert")
    assert run(*args, code=code).stderr.startswith("error: ")


@pytest.mark.parametrize("command", ["teams", "own"])
def test_the_commands_are_documented(command: str) -> None:
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert f"`{command}`" in cli
    server = (DOCS / "server.md").read_text(encoding="utf-8")
    assert f"weightbase users {command}" in server
