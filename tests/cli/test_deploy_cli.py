"""``weightbase deploy create|scale|stop|status|list|history``, with ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import weightbase
from weightbase.cli import ExitCode
from weightbase.cli._common import console

GROUP = "deploy"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "_width", 200)


@pytest.fixture
def pushed(weightbase_home: Path) -> None:
    with weightbase.open() as wb:
        wb.models.push("digits", {"w": np.ones((3, 2), dtype=np.float32)})
        wb.models.push("digits", {"w": np.zeros((3, 2), dtype=np.float32)})


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    """Seed 000's ``deployModel`` argument, camelCase, with ``config`` and ``monitoring``."""
    path = tmp_path / "deploy.yaml"
    path.write_text(
        "environment: staging\n"
        "config:\n"
        "  batchSize: 32\n"
        "  maxConcurrency: 100\n"
        "  timeout: 5000\n"
        "  scaling: {minReplicas: 2, maxReplicas: 10, targetCPU: 70, targetMemory: 80}\n"
        "  resources: {cpu: 2000m, memory: 4Gi, gpu: '1'}\n"
        "monitoring: {metricsInterval: 30000, alertThresholds: {error_rate: 0.01}, "
        "logLevel: info}\n"
    )
    return path


@pytest.mark.usefixtures("pushed")
def test_create_from_a_seed_file_with_flags_over_it(cli_json: Any, seed_file: Path) -> None:
    made = cli_json("create", "digits@0.1.0", "--config", str(seed_file), "--batch-size", "8")
    assert (made["model"], made["version"], made["environment"]) == ("digits", "0.1.0", "staging")
    assert made["status"] == "pending"
    assert made["replicas"] == 2
    config = made["config"]
    assert (config["batch_size"], config["max_concurrency"], config["timeout_s"]) == (8, 100, 5.0)
    assert config["scaling"]["max_replicas"] == 10
    assert config["resources"] == {"cpu": "2000m", "memory": "4Gi", "gpu": 1}
    assert config["monitoring"]["metrics_interval_s"] == 30.0
    assert config["monitoring"]["alert_thresholds"] == {"error_rate": 0.01}


@pytest.mark.usefixtures("pushed")
def test_the_verbs_end_to_end(cli: Any, cli_json: Any, tmp_path: Path) -> None:
    json_file = tmp_path / "deploy.json"
    json_file.write_text(json.dumps({"scaling": {"min_replicas": 1, "max_replicas": 4}}))
    shown = cli("create", "digits@0.1.0", "--env", "staging", "--config", str(json_file))
    assert "digits@0.1.0 in staging: pending" in shown.stdout
    scaled = cli_json("scale", "digits", "3", "--reason", "load")
    assert (scaled["status"], scaled["replicas"]) == ("scaled", 3)
    status = cli_json("status", "digits", "--env", "staging")
    assert status["health"]["healthy"] is True
    assert "digits@0.1.0 in staging: scaled" in cli("status", "digits").stdout
    listed = cli_json("list")
    assert [item["environment"] for item in listed] == ["staging"]
    assert "staging" in cli("list", "digits").stdout
    stopped = cli_json("stop", "digits", "--reason", "done")
    assert stopped["status"] == "stopped"
    assert cli_json("list") == []
    assert len(cli_json("list", "--all")) == 1
    history = cli_json("history", "digits")
    assert [event["action"] for event in history] == ["deploy", "scale", "undeploy"]
    assert "undeploy" in cli("history", "digits").stdout


@pytest.mark.usefixtures("pushed")
def test_errors_map_to_exit_codes(fail: Any, tmp_path: Path) -> None:
    assert "batch_size" in fail("create", "digits@0.1.0", "--batch-size", "0")
    assert "nobody" in fail("create", "nobody@1.0.0", code=ExitCode.NOT_FOUND)
    assert "digits" in fail("status", "digits", code=ExitCode.NOT_FOUND)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    assert "mapping" in fail("create", "digits@0.2.0", "--env", "staging", "--config", str(bad))
    with weightbase.open() as wb:
        wb.deployments.deploy("digits@0.1.0")
    assert "between 1 and 1" in fail("scale", "digits", "5")  # the default range
    with weightbase.open() as wb:
        wb.approvals.set_policy(
            "digits", approvers=["ana"], required_approvals=1, require_approval_for_production=True
        )
    message = fail("create", "digits@0.1.0", "--env", "production", code=ExitCode.PERMISSION_DENIED)
    assert "needs an approved request" in message
