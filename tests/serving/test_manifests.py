"""Kubernetes manifests of a deployment: valid against the Kubernetes schemas, offline.

Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget are checked with
``kubernetes-validate`` (the schemas ship in its wheel); the prometheus-operator's
ServiceMonitor and PrometheusRule are CRDs it does not know, checked against the JSON
schemas below, written from the operator's CRD fields that the manifests use.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from weightbase.errors import ValidationError
from weightbase.serving.manifests import (
    CONTAINER_NAME,
    KINDS,
    PORT,
    RUN_AS_USER,
    manifest_name,
    render_config_manifests,
    render_manifests,
)
from weightbase.serving.manifests_yaml import dump_manifests, write_manifests
from weightbase.serving.records import Deployment, DeploymentConfig

KUBERNETES_VERSION = "1.30.0"
ROOT = Path(__file__).parents[2]
IMAGE = "registry.example/weightbase:0.1.0"
DNS_1123_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?\Z")  # and a DNS-1035 label
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")

SEED_000 = {
    "environment": "production",
    "batchSize": 32,
    "maxConcurrency": 100,
    "timeout": 5000,
    "scaling": {"minReplicas": 2, "maxReplicas": 10, "targetCPU": 70, "targetMemory": 80},
    "resources": {"cpu": "2000m", "memory": "4Gi", "gpu": "1"},
    "monitoring": {
        "metricsInterval": 15000,
        "alertThresholds": {
            "p99_latency_ms": 250,
            "error_rate": 0.01,
            "memory_fraction": 0.9,
            "cpu_fraction": 0.95,
            "accuracy": 0.9,
        },
        "logLevel": "warning",
    },
}

_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": DNS_1123_LABEL.pattern, "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    "additionalProperties": False,
}
_SELECTOR = {
    "type": "object",
    "properties": {"matchLabels": _LABELS},
    "required": ["matchLabels"],
    "additionalProperties": False,
}
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
    r"(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
#: monitoring.coreos.com/v1 ServiceMonitor, the fields the manifests use
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                    "additionalProperties": False,
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
#: monitoring.coreos.com/v1 PrometheusRule, the fields the manifests use
PROMETHEUS_RULE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _DURATION,
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["alert", "expr"],
                                    "properties": {
                                        "alert": {
                                            "type": "string",
                                            "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$",
                                        },
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": _DURATION,
                                        "labels": _LABELS,
                                        "annotations": _LABELS,
                                    },
                                    "additionalProperties": False,
                                },
                            },
                        },
                        "additionalProperties": False,
                    },
                }
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
CRD_SCHEMAS = {"ServiceMonitor": SERVICE_MONITOR_SCHEMA, "PrometheusRule": PROMETHEUS_RULE_SCHEMA}


def validate(obj: dict[str, Any]) -> None:
    """Raise unless ``obj`` is valid for its kind (strict: no unknown fields)."""
    kind = obj["kind"]
    if kind in CRD_SCHEMAS:
        Draft202012Validator(CRD_SCHEMAS[kind]).validate(obj)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    metadata = obj["metadata"]
    assert DNS_1123_LABEL.match(metadata["name"]), metadata["name"]
    assert len(metadata["name"]) <= 63
    for value in metadata.get("labels", {}).values():
        assert len(value) <= 63
        assert LABEL_VALUE.match(value), value


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


def seed_manifests(**options: Any) -> list[dict[str, Any]]:
    config = DeploymentConfig.from_dict(SEED_000)
    return render_config_manifests("org/Digits_MLP", "1.0.0", config, image=IMAGE, **options)


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [serve] = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]["containers"]
    return serve


def test_every_kind_is_written_once_and_validates() -> None:
    objects = seed_manifests(namespace="ml")
    assert [obj["kind"] for obj in objects] == list(KINDS)
    for obj in objects:
        validate(obj)
        assert obj["metadata"]["namespace"] == "ml"


def test_the_validators_catch_what_kubernetes_would_refuse() -> None:
    deployment = by_kind(seed_manifests())["Deployment"]
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    monitor = by_kind(seed_manifests())["ServiceMonitor"]
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    with pytest.raises(Exception, match="30 seconds"):
        validate(monitor)


def test_a_recorded_deployment_renders_its_own_environment_and_version() -> None:
    now = datetime.now(UTC)
    deployment = Deployment(
        id="d1",
        model="digits",
        version="2.1.0",
        environment="staging",
        config=DeploymentConfig.from_dict({**SEED_000, "environment": "staging"}),
        status="running",
        replicas=2,
        created=now,
        updated=now,
    )
    objects = render_manifests(deployment, image=IMAGE)
    for obj in objects:
        validate(obj)
        assert obj["metadata"]["name"] == "digits-staging"
        assert obj["metadata"]["labels"]["weightbase.dev/environment"] == "staging"
        assert obj["metadata"]["annotations"]["weightbase.dev/ref"] == "digits@2.1.0"
    assert container(objects)["args"][:2] == ["serve", "digits@2.1.0"]


def test_the_autoscaler_takes_its_numbers_from_scaling() -> None:
    hpa = by_kind(seed_manifests())["HorizontalPodAutoscaler"]
    spec = hpa["spec"]
    assert spec["minReplicas"] == 2
    assert spec["maxReplicas"] == 10
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "org-digits-mlp-production",
    }
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in spec["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    deployment = by_kind(seed_manifests())["Deployment"]
    assert deployment["spec"]["replicas"] == 2


def test_scaling_without_targets_has_no_autoscaler() -> None:
    config = DeploymentConfig.from_dict(
        {"scaling": {"min_replicas": 3, "max_replicas": 3, "target_cpu": None}}
    )
    objects = render_config_manifests("digits", "1", config, image=IMAGE)
    assert "HorizontalPodAutoscaler" not in by_kind(objects)
    assert by_kind(objects)["Deployment"]["spec"]["replicas"] == 3
    memory_only = DeploymentConfig.from_dict(
        {"scaling": {"max_replicas": 4, "target_cpu": None, "target_memory": 60}}
    )
    hpa = by_kind(render_config_manifests("digits", "1", memory_only, image=IMAGE))[
        "HorizontalPodAutoscaler"
    ]
    validate(hpa)
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["memory"]


def test_resources_are_requests_and_limits_with_gpus_as_nvidia_gpu() -> None:
    resources = container(seed_manifests())["resources"]
    assert resources["requests"] == {"cpu": "2000m", "memory": "4Gi"}
    assert resources["limits"] == {"memory": "4Gi", "nvidia.com/gpu": 1}
    cpu_only = DeploymentConfig.from_dict({"resources": {"cpu": "500m", "memory": "512Mi"}})
    objects = render_config_manifests("digits", "1", cpu_only, image=IMAGE)
    assert container(objects)["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"memory": "512Mi"},
    }


def test_probes_port_and_arguments_match_the_server() -> None:
    serve = container(seed_manifests())
    assert serve["name"] == CONTAINER_NAME
    assert serve["image"] == IMAGE
    assert serve["ports"] == [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    assert serve["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert serve["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert "command" not in serve  # the image's ENTRYPOINT runs
    assert serve["args"] == [
        "serve",
        "org/Digits_MLP@1.0.0",
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--batch-size",
        "32",
        "--max-wait-ms",
        "5",
        "--max-concurrency",
        "100",
        "--timeout",
        "5",
        "--log-level",
        "warning",
        "--metrics-interval",
        "15",
        "--environment",
        "production",
        "--device",
        "cuda",
    ]
    cpu_only = DeploymentConfig.from_dict({"max_wait_ms": 2.5, "timeout_s": 0.25})
    args = container(render_config_manifests("digits", "1", cpu_only, image=IMAGE))["args"]
    assert "--device" not in args
    assert "--sample-rate" not in args  # sampling is off unless the config asks
    assert args[args.index("--max-wait-ms") + 1] == "2.5"
    assert args[args.index("--timeout") + 1] == "0.25"
    sampled = DeploymentConfig.from_dict({"monitoring": {"sampleRate": 0.05}})
    args = container(render_config_manifests("digits", "1", sampled, image=IMAGE))["args"]
    assert args[args.index("--sample-rate") + 1] == "0.05"
    service = by_kind(seed_manifests())["Service"]
    assert service["spec"]["ports"][0]["port"] == PORT
    pod = by_kind(seed_manifests())["Deployment"]["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_credentials_come_from_a_secret_reference_never_a_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEIGHTBASE_URL", "https://weights.internal:8080")
    monkeypatch.setenv("WEIGHTBASE_TOKEN", "wbt_supersecret_value")
    objects = seed_manifests(secret="wb-prod")
    env = {entry["name"]: entry for entry in container(objects)["env"]}
    assert env == {
        "WEIGHTBASE_URL": {
            "name": "WEIGHTBASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "wb-prod", "key": "url"}},
        },
        "WEIGHTBASE_TOKEN": {
            "name": "WEIGHTBASE_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "wb-prod", "key": "token"}},
        },
    }
    text = dump_manifests(objects)
    assert "supersecret" not in text
    assert "weights.internal" not in text
    assert "Secret" not in {obj["kind"] for obj in objects}


def test_the_monitor_scrapes_metrics_at_the_configured_interval() -> None:
    monitor = by_kind(seed_manifests())["ServiceMonitor"]
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    service = by_kind(seed_manifests())["Service"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )


def test_alert_rules_come_from_the_thresholds() -> None:
    rule = by_kind(seed_manifests(namespace="ml"))["PrometheusRule"]
    [group] = rule["spec"]["groups"]
    rules = {r["alert"]: r["expr"] for r in group["rules"]}
    assert set(rules) == {
        "WeightbaseHighP99Latency",
        "WeightbaseHighErrorRate",
        "WeightbaseHighMemory",
        "WeightbaseHighCPU",
    }  # accuracy is no Prometheus metric: the monitoring service watches it
    assert rules["WeightbaseHighP99Latency"].startswith("histogram_quantile(0.99, ")
    assert rules["WeightbaseHighP99Latency"].endswith("> 0.25")
    assert 'service="org-digits-mlp-production"' in rules["WeightbaseHighP99Latency"]
    assert rules["WeightbaseHighErrorRate"].endswith("> 0.01")
    assert 'status=~"5.."' in rules["WeightbaseHighErrorRate"]
    assert f"/ {4 * 2**30} > 0.9" in rules["WeightbaseHighMemory"]
    assert "/ 2 > 0.95" in rules["WeightbaseHighCPU"]
    for expr in rules.values():
        assert expr.count("(") == expr.count(")")
        assert 'namespace="ml"' in expr


def test_alert_rules_read_metrics_the_inference_server_exports() -> None:
    pytest.importorskip("prometheus_client")
    from weightbase.serving.metrics import ServerMetrics

    metrics = ServerMetrics()
    metrics.latency.labels("m", "infer", "200").observe(0.01)
    exported = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    rule = by_kind(seed_manifests())["PrometheusRule"]
    used = {
        name
        for r in rule["spec"]["groups"][0]["rules"]
        for name in re.findall(r"\b(weightbase_[a-z_]+)\{", r["expr"])
    }
    assert used
    assert used <= exported
    assert any(
        "status" in family.samples[0].labels
        for family in metrics.registry.collect()
        if family.samples
    )


def test_no_rule_without_thresholds_prometheus_can_check() -> None:
    config = DeploymentConfig.from_dict({"monitoring": {"alertThresholds": {"accuracy": 0.9}}})
    objects = render_config_manifests("digits", "1", config, image=IMAGE)
    assert "PrometheusRule" not in by_kind(objects)
    assert "ServiceMonitor" in by_kind(objects)


@pytest.mark.parametrize(
    ("model", "environment", "name"),
    [
        ("digits", "production", "digits-production"),
        ("org/Digits_MLP.v2", "staging", "org-digits-mlp-v2-staging"),
        ("7b-chat", "development", "wb-7b-chat-development"),
        ("a" * 255, "production", None),
    ],
)
def test_names_are_dns_1123_labels(model: str, environment: str, name: str | None) -> None:
    got = manifest_name(model, environment)
    assert DNS_1123_LABEL.match(got)
    assert len(got) <= 63
    if name is not None:
        assert got == name


@settings(max_examples=200, deadline=None)
@given(
    model=st.from_regex(
        r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}(/[A-Za-z0-9][A-Za-z0-9._-]{0,120})?", fullmatch=True
    ),
    environment=st.sampled_from(["development", "staging", "production"]),
    version=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,80}", fullmatch=True),
)
def test_any_model_name_gives_valid_objects(model: str, environment: str, version: str) -> None:
    config = DeploymentConfig(environment=environment)
    for obj in render_config_manifests(model, version, config, image=IMAGE):
        metadata = obj["metadata"]
        assert DNS_1123_LABEL.match(metadata["name"])
        assert len(metadata["name"]) <= 63
        for value in metadata["labels"].values():
            assert LABEL_VALUE.match(value), value
            assert len(value) <= 63
        assert metadata["annotations"]["weightbase.dev/ref"] == f"{model}@{version}"


def test_long_names_stay_apart() -> None:
    first = manifest_name("x" * 100 + "a", "production")
    second = manifest_name("x" * 100 + "b", "production")
    assert first != second
    assert len(first) == len(second) == 63


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image": "not an image"}, "image"),
        ({"namespace": "Bad_Namespace"}, "namespace"),
        ({"secret": "-x"}, "secret"),
        ({"labels": {"team": "a/b"}}, "labels"),
        ({"labels": {"bad key!": "x"}}, "labels"),
    ],
)
def test_bad_options_are_refused(change: dict[str, Any], field: str) -> None:
    options: dict[str, Any] = {"image": IMAGE, **change}
    with pytest.raises(ValidationError) as caught:
        render_config_manifests("digits", "1", DeploymentConfig(), **options)
    assert caught.value.context["field"] == field


def test_scaling_to_zero_is_refused() -> None:
    config = DeploymentConfig.from_dict({"scaling": {"min_replicas": 0, "max_replicas": 2}})
    with pytest.raises(ValidationError, match="min_replicas"):
        render_config_manifests("digits", "1", config, image=IMAGE)


def test_bad_model_names_and_versions_are_refused() -> None:
    with pytest.raises(ValidationError):
        render_config_manifests("../x", "1", DeploymentConfig(), image=IMAGE)
    with pytest.raises(ValidationError):
        render_config_manifests("digits", "1 0", DeploymentConfig(), image=IMAGE)


def test_user_labels_go_on_every_object_without_replacing_ours() -> None:
    labels = {"team": "vision", "app.kubernetes.io/name": "mine"}
    for obj in seed_manifests(labels=labels):
        assert obj["metadata"]["labels"]["team"] == "vision"
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "weightbase-serve"


def test_yaml_stream_reads_back_as_the_objects() -> None:
    objects = seed_manifests()
    text = dump_manifests(objects)
    assert text.count("---\n") == len(objects)
    assert list(yaml.safe_load_all(text)) == objects


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_plain_value_reads_back(value: Any) -> None:
    [document] = yaml.safe_load_all(dump_manifests([{"kind": "X", "value": value}]))
    assert document == {"kind": "X", "value": value}


def test_output_folder_holds_one_file_per_kind(tmp_path: Path) -> None:
    objects = seed_manifests()
    paths = write_manifests(objects, tmp_path / "k8s")
    assert sorted(p.name for p in paths) == sorted(f"{k.lower()}.yaml" for k in KINDS)
    for path, obj in zip(paths, objects, strict=True):
        assert yaml.safe_load(path.read_text(encoding="utf-8")) == obj


def _dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_dockerfile_runs_what_the_manifests_expect() -> None:
    import json

    import typer.main

    from weightbase.cli import app

    instructions = _dockerfile()
    known = {
        "FROM",
        "ENV",
        "RUN",
        "WORKDIR",
        "COPY",
        "USER",
        "EXPOSE",
        "HEALTHCHECK",
        "ENTRYPOINT",
        "CMD",
    }
    assert {keyword for keyword, _ in instructions} <= known
    values = {keyword: rest for keyword, rest in instructions}  # the last of each
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert json.loads(values["ENTRYPOINT"]) == ["weightbase"]
    assert json.loads(values["CMD"])[:1] == ["server"]
    assert "server" in typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert values["EXPOSE"] == str(PORT)
    assert values["USER"].split(":")[0] == str(RUN_AS_USER)
    assert f"127.0.0.1:{PORT}/healthz" in values["HEALTHCHECK"]
    runs = [shlex.split(rest) for keyword, rest in instructions if keyword == "RUN"]
    assert any("torch==2.13.0" in run and "--index-url" in run for run in runs)
    assert any(".[server,hf]" in run for run in runs)  # serve builds Hugging Face folders
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    assert "!src/" in ignored


def test_the_arguments_are_options_of_weightbase_serve() -> None:
    import typer.main

    from weightbase.cli import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    flags = {flag for param in commands["serve"].params for flag in param.opts}
    args = container(seed_manifests())["args"]
    assert {arg for arg in args if arg.startswith("--")} <= flags
