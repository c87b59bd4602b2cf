"""``wb.deployments``: deploy, scale, undeploy, status, health, history and list.

Every test runs embedded and through a live server (``remote_or_embedded``), on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import remote_variants

from weightbase.errors import NotFound, ValidationError
from weightbase.serving import Deployment, DeploymentConfig
from weightbase.workspace import Workspace

#: Seed 000's ``deployModel`` configuration, as it writes it.
SEED_CONFIG = {
    "batchSize": 32,
    "maxConcurrency": 100,
    "timeout": 5000,
    "scaling": {"minReplicas": 2, "maxReplicas": 10, "targetCPU": 70, "targetMemory": 80},
    "resources": {"cpu": "2000m", "memory": "4Gi", "gpu": "1"},
    "monitoring": {
        "metricsInterval": 30000,
        "alertThresholds": {"p99_latency_ms": 250, "error_rate": 0.01},
        "logLevel": "info",
    },
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def wb(remote_or_embedded: Workspace) -> Workspace:
    """A workspace with ``org/digits`` at 0.1.0 and 0.2.0 (alias ``candidate`` on 0.2.0)."""
    rng = np.random.default_rng(0)
    for _ in range(2):
        weights = {"w": rng.standard_normal((4, 4)).astype(np.float32)}
        remote_or_embedded.models.push("org/digits", weights)
    remote_or_embedded.models.set_alias("org/digits", "candidate", "0.2.0")
    return remote_or_embedded


def test_deploy_records_the_seed_configuration_pending(wb: Workspace) -> None:
    made = wb.deployments.deploy(
        "org/digits@0.1.0", environment="staging", config=SEED_CONFIG, reason="first"
    )
    assert isinstance(made, Deployment)
    assert (made.model, made.version, made.environment) == ("org/digits", "0.1.0", "staging")
    # no inference server has reported it yet: the service records intent
    assert made.status == "pending"
    assert made.replicas == 2
    config = made.config
    assert (config.environment, config.batch_size, config.max_concurrency) == ("staging", 32, 100)
    assert config.timeout_s == 5.0
    assert config.max_wait_ms == 5.0
    assert config.scaling.to_dict() == {
        "min_replicas": 2,
        "max_replicas": 10,
        "target_cpu": 70,
        "target_memory": 80,
    }
    assert config.resources.to_dict() == {"cpu": "2000m", "memory": "4Gi", "gpu": 1}
    assert config.monitoring.metrics_interval_s == 30.0
    assert config.monitoring.alert_thresholds == {"p99_latency_ms": 250.0, "error_rate": 0.01}
    assert wb.deployments.status("org/digits") == made
    assert wb.deployments.status("org/digits", environment="staging") == made
    assert Deployment.from_dict(made.to_dict()) == made


def test_deploy_by_alias_resolves_the_version(wb: Workspace) -> None:
    made = wb.deployments.deploy("org/digits@candidate")
    assert (made.version, made.environment) == ("0.2.0", "development")
    assert made.config == DeploymentConfig()


def test_deploying_again_to_an_environment_replaces_its_version(wb: Workspace) -> None:
    first = wb.deployments.deploy("org/digits@0.1.0", environment="staging")
    second = wb.deployments.deploy(
        "org/digits@0.2.0", environment="staging", config={"batch_size": 8}, reason="roll"
    )
    assert second.id == first.id
    assert (second.version, second.config.batch_size) == ("0.2.0", 8)
    other = wb.deployments.deploy("org/digits@0.1.0", environment="development")
    assert other.id != first.id
    listed = wb.deployments.list(model="org/digits")
    assert sorted(d.environment for d in listed) == ["development", "staging"]
    assert [d.environment for d in wb.deployments.list(environment="staging")] == ["staging"]
    with pytest.raises(ValidationError, match="development, staging"):
        wb.deployments.status("org/digits")  # two environments: name one


def test_scale_within_the_configured_range(wb: Workspace) -> None:
    wb.deployments.deploy("org/digits@0.1.0", config=SEED_CONFIG)
    scaled = wb.deployments.scale("org/digits", 5, reason="traffic")
    assert (scaled.status, scaled.replicas) == ("scaled", 5)
    with pytest.raises(ValidationError, match="between 2 and 10") as info:
        wb.deployments.scale("org/digits", 11)
    assert info.value.context["field"] == "replicas"
    widened = wb.deployments.scale("org/digits", 12, max_replicas=12)
    assert (widened.replicas, widened.config.scaling.max_replicas) == (12, 12)
    assert wb.deployments.status("org/digits").replicas == 12


def test_undeploy_stops_and_frees_the_environment(wb: Workspace) -> None:
    first = wb.deployments.deploy("org/digits@0.1.0", environment="staging")
    stopped = wb.deployments.undeploy("org/digits", environment="staging", reason="done")
    assert (stopped.id, stopped.status, stopped.replicas) == (first.id, "stopped", 0)
    assert wb.deployments.status("org/digits").status == "stopped"
    assert wb.deployments.list() == []
    assert [d.id for d in wb.deployments.list(include_stopped=True)] == [first.id]
    with pytest.raises(NotFound):
        wb.deployments.undeploy("org/digits", environment="staging")
    with pytest.raises(NotFound):
        wb.deployments.scale("org/digits", 1)
    again = wb.deployments.deploy("org/digits@0.2.0", environment="staging")
    assert again.id != first.id
    assert again.status == "pending"


def test_history_records_every_change_oldest_first(wb: Workspace) -> None:
    made = wb.deployments.deploy("org/digits@0.1.0", reason="launch")
    wb.deployments.set_status("org/digits", "running", reason="server up")
    wb.deployments.scale("org/digits", 1)
    wb.deployments.deploy("org/digits@0.2.0", reason="upgrade")
    wb.deployments.undeploy("org/digits", reason="retire")
    events = wb.deployments.history("org/digits")
    assert [(e.action, e.status, e.version) for e in events] == [
        ("deploy", "pending", "0.1.0"),
        ("status", "running", "0.1.0"),
        ("scale", "scaled", "0.1.0"),
        ("deploy", "pending", "0.2.0"),
        ("undeploy", "stopped", "0.2.0"),
    ]
    assert {e.deployment_id for e in events} == {made.id}
    assert [e.reason for e in events] == ["launch", "server up", None, "upgrade", "retire"]
    assert events[3].details["previous_version"] == "0.1.0"
    assert all(e.by for e in events)
    assert wb.deployments.history("org/digits", environment="production") == []


def test_health_follows_the_recorded_status(wb: Workspace) -> None:
    wb.deployments.deploy("org/digits@0.1.0")
    pending = wb.deployments.health("org/digits")
    assert (pending.healthy, pending.status) == (False, "pending")
    assert "no inference server" in pending.detail
    wb.deployments.set_status("org/digits", "running")
    running = wb.deployments.health("org/digits")
    assert running.healthy
    assert running.replicas == 1
    wb.deployments.set_status("org/digits", "failed", reason="out of memory")
    failed = wb.deployments.health("org/digits")
    assert not failed.healthy
    assert "out of memory" in failed.detail
    with pytest.raises(ValidationError, match="status"):
        wb.deployments.set_status("org/digits", "stopped")


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batchSize": "many"}, "batch_size"),
        ({"max_concurrency": -1}, "max_concurrency"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"engine": "kubernetes"}, "engine"),
        ({"task": "vision"}, "task"),
        ({"scaling": {"minReplicas": 3, "maxReplicas": 2}}, "scaling.max_replicas"),
        ({"scaling": {"targetCPU": 120}}, "scaling.target_cpu"),
        ({"resources": {"memory": "lots"}}, "resources.memory"),
        ({"resources": {"gpu": -1}}, "resources.gpu"),
        ({"monitoring": {"logLevel": "loud"}}, "monitoring.log_level"),
        ({"monitoring": {"alertThresholds": {"error_rate": 5}}}, "error_rate"),
        ({"replicas": 3}, "config.replicas"),
    ],
)
def test_bad_configurations_are_refused_naming_the_field(
    wb: Workspace, config: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        wb.deployments.deploy("org/digits@0.1.0", config=config)
    assert field in str(info.value)
    assert wb.deployments.list(include_stopped=True) == []


def test_bad_references_are_typed_errors(wb: Workspace) -> None:
    with pytest.raises(NotFound):
        wb.deployments.deploy("org/digits@9.9.9")
    with pytest.raises(NotFound):
        wb.deployments.deploy("nobody@1.0.0")
    with pytest.raises(ValidationError, match="environment"):
        wb.deployments.deploy("org/digits@0.1.0", environment="moon")
    with pytest.raises(ValidationError, match="environment"):
        wb.deployments.deploy(
            "org/digits@0.1.0", environment="staging", config={"environment": "production"}
        )
    with pytest.raises(NotFound, match="org/digits"):
        wb.deployments.status("org/digits")
    with pytest.raises(NotFound):
        wb.deployments.status("nobody")


def test_one_deployment_per_model_and_environment(wb: Workspace) -> None:
    for version in ("0.1.0", "0.2.0", "0.1.0"):
        wb.deployments.deploy(f"org/digits@{version}", environment="production")
    (only,) = wb.deployments.list(environment="production")
    assert only.version == "0.1.0"
    assert len(wb.deployments.history("org/digits", environment="production")) == 3


def test_a_deleted_models_deployments_are_gone_from_listings(wb: Workspace) -> None:
    wb.deployments.deploy("org/digits@0.1.0", environment="staging")
    wb.models.delete("org/digits", force=True)
    assert wb.deployments.list(include_stopped=True) == []
    with pytest.raises(NotFound):
        wb.deployments.status("org/digits")


@pytest.mark.embedded_only
def test_concurrent_deploys_to_one_environment_make_one_deployment(wb: Workspace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    versions = ["0.1.0", "0.2.0"] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(
            pool.map(
                lambda v: wb.deployments.deploy(f"org/digits@{v}", environment="staging"),
                versions,
            )
        )
    assert len({deployment.id for deployment in made}) == 1
    assert len(wb.deployments.list(include_stopped=True)) == 1
    assert len(wb.deployments.history("org/digits")) == len(versions)


@pytest.mark.parametrize("name", ["", "../etc", "a b", "org//x", "x" * 300, "-x"])
def test_a_bad_model_name_is_a_validation_error(wb: Workspace, name: str) -> None:
    for call in (
        lambda: wb.deployments.status(name),
        lambda: wb.deployments.scale(name, 1),
        lambda: wb.deployments.undeploy(name),
        lambda: wb.deployments.history(name),
        lambda: wb.deployments.health(name),
        lambda: wb.deployments.deploy(f"{name}@0.1.0"),
    ):
        with pytest.raises(ValidationError):
            call()


@pytest.mark.parametrize("config", [[1, 2], "batch_size=3", 7])
def test_a_config_that_is_not_a_mapping_is_refused(wb: Workspace, config: object) -> None:
    with pytest.raises(ValidationError, match="config"):
        wb.deployments.deploy("org/digits@0.1.0", config=config)  # type: ignore[arg-type]
