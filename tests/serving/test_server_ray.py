"""``weightbase serve --engine ray``: the same server as Ray Serve replicas on a local Ray,
answering real requests; a deployment's replicas, limit and resources as Ray's options."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from tests.serving.test_server_models import push_models  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import weightbase  # noqa: E402
from weightbase.cli import app  # noqa: E402
from weightbase.cli.exit_codes import ExitCode  # noqa: E402
from weightbase.cli.serve import WorkspaceAddress  # noqa: E402
from weightbase.errors import MissingExtraError, ValidationError  # noqa: E402
from weightbase.serving import ray_engine  # noqa: E402
from weightbase.serving.ray_engine import (  # noqa: E402
    APP_NAME,
    deployment_options,
    memory_bytes,
    ray_deployment_options,
    ray_server,
)
from weightbase.serving.records import DeploymentConfig, Resources, Scaling  # noqa: E402
from weightbase.serving.runnable import clear_runnables  # noqa: E402
from weightbase.serving.server_options import ServeOptions  # noqa: E402

REFS = ["encoder@latest", "slow@latest"]


def test_a_fixed_count_is_num_replicas_and_resources_become_actor_options() -> None:
    config = DeploymentConfig(
        max_concurrency=8,
        scaling={"min_replicas": 3, "max_replicas": 3},
        resources={"cpu": "500m", "memory": "512Mi", "gpu": 1},
    )
    assert deployment_options(config) == {
        "max_ongoing_requests": 8,
        "num_replicas": 3,
        "ray_actor_options": {"num_cpus": 0.5, "num_gpus": 1, "memory": 512 * 2**20},
    }


def test_a_range_autoscales_on_requests_in_flight() -> None:
    scaling = Scaling(min_replicas=1, max_replicas=4, target_cpu=50)
    assert ray_deployment_options(scaling, 10) == {
        "max_ongoing_requests": 10,
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 4,
            "target_ongoing_requests": 5.0,
        },
    }
    to_zero = Scaling(min_replicas=0, max_replicas=2, target_cpu=None)  # 70% by default
    options = ray_deployment_options(to_zero, 1, Resources(cpu="2", memory="0"))
    assert options == {
        "max_ongoing_requests": 1,
        "autoscaling_config": {
            "min_replicas": 0,
            "max_replicas": 2,
            "target_ongoing_requests": 1.0,
        },
        "ray_actor_options": {"num_cpus": 2.0, "num_gpus": 0},
    }


def test_memory_quantities_are_bytes() -> None:
    assert memory_bytes("4Gi") == 4 * 2**30
    assert memory_bytes("1.5G") == 1_500_000_000
    assert memory_bytes("4k") == 4000
    assert memory_bytes("512") == 512
    with pytest.raises(ValidationError, match="memory quantity"):
        memory_bytes("lots")


def test_a_workspace_address_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEIGHTBASE_CATALOG_URL", raising=False)
    monkeypatch.delenv("WEIGHTBASE_STORE_URL", raising=False)
    address = WorkspaceAddress.from_env("home")
    assert address.home == str(tmp_path / "home")
    assert address.store_url == str(tmp_path / "home" / "store")
    monkeypatch.setenv("WEIGHTBASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WEIGHTBASE_TOKEN", "secret")
    remote = WorkspaceAddress.from_env()
    assert (remote.url, remote.token, remote.home) == ("http://127.0.0.1:9", "secret", None)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    with weightbase.open(home) as wb:
        push_models(wb, tmp_path)
    monkeypatch.setenv("WEIGHTBASE_HOME", str(home))
    monkeypatch.delenv("WEIGHTBASE_URL", raising=False)
    return home


def test_the_cli_serves_with_ray_until_interrupted(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray.serve")
    seen: dict[str, Any] = {}

    def fake_ray_server(
        address: Any, refs: Any, options: Any, ray_options: Any, **rest: Any
    ) -> Any:
        seen.update(address=address, refs=refs, options=options, ray=ray_options, **rest)

        class Running:
            def __enter__(self) -> str:
                return "http://127.0.0.1:9002"

            def __exit__(self, *exc: object) -> None:
                seen["stopped"] = True

        return Running()

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ray_engine, "ray_server", fake_ray_server)
    monkeypatch.setattr("time.sleep", interrupt)
    args = ["serve", "encoder@latest", "--engine", "ray", "--min-replicas", "2"]
    args += ["--max-replicas", "4", "--max-concurrency", "10", "--port", "9002"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ready on http://127.0.0.1:9002 (Ray Serve, 2-4 replicas)" in result.output
    assert seen["stopped"]
    assert seen["address"] == WorkspaceAddress.from_env()
    assert (seen["refs"], seen["port"], seen["log_level"]) == (["encoder@latest"], 9002, "info")
    assert seen["ray"] == {
        "max_ongoing_requests": 10,
        "autoscaling_config": {
            "min_replicas": 2,
            "max_replicas": 4,
            "target_ongoing_requests": 7.0,
        },
        "ray_actor_options": {"num_cpus": 1.0, "num_gpus": 0},
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replicas", "2"], "--replicas needs --engine ray"),
        (["--engine", "ray", "--replicas", "2", "--max-replicas", "3"], "not both"),
        (["--engine", "ray", "--min-replicas", "3", "--max-replicas", "2"], "below"),
        (["--engine", "spark"], "--engine must be one of local, ray"),
    ],
)
def test_bad_replica_options_are_refused_before_serving(
    home: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setattr(ray_engine, "ray_server", lambda *a, **k: pytest.fail("Ray started"))
    result = CliRunner().invoke(app, ["serve", "encoder@latest", *args])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.output


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray.serve", None)  # import ray.serve raises ImportError
    with pytest.raises(MissingExtraError, match=r"weightbase\[ray\]") as raised:
        ray_engine.require_ray_extra()
    assert raised.value.extra == "ray"  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def ray_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One local Ray (2 CPUs) serving the tiny models from 1 to 2 replicas of half a CPU."""
    pytest.importorskip("ray.serve")
    tmp = tmp_path_factory.mktemp("ray")
    clear_runnables()
    with weightbase.open(tmp / "home") as wb:
        push_models(wb, tmp)
    ray_options = ray_deployment_options(
        Scaling(min_replicas=1, max_replicas=2), 4, Resources(cpu="500m", memory="0")
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)  # a new local Ray, never a running one
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        address = WorkspaceAddress.from_env(tmp / "home")
        options = ServeOptions(max_concurrency=4)
        with ray_server(
            address, REFS, options, ray_options, port=_free_port(), num_cpus=2, log_level="warning"
        ) as url:
            yield url
    clear_runnables()


@pytest.fixture
def client(ray_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ray_url, timeout=60) as client:
        yield client


@pytest.mark.slow
def test_ray_answers_oip_infer(client: httpx.Client) -> None:
    request = {
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[0, 1], [0, 2.5]]}]
    }
    response = client.post("/v2/models/slow/infer", json=request)
    assert response.status_code == 200, response.text
    [output] = response.json()["outputs"]
    assert (output["shape"], output["data"]) == ([2], [1.0, 2.5])


@pytest.mark.slow
def test_ray_answers_embeddings_to_the_openai_client(ray_url: str) -> None:
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=f"{ray_url}/v1", api_key="unused", timeout=60) as api:
        response = api.embeddings.create(model="encoder", input=["hello world", "the cat"])
    assert [item.index for item in response.data] == [0, 1]
    assert len(response.data[0].embedding) == 32


@pytest.mark.slow
def test_ray_is_ready_and_answers_404_and_422(client: httpx.Client) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert sorted(ready.json()["models"]) == ["encoder", "slow"]
    unknown = client.post("/v2/models/nope/infer", json={"inputs": []})
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["error"]
    bad = client.post("/v2/models/encoder/infer", json={})
    assert bad.status_code == 422
    assert "'inputs' is required" in bad.json()["error"]


@pytest.mark.slow
def test_ray_serve_runs_the_mapped_replicas_and_limit(ray_url: str) -> None:
    from ray import serve
    from ray.serve.context import _get_global_client

    status = serve.status().applications[APP_NAME]
    assert status.status == "RUNNING"
    assert status.deployments[APP_NAME].replica_states == {"RUNNING": 1}
    details = _get_global_client().get_serve_details()
    config = details["applications"][APP_NAME]["deployments"][APP_NAME]["deployment_config"]
    assert config["max_ongoing_requests"] == 4
    autoscaling = config["autoscaling_config"]
    assert (autoscaling["min_replicas"], autoscaling["max_replicas"]) == (1, 2)
    assert autoscaling["target_ongoing_requests"] == pytest.approx(2.8)
    assert config["ray_actor_options"]["num_cpus"] == 0.5
