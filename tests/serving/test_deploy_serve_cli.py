"""``weightbase deploy serve`` runs a recorded deployment with its configuration and engine;
``weightbase deploy metrics`` shows what its servers recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from tests.remote_support import serve_in_thread  # noqa: E402
from tests.serving.test_server_models import push_models  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import weightbase  # noqa: E402
from weightbase.cli import app  # noqa: E402
from weightbase.serving.runnable import clear_runnables  # noqa: E402

CONFIG = {
    "batchSize": 4,
    "maxConcurrency": 6,
    "timeout": 9000,
    "monitoring": {"metricsInterval": 60000, "logLevel": "warning"},
    "scaling": {"minReplicas": 1, "maxReplicas": 3, "targetCPU": 50},
    "resources": {"cpu": "500m", "memory": "1Gi", "gpu": "0"},
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    with weightbase.open(home) as wb:
        push_models(wb, tmp_path)
        wb.deployments.deploy("encoder@latest", environment="staging", config=CONFIG)
    monkeypatch.setenv("WEIGHTBASE_HOME", str(home))
    monkeypatch.delenv("WEIGHTBASE_URL", raising=False)
    clear_runnables()
    return home


def test_a_deployment_is_served_with_its_configuration_and_reported(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run(served: Any, *, host: str, port: int, log_level: str) -> None:
        seen.update(options=served.state.engine.options, log_level=log_level)
        with serve_in_thread(served) as url, httpx.Client(base_url=url) as client:
            with weightbase.open(home) as wb:
                seen["status"] = wb.deployments.status("encoder", environment="staging").status
            body = {"model": "encoder", "input": ["hello world"], "encoding_format": "float"}
            for _ in range(3):
                assert client.post("/v1/embeddings", json=body).status_code == 200

    monkeypatch.setattr(uvicorn, "run", run)
    result = CliRunner().invoke(app, ["deploy", "serve", "encoder", "--env", "staging"])
    assert result.exit_code == 0, result.output
    options = seen["options"]
    assert (options.batch_size, options.max_concurrency, options.timeout_s) == (4, 6, 9.0)
    assert (options.metrics_interval_s, options.environment) == (60.0, "staging")
    assert seen["log_level"] == "warning"
    assert seen["status"] == "running"
    with weightbase.open(home) as wb:
        assert wb.deployments.status("encoder", environment="staging").status == "pending"
    # the window written as the server stopped
    shown = CliRunner().invoke(app, ["deploy", "metrics", "encoder", "--env", "staging"])
    assert shown.exit_code == 0, shown.output
    assert "staging" in shown.output
    assert "2/3" in shown.output  # cache hits of lookups
    listed = CliRunner().invoke(app, ["deploy", "metrics", "encoder", "--json"])
    [window] = json.loads(listed.output)
    assert (window["requests"], window["cache_hits"], window["environment"]) == (3, 2, "staging")
    clear_runnables()


def test_a_ray_deployment_runs_as_ray_serve_replicas_of_its_scaling(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from weightbase.serving.ray_engine import deployment_options

    # the module, not the command of the same name that weightbase.cli exports
    serve_cli = importlib.import_module("weightbase.cli.serve")

    with weightbase.open(home) as wb:
        deployed = wb.deployments.deploy(
            "encoder@latest", environment="development", config={**CONFIG, "engine": "ray"}
        )
    seen: dict[str, Any] = {}
    monkeypatch.setattr(serve_cli, "_serve_with_ray", lambda *a, **k: seen.update(a=a, k=k))
    result = CliRunner().invoke(app, ["deploy", "serve", "encoder", "--env", "development"])
    assert result.exit_code == 0, result.output
    models, options, host, port, _, low, high = seen["a"]
    assert models == [deployed.ref]
    assert (options.environment, low, high, host, port) == ("development", 1, 3, "127.0.0.1", 8000)
    ray_options = seen["k"]["ray_options"]
    assert ray_options == deployment_options(deployed.config)
    assert ray_options["autoscaling_config"]["max_replicas"] == 3
    assert ray_options["ray_actor_options"]["num_cpus"] == 0.5


def test_metrics_of_a_model_never_served_say_so(home: Path) -> None:
    result = CliRunner().invoke(app, ["deploy", "metrics", "writer"])
    assert result.exit_code == 0, result.output
    assert "no inference metrics" in result.output
    missing = CliRunner().invoke(app, ["deploy", "serve", "writer", "--env", "staging"])
    assert missing.exit_code != 0
    assert "writer" in missing.output
