"""``weightbase deploy manifests``: from a recorded deployment, or from ``--env``/``--config``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import weightbase
from weightbase.cli import app
from weightbase.cli.exit_codes import ExitCode
from weightbase.serving.manifests import KINDS

SEED_CONFIG = {
    "environment": "staging",
    "scaling": {"minReplicas": 2, "maxReplicas": 6, "targetCPU": 65},
    "resources": {"cpu": "500m", "memory": "1Gi", "gpu": 1},
    "monitoring": {"metricsInterval": 10000, "alertThresholds": {"error_rate": 0.05}},
}


@pytest.fixture
def run(weightbase_home: Path) -> Any:
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, ["deploy", "manifests", *args])
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


def documents(text: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text)}


def serve_container(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [container] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def test_a_config_file_needs_no_workspace(run: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(SEED_CONFIG), encoding="utf-8")
    result = run("org/digits@1.2.0", "--config", str(config), "--image", "reg/wb:1")
    docs = documents(result.stdout)
    assert list(docs) == list(KINDS)
    assert docs["Deployment"]["metadata"]["name"] == "org-digits-staging"
    assert docs["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 6
    assert serve_container(docs)["image"] == "reg/wb:1"
    assert serve_container(docs)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert docs["ServiceMonitor"]["spec"]["endpoints"][0]["interval"] == "10s"


def test_env_overrides_the_files_environment_and_json_works(run: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(SEED_CONFIG), encoding="utf-8")
    docs = documents(run("digits@1", "--config", str(config), "--env", "production").stdout)
    assert docs["Deployment"]["metadata"]["name"] == "digits-production"
    assert docs["Deployment"]["metadata"]["labels"]["weightbase.dev/environment"] == "production"


def test_output_writes_one_file_per_kind(run: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(SEED_CONFIG), encoding="utf-8")
    folder = tmp_path / "k8s"
    run("digits@1", "--config", str(config), "--output", str(folder), "--namespace", "ml")
    files = sorted(path.name for path in folder.iterdir())
    assert files == sorted(f"{kind.lower()}.yaml" for kind in KINDS)
    service = yaml.safe_load((folder / "service.yaml").read_text(encoding="utf-8"))
    assert service["metadata"]["namespace"] == "ml"


def test_without_a_record_env_gives_the_default_configuration(run: Any) -> None:
    docs = documents(run("digits@1", "--env", "development").stdout)
    assert docs["Deployment"]["metadata"]["name"] == "digits-development"
    assert docs["Deployment"]["spec"]["replicas"] == 1
    assert serve_container(docs)["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}


def test_the_recorded_deployment_gives_its_configuration(run: Any, weightbase_home: Path) -> None:
    with weightbase.open(weightbase_home) as wb:
        wb.models.push("org/digits", {"w": np.ones((2, 2), dtype=np.float32)})
        wb.deployments.deploy("org/digits@0.1.0", environment="staging", config=SEED_CONFIG)
    docs = documents(run("org/digits", "--label", "team=vision").stdout)
    assert docs["Deployment"]["metadata"]["labels"]["team"] == "vision"
    assert serve_container(docs)["args"][:2] == ["serve", "org/digits@0.1.0"]
    assert docs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 2
    assert docs["Deployment"]["metadata"]["name"] == "org-digits-staging"
    # another version of the recorded configuration
    docs = documents(run("org/digits@0.2.0", "--env", "staging").stdout)
    assert serve_container(docs)["args"][1] == "org/digits@0.2.0"
    assert docs["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 6


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["digits"], ExitCode.NOT_FOUND, "--env"),
        (["digits", "--env", "staging"], ExitCode.USAGE, "NAME@VERSION"),
        (["digits@1", "--env", "prod"], ExitCode.USAGE, "environment"),
        (["digits@1", "--env", "staging", "--label", "team"], ExitCode.USAGE, "KEY=VALUE"),
        (["digits@1", "--env", "staging", "--namespace", "ML"], ExitCode.USAGE, "namespace"),
        (["digits@1", "--config", "/nonexistent/config.yaml"], ExitCode.USAGE, "cannot read"),
    ],
)
def test_bad_input_is_a_one_line_error(
    run: Any, args: list[str], code: ExitCode, message: str
) -> None:
    result = run(*args, code=int(code))
    assert message in result.output
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "mapping"),
        ("scaling: {minReplicas: 3, maxReplicas: 2}", "max_replicas"),
        ("resources: {cpu: lots}", "resources.cpu"),
        ("replicaz: 2", "unknown setting"),
        ("a: [", "not valid YAML"),
    ],
)
def test_a_bad_config_file_is_refused(run: Any, tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(content, encoding="utf-8")
    result = run("digits@1", "--config", str(config), code=int(ExitCode.USAGE))
    assert message in result.output


def test_a_server_gives_the_same_manifests(
    live_server: Any, catalog_url: str, weightbase_home: Path
) -> None:
    local = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        local.models.push("org/digits", {"w": np.ones((2, 2), dtype=np.float32)})
        local.deployments.deploy("org/digits@0.1.0", environment="staging", config=SEED_CONFIG)
        embedded = CliRunner().invoke(
            app, ["deploy", "manifests", "org/digits"], env={"WEIGHTBASE_CATALOG_URL": catalog_url}
        )
        assert embedded.exit_code == 0, embedded.output
        with live_server.serving(local) as remote:
            token = str(remote.connection._client.headers["authorization"])
            env = {"WEIGHTBASE_TOKEN": token.removeprefix("Bearer "), "WEIGHTBASE_URL": ""}
            result = CliRunner().invoke(
                app, ["--url", remote.url, "deploy", "manifests", "org/digits"], env=env
            )
    finally:
        local.close()
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout == embedded.stdout
    assert token.removeprefix("Bearer ") not in result.stdout


def test_a_file_shaped_as_seed_000_deploy_model_works(run: Any, tmp_path: Path) -> None:
    config = tmp_path / "deploy.yaml"
    seed = {
        "environment": "production",
        "config": {"scaling": {"minReplicas": 2, "maxReplicas": 10, "targetCPU": 70}},
        "monitoring": {"metricsInterval": 30000, "alertThresholds": {"p99_latency_ms": 300}},
    }
    config.write_text(yaml.safe_dump(seed), encoding="utf-8")
    docs = documents(run("digits@1", "--config", str(config)).stdout)
    assert docs["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 10
    assert docs["Deployment"]["metadata"]["name"] == "digits-production"
    assert docs["PrometheusRule"]["spec"]["groups"][0]["rules"][0]["expr"].endswith("> 0.3")
