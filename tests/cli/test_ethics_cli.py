"""``weightbase ethics questionnaire|submit|show`` and ``weightbase explain show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import weightbase
from weightbase.cli import ExitCode, app
from weightbase.cli._common import console
from weightbase.governance.ethics import DEFAULT_QUESTIONNAIRE

GROUP = "ethics"
VERSION = "triage@0.1.0"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows on one line each, whatever terminal the tests run in."""
    monkeypatch.setattr(console, "_width", 200)


@pytest.fixture
def pushed(weightbase_home: Path) -> None:
    with weightbase.open() as wb:
        wb.models.push("triage", {"w": np.ones((3, 2), dtype=np.float32)})


@pytest.fixture
def answers(tmp_path: Path) -> Path:
    path = tmp_path / "answers.yaml"
    lines = [f"{q.id}: about {q.id}" for q in DEFAULT_QUESTIONNAIRE.questions if q.required]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_questionnaire_is_listed(cli: Any, cli_json: Any, tmp_path: Path) -> None:
    shown = cli("questionnaire").stdout
    assert DEFAULT_QUESTIONNAIRE.name in shown
    for question in DEFAULT_QUESTIONNAIRE.questions:
        assert question.id in shown
    listed = cli_json("questionnaire")
    assert listed["digest"] == DEFAULT_QUESTIONNAIRE.digest
    custom = tmp_path / "q.json"
    custom.write_text(json.dumps({"name": "mine", "questions": [{"id": "a", "text": "A?"}]}))
    mine = cli_json("questionnaire", "--questionnaire", str(custom))
    assert [q["id"] for q in mine["questions"]] == ["a"]


@pytest.mark.usefixtures("pushed")
def test_a_review_is_submitted_and_shown(
    cli: Any, cli_json: Any, fail: Any, answers: Path, tmp_path: Path
) -> None:
    assert cli("show", VERSION).stdout.strip() == f"{VERSION} has no ethics review yet"
    assert cli_json("show", VERSION) is None
    signed = cli_json(
        "submit", VERSION, "--answers", str(answers), "--decision", "concerns", "--notes", "n"
    )
    assert (signed["reviewer"], signed["decision"], signed["notes"]) == (
        "test-user",
        "concerns",
        "n",
    )
    shown = cli("submit", VERSION, "--answers", str(answers), "--decision", "approved").stdout
    assert f"{VERSION}: approved by test-user" in shown
    assert "intended_use: about intended_use" in shown
    latest = cli_json("show", VERSION)
    assert latest["decision"] == "approved"
    assert [r["decision"] for r in cli_json("show", VERSION, "--all")] == ["concerns", "approved"]
    table = cli("show", VERSION, "--all").stdout
    assert "concerns" in table
    assert signed["signoff_digest"][:12] in table

    partial = tmp_path / "partial.yaml"
    partial.write_text("intended_use: triage\nmood: good\n")
    error = fail("submit", VERSION, "--answers", str(partial), "--decision", "approved")
    assert "no answer to required questions affected_groups" in error
    assert "has no questions mood" in error
    error = fail("submit", VERSION, "--answers", str(answers), "--decision", "fine")
    assert "a decision is one of approved, concerns, rejected" in error
    fail("submit", VERSION, "--answers", str(tmp_path / "none.yaml"), "--decision", "approved")
    fail("show", "triage@9.9.9", code=ExitCode.NOT_FOUND)
    assert len(cli_json("show", VERSION, "--all")) == 2


def test_explain_show_says_what_is_not_available_then_the_ranking(weightbase_home: Path) -> None:
    with weightbase.open() as wb:
        wb.models.push("triage", {"w": np.ones((3, 2), dtype=np.float32)})
    runner = CliRunner()
    result = runner.invoke(app, ["explain", "show", VERSION])
    assert result.exit_code == 0, result.output
    assert f"{VERSION}: not available" in result.stdout
    assert "tabular models" in result.stdout
    result = runner.invoke(app, ["explain", "show", VERSION, "--json"])
    assert json.loads(result.stdout)["available"] is False

    pytest.importorskip("shap")
    rows = np.random.default_rng(0).standard_normal((20, 3))
    with weightbase.open() as wb:
        wb.explanations.compute(
            VERSION,
            lambda batch: np.asarray(batch)[:, 2] * 5.0 + np.asarray(batch)[:, 0],
            rows,
            feature_names=["age", "noise", "dose"],
            dataset="visits@1.0.0",
            max_samples=10,
        )
    result = runner.invoke(app, ["explain", "show", VERSION])
    assert result.exit_code == 0, result.output
    assert "over 10 rows on visits@1.0.0" in result.stdout
    features = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("│")]
    assert features == ["dose", "age", "noise"]  # most important first
    shown = json.loads(runner.invoke(app, ["explain", "show", VERSION, "--json"]).stdout)
    assert [a["feature"] for a in shown["attributions"]] == ["age", "noise", "dose"]
