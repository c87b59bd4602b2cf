"""Fixtures for one CLI group's tests; each test module names its group in ``GROUP``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from weightbase.cli import ExitCode, app, main


@pytest.fixture
def group(request: pytest.FixtureRequest) -> str:
    """The command group under test: the test module's ``GROUP``."""
    return str(request.module.GROUP)


@pytest.fixture
def cli(weightbase_home: Path, group: str) -> Any:
    """Run ``weightbase <group> …`` in-process; expect exit code ``code`` (default 0)."""
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, [group, *args])
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


@pytest.fixture
def cli_json(cli: Any) -> Any:
    """Run a command with ``--json`` and parse what it printed."""

    def invoke(*args: str) -> Any:
        return json.loads(cli(*args, "--json").stdout)

    return invoke


@pytest.fixture
def fail(weightbase_home: Path, group: str, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Any:
    """Run the CLI as its entry point does; expect exit ``code`` and one ``error:`` line."""

    def invoke(*args: str, code: int = ExitCode.USAGE) -> str:
        capsys.readouterr()  # what the test printed before is not the command's
        monkeypatch.setattr(sys, "argv", ["weightbase", group, *args])
        with pytest.raises(SystemExit) as exited:
            main()
        captured = capsys.readouterr()
        assert exited.value.code == code, captured
        assert "Traceback" not in captured.err
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert lines[0].startswith("error: ")
        return str(lines[0])

    return invoke
