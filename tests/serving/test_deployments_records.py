"""Deployment records: any valid configuration survives ``to_dict``/``from_dict`` and JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightbase.errors import ValidationError
from weightbase.serving import (
    Deployment,
    DeploymentConfig,
    DeploymentEvent,
    DeploymentHealth,
    Monitoring,
    Resources,
    Scaling,
)
from weightbase.serving.records import ENGINES, ENVIRONMENTS, LOG_LEVELS, TASKS


@st.composite
def configs(draw: st.DrawFn) -> DeploymentConfig:
    low = draw(st.integers(0, 20))
    scaling = Scaling(
        min_replicas=low,
        max_replicas=draw(st.integers(max(low, 1), 50)),
        target_cpu=draw(st.none() | st.integers(1, 100)),
        target_memory=draw(st.none() | st.integers(1, 100)),
    )
    resources = Resources(
        cpu=draw(st.sampled_from(["100m", "2000m", "1", "1.5", "8"])),
        memory=draw(st.sampled_from(["512Mi", "4Gi", "1G", "100M"])),
        gpu=draw(st.integers(0, 8)),
    )
    names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
    monitoring = Monitoring(
        metrics_interval_s=draw(st.floats(0.001, 3600)),
        alert_thresholds=draw(st.dictionaries(names, st.floats(0, 1), max_size=4)),
        log_level=draw(st.sampled_from(LOG_LEVELS)),
        sample_rate=draw(st.floats(0, 1)),
    )
    return DeploymentConfig(
        environment=draw(st.sampled_from(ENVIRONMENTS)),
        batch_size=draw(st.integers(1, 65536)),
        max_wait_ms=draw(st.floats(0, 10_000)),
        max_concurrency=draw(st.integers(1, 100_000)),
        timeout_s=draw(st.floats(0.001, 86_400)),
        scaling=scaling,
        resources=resources,
        monitoring=monitoring,
        engine=draw(st.sampled_from(ENGINES)),
        task=draw(st.none() | st.sampled_from(TASKS)),
    )


@given(configs())
def test_a_configuration_round_trips_through_json(config: DeploymentConfig) -> None:
    assert DeploymentConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.merged({}) == config


@given(configs(), st.integers(1, 100))
def test_merging_changes_only_what_it_names(config: DeploymentConfig, high: int) -> None:
    low = min(config.scaling.min_replicas, high)
    merged = config.merged({"scaling": {"minReplicas": low, "maxReplicas": high}})
    assert (merged.scaling.min_replicas, merged.scaling.max_replicas) == (low, high)
    assert merged.scaling.target_cpu == config.scaling.target_cpu
    assert merged.resources == config.resources
    assert merged.batch_size == config.batch_size


def test_deployment_event_and_health_round_trip() -> None:
    now = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
    deployment = Deployment(
        "d1", "org/m", "1.0.0", "staging", DeploymentConfig(), "running", 1, now, now, "ada"
    )
    assert Deployment.from_dict(json.loads(json.dumps(deployment.to_dict()))) == deployment
    event = DeploymentEvent(1, "d1", "deploy", "pending", "1.0.0", 1, now, "ada", "why", {"a": 1})
    assert DeploymentEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event
    health = DeploymentHealth("d1", "org/m", "1.0.0", "staging", "running", 1, True, "ok")
    assert DeploymentHealth.from_dict(health.to_dict()) == health


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"scaling": [1]}, "scaling"),
        ({"scaling": {"min_replicas": 1.5}}, "scaling.min_replicas"),
        ({"resources": {"cpu": "0"}}, "resources.cpu"),
        ({"resources": {"cpu": True}}, "resources.cpu"),
        ({"monitoring": {"alertThresholds": {"Bad Name": 1}}}, "monitoring.alert_thresholds"),
        ({"monitoring": {"alertThresholds": {"p99_latency_ms": float("nan")}}}, "p99_latency_ms"),
        ({"monitoring": {"metricsInterval": 0}}, "monitoring.metrics_interval_s"),
        ({"monitoring": {"sampleRate": 1.5}}, "monitoring.sample_rate"),
        ({"monitoring": {"sample_rate": -0.1}}, "monitoring.sample_rate"),
        ({"max_wait_ms": -1}, "max_wait_ms"),
        ({"batch_size": True}, "batch_size"),
        ({"batchSize": 2, "batch_size": 3}, "batch_size"),
    ],
)
def test_each_bad_value_names_its_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        DeploymentConfig.from_dict(data)
    assert field in str(info.value)
    assert field in str(info.value.context["field"])
