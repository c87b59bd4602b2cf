"""``weightbase users …`` and ``weightbase tokens …``: users, roles and tokens from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import weightbase
from weightbase.cli import ExitCode, app

GROUP = "users"  # the command group the fixtures in conftest.py run

DOCS = Path(__file__).parents[2] / "docs"
COMMANDS = {
    "users": ["add", "list", "role", "disable", "enable"],
    "tokens": ["create", "list", "revoke"],
}


@pytest.fixture
def run(weightbase_home: Path) -> Any:
    """Run ``weightbase …`` in-process; expect exit code ``code`` (default 0)."""
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


@pytest.fixture
def run_json(run: Any) -> Any:
    def invoke(*args: str) -> Any:
        return json.loads(run(*args, "--json").stdout)

    return invoke


def test_users_add_list_role_disable_enable(run: Any, run_json: Any) -> None:
    added = run_json(
        "users", "add", "ada", "--role", "admin", "--team", "nlp", "--display-name", "Ada L."
    )
    assert (added["name"], added["role"], added["teams"]) == ("ada", "admin", ["nlp"])
    assert added["created_by"] == "test-user"
    assert "added grace: viewer" in run("users", "add", "grace").stdout
    assert [u["name"] for u in run_json("users", "list")["users"]] == ["ada", "grace"]
    listing = run("users", "list").stdout
    for shown in ("ada", "Ada L.", "nlp", "admin", "viewer"):
        assert shown in listing

    assert run_json("users", "role", "grace", "editor", "--reason", "joins")["role"] == "editor"
    assert "role of grace: approver" in run("users", "role", "grace", "approver").stdout
    assert run_json("users", "disable", "grace", "--reason", "left")["disabled"] is True
    assert "(disabled)" in run("users", "disable", "grace").stdout
    assert [u["name"] for u in run_json("users", "list", "--enabled")["users"]] == ["ada"]
    assert run_json("users", "enable", "grace")["disabled"] is False
    assert "enabled grace" in run("users", "enable", "grace").stdout


def test_users_list_when_there_are_none(run: Any, run_json: Any) -> None:
    assert run("users", "list").stdout.strip() == "no users"
    assert run_json("users", "list") == {"users": []}
    assert run("tokens", "list").stdout.strip() == "no tokens"


def test_tokens_create_shows_the_secret_once(
    run: Any, run_json: Any, weightbase_home: Path
) -> None:
    run("users", "add", "ada", "--role", "editor")
    created = run("tokens", "create", "ada", "--name", "laptop", "--expires-in-days", "30")
    lines = created.stdout.splitlines()
    secret = next(line for line in lines if line.startswith("wb_"))
    assert "created token" in created.stdout
    assert "expires" in created.stdout
    assert "not shown again" in created.stderr
    made = run_json("tokens", "create", "ada", "--name", "ci", "--description", "pipelines")
    assert made["secret"].startswith(f"wb_{made['token_id']}_")
    assert "not shown again" in made["warning"]
    assert made["expires_at"] is None

    listed = run_json("tokens", "list")["tokens"]
    assert [t["name"] for t in listed] == ["laptop", "ci"]
    assert all("secret" not in t for t in listed)
    human = run("tokens", "list", "--user", "ada").stdout
    assert "active" in human
    assert secret not in human
    assert made["secret"] not in human

    with weightbase.open(weightbase_home) as wb:
        assert wb.access.authenticate(secret).user == "ada"
    revoked = run_json("tokens", "revoke", made["token_id"], "--reason", "rotated")
    assert revoked["revoked"] is True
    assert "revoked token" in run("tokens", "revoke", secret[3:15]).stdout
    assert run_json("tokens", "list")["tokens"] == []
    states = run("tokens", "list", "--revoked").stdout
    assert states.count("revoked") == 2
    with weightbase.open(weightbase_home) as wb:
        with pytest.raises(weightbase.AuthenticationError):
            wb.access.authenticate(secret)
        audit = [entry.to_dict() for entry in wb.audit.entries(limit=1000)]
    assert secret.rsplit("_", 1)[-1] not in json.dumps(audit)


def test_an_expired_token_lists_as_expired(run: Any, weightbase_home: Path) -> None:
    import sqlalchemy as sa

    from weightbase.catalog.schema import ApiTokenRow, utcnow

    run("users", "add", "ada")
    run("tokens", "create", "ada", "--name", "old", "--expires-in-days", "1")
    with weightbase.open(weightbase_home) as wb, wb.catalog.transaction() as session:
        session.execute(sa.update(ApiTokenRow).values(expires_at=utcnow()))
    assert "expired" in run("tokens", "list").stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("users", "add", "bad name"), ExitCode.USAGE),
        (("users", "add", "ada", "--role", "root"), ExitCode.USAGE),
        (("users", "role", "nobody", "admin"), ExitCode.NOT_FOUND),
        (("users", "disable", "nobody"), ExitCode.NOT_FOUND),
        (("users", "enable", "nobody"), ExitCode.NOT_FOUND),
        (("tokens", "create", "nobody", "--name", "x"), ExitCode.NOT_FOUND),
        (("tokens", "create", "ada", "--name", "x", "--expires-in-days", "0"), ExitCode.USAGE),
        (("tokens", "revoke", "ffffffffffff"), ExitCode.NOT_FOUND),
        (("tokens", "list", "--user", "nobody"), ExitCode.NOT_FOUND),
    ],
)
def test_errors_exit_with_their_code(run: Any, args: tuple[str, ...], code: int) -> None:
    run("users", "add", "ada")
    result = run(*args, code=code)
    assert result.stderr.startswith("error: ")


def test_conflicts_exit_with_4(run: Any) -> None:
    run("users", "add", "root", "--role", "admin")
    assert "already exists" in run("users", "add", "root", code=ExitCode.CONFLICT).stderr
    assert "last enabled admin" in run("users", "disable", "root", code=ExitCode.CONFLICT).stderr


@pytest.mark.parametrize(
    ("group", "command"), [(g, c) for g, commands in COMMANDS.items() for c in commands]
)
def test_every_command_is_documented(group: str, command: str) -> None:
    governance = (DOCS / "governance.md").read_text(encoding="utf-8")
    assert f"weightbase {group} {command}" in governance
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert f"`weightbase {group}`" in cli
    assert f"`{command}`" in cli
