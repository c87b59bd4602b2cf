"""``weightbase monitor …``: every command, against an embedded workspace, with ``--json``
answers checked against ``wb.monitoring`` and refusals as exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import weightbase
from weightbase.cli import app
from weightbase.serving.inference_records import InferenceWindow


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A workspace with ``digits`` 0.1.0 then 0.2.0 deployed to staging, sampled requests
    with labels (half right) and a window of 20% errors; the deployment's id."""
    home = tmp_path / "home"
    with weightbase.open(home) as wb:
        for accuracy in (0.9, 0.95):
            found = wb.models.push("digits", {"w": np.full(2, accuracy, np.float32)})
            wb.models.log_metrics(found, {"accuracy": accuracy})
        config = {
            "environment": "staging",
            "monitoring": {"alertThresholds": {"error_rate": 0.05, "accuracy_drop": 0.1}},
        }
        wb.deployments.deploy("digits@0.1.0", config=config)
        deployment = wb.deployments.deploy("digits@0.2.0", config=config)
        recorder = wb.monitoring.recorder(rate=1.0)
        for i in range(20):
            recorder.observe(deployment.id, f"r{i}", {"x": i}, {"label": i % 3}, 1.0)
        recorder.flush()
        wb.monitoring.labels([(f"r{i}", i % 3 if i < 10 else 9) for i in range(1, 20)])
        now = datetime.now(UTC)
        wb.inference.record(
            [
                InferenceWindow(
                    model="digits",
                    version="0.2.0",
                    served_as="digits",
                    server_id="s",
                    started=now - timedelta(seconds=10),
                    ended=now,
                    requests=50,
                    errors=10,
                    deployment_id=deployment.id,
                )
            ]
        )
    monkeypatch.setenv("WEIGHTBASE_HOME", str(home))
    monkeypatch.delenv("WEIGHTBASE_URL", raising=False)
    return home, deployment.id


def _json(*args: str) -> object:
    result = CliRunner().invoke(app, ["monitor", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_every_monitor_command_answers_what_the_service_does(home: tuple[Path, str]) -> None:
    path, deployment = home
    runner = CliRunner()
    labeled = runner.invoke(app, ["monitor", "label", "r0", "0"])
    assert labeled.exit_code == 0, labeled.output
    assert "meets a sampled request" in labeled.output
    page = _json("samples", deployment, "--limit", "5")
    assert isinstance(page, dict)
    assert [item["request_id"] for item in page["items"]] == [f"r{i}" for i in range(5)]
    assert page["items"][0]["label"] == 0  # the label typed as JSON: a number
    assert page["next"]
    performance = _json("performance", deployment, "--min-labels", "5")
    assert isinstance(performance, dict)
    [window] = performance["windows"]
    assert window["accuracy"] == pytest.approx(10 / 20)
    assert window["degraded"] is True
    checked = _json("check", "digits", "--env", "staging")
    assert isinstance(checked, dict)
    assert sorted(a["rule"] for a in checked["opened"]) == ["accuracy_drop", "error_rate"]
    alerts = _json("alerts", "--deployment", deployment, "--status", "open")
    assert isinstance(alerts, list)
    assert len(alerts) == 2
    first = alerts[0]["id"]
    acknowledged = _json("ack", first, "--reason", "on it")
    assert isinstance(acknowledged, dict)
    assert acknowledged["status"] == "acknowledged"
    resolved = _json("resolve", first)
    assert isinstance(resolved, dict)
    assert resolved["status"] == "resolved"
    health = _json("health", deployment)
    assert isinstance(health, dict)
    assert health["recommendation"] == "rollback"
    assert health["rollback_to"] == "0.1.0"
    with weightbase.open(path) as wb:
        assert health["score"] == wb.monitoring.health(deployment).score
    shown = runner.invoke(app, ["monitor", "health", deployment])
    assert shown.exit_code == 0
    assert "recommendation: rollback to digits@0.1.0" in shown.output
    for command in (["performance", deployment], ["check", deployment], ["samples", deployment]):
        assert runner.invoke(app, ["monitor", *command]).exit_code == 0
    future = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    pruned = _json("prune", "--before", future, "--target", "digits@0.2.0")
    assert pruned == {"deleted": 20}
    for command in (["alerts"], ["samples", "digits"], ["prune", "--before", future]):
        assert runner.invoke(app, ["monitor", *command]).exit_code == 0


def test_refusals_exit_with_a_message_and_change_nothing(home: tuple[Path, str]) -> None:
    path, deployment = home
    runner = CliRunner()
    missing = runner.invoke(app, ["monitor", "health", "nothing"])
    assert missing.exit_code != 0
    assert "nothing" in missing.output
    bad = runner.invoke(app, ["monitor", "samples", deployment, "--since", "yesterday"])
    assert bad.exit_code != 0
    assert runner.invoke(app, ["monitor", "ack", "f" * 32]).exit_code != 0
    assert runner.invoke(app, ["monitor", "check", deployment, "--drift-share", "2"]).exit_code != 0
    with weightbase.open(path) as wb:
        assert wb.monitoring.alerts() == []


def test_drift_compares_the_samples_with_the_training_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weightbase.datasets import from_numpy

    home = tmp_path / "drift-home"
    rng = np.random.default_rng(0)
    with weightbase.open(home) as wb:
        data = wb.datasets.register(
            "pts", from_numpy(rng.normal(size=(300, 3)), np.arange(300) % 2)
        )
        version = wb.models.push("clf", {"w": np.zeros(3, np.float32)})
        wb.models.link(version, "trained_on", wb.datasets.node(data))
        recorder = wb.monitoring.recorder(rate=1.0)
        shift = np.array([3.0, 0.0, 0.0])
        for i, row in enumerate(rng.normal(size=(120, 3)) + shift):
            recorder.observe("clf@0.1.0", f"q{i}", row.tolist(), None, 1.0)
        recorder.flush()
        expected = wb.monitoring.drift("clf@0.1.0")
    monkeypatch.setenv("WEIGHTBASE_HOME", str(home))
    runner = CliRunner()
    found = runner.invoke(app, ["monitor", "drift", "clf@0.1.0", "--json"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout) == json.loads(json.dumps(expected.to_dict()))
    assert expected.drifted_columns[0] == "0"
    shown = runner.invoke(app, ["monitor", "drift", "clf", "--since", "2000-01-01T00:00:00Z"])
    assert shown.exit_code == 0, shown.output
    assert "1 of 3 features drifted" in shown.stdout
    bad = runner.invoke(app, ["monitor", "drift", "clf", "--since", "yesterday"])
    assert bad.exit_code != 0
    assert "ISO 8601" in bad.output
