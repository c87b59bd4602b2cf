"""Kubernetes manifests for a deployment: what ``weightbase deploy manifests`` writes.

A pure function of the deployment record (or a model, a version and a configuration): a
Deployment, a Service, a HorizontalPodAutoscaler, a PodDisruptionBudget, and the
prometheus-operator's ServiceMonitor and PrometheusRule (:mod:`.manifests_monitoring`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from weightbase.errors import ValidationError
from weightbase.names import check_entity_name
from weightbase.serving.manifests_monitoring import prometheus_rule, service_monitor

if TYPE_CHECKING:
    from weightbase.serving.records import Deployment, DeploymentConfig

__all__ = [
    "CONTAINER_NAME",
    "KINDS",
    "PORT",
    "RUN_AS_USER",
    "ManifestOptions",
    "manifest_name",
    "render_config_manifests",
    "render_manifests",
]

#: The kinds written, in the order they are applied.
KINDS = (
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "ServiceMonitor",
    "PrometheusRule",
)
#: The port ``weightbase serve`` listens on in the image (the Dockerfile's EXPOSE).
PORT = 8080
#: The uid of the image's user (the Dockerfile's USER), which runAsUser asks for.
RUN_AS_USER = 10001
CONTAINER_NAME = "serve"

# DNS-1123 labels (Kubernetes object names) and label values; a Service name must also
# start with a letter (DNS-1035), so every name does.
_NAME_LIMIT = 63
_NOT_NAME = re.compile(r"[^a-z0-9]+")
_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?\Z")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]+")
_NAMESPACE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_LABEL_KEY = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?\Z"
)
# What docker accepts as an image reference, loosely: no spaces, no control characters.
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*\Z")


@dataclass(frozen=True, slots=True)
class ManifestOptions:
    """Where and how the manifests run: the image, the namespace, the Secret to read.

    ``secret`` names a Secret in ``namespace`` with the keys ``url`` and ``token``
    (``WEIGHTBASE_URL`` and ``WEIGHTBASE_TOKEN`` of the pods); the manifests only refer to
    it, so no secret value is ever written into one. ``labels`` go on every object.
    """

    image: str
    namespace: str = "default"
    secret: str = "weightbase-credentials"
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.image, str) or not _IMAGE.match(self.image):
            raise ValidationError(
                f"invalid image {self.image!r}: a reference such as registry/weightbase:0.1.0",
                field="image",
            )
        for what, value in (("namespace", self.namespace), ("secret", self.secret)):
            if not isinstance(value, str) or not _NAMESPACE.match(value):
                raise ValidationError(
                    f"invalid {what} {value!r}: lower-case letters, digits and '-', "
                    "starting and ending with a letter or digit, at most 63 characters",
                    field=what,
                )
        for key, value in self.labels.items():
            if not isinstance(key, str) or not _LABEL_KEY.match(key):
                raise ValidationError(f"invalid label key {key!r}", field="labels")
            if not isinstance(value, str) or not _LABEL_VALUE.match(value):
                raise ValidationError(
                    f"invalid value {value!r} of label {key}: at most 63 letters, digits, "
                    "'.', '_' or '-', starting and ending with a letter or digit",
                    field="labels",
                )
        object.__setattr__(self, "labels", dict(self.labels))


def manifest_name(model: str, environment: str) -> str:
    """The objects' name: ``digits-mlp-production`` for ``digits_mlp`` in production.

    A DNS-1123 label that starts with a letter; a name that would pass 63 characters is
    cut and ends with a hash of the whole, so two long names stay apart.
    """
    base = _NOT_NAME.sub("-", f"{model}-{environment}".lower()).strip("-")
    if not base[:1].isalpha():
        base = f"wb-{base}"
    if len(base) <= _NAME_LIMIT:
        return base
    digest = hashlib.sha256(f"{model}\0{environment}".encode()).hexdigest()[:8]
    return f"{base[: _NAME_LIMIT - 9].rstrip('-')}-{digest}"


def render_manifests(
    deployment: Deployment,
    *,
    image: str,
    namespace: str = "default",
    secret: str = "weightbase-credentials",
    labels: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The Kubernetes objects that run ``deployment``, in :data:`KINDS` order."""
    return render_config_manifests(
        deployment.model,
        deployment.version,
        deployment.config.with_environment(deployment.environment),
        image=image,
        namespace=namespace,
        secret=secret,
        labels=labels,
    )


def render_config_manifests(
    model: str,
    version: str,
    config: DeploymentConfig,
    *,
    image: str,
    namespace: str = "default",
    secret: str = "weightbase-credentials",
    labels: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The Kubernetes objects that serve ``model@version`` with ``config``, no record needed.

    Refuses (``ValidationError``) what Kubernetes would: a bad image, namespace or label,
    and ``scaling.min_replicas`` 0, which a HorizontalPodAutoscaler cannot scale down to.
    """
    check_entity_name(model)
    if not isinstance(version, str) or not version or any(c.isspace() for c in version):
        raise ValidationError(f"invalid version {version!r}", field="version")
    options = ManifestOptions(image=image, namespace=namespace, secret=secret, labels=labels or {})
    if config.scaling.min_replicas < 1:
        raise ValidationError(
            "scaling.min_replicas must be at least 1 on Kubernetes: a HorizontalPodAutoscaler "
            "does not scale to zero (undeploy to stop serving)",
            field="scaling.min_replicas",
        )
    name = manifest_name(model, config.environment)
    selector = {"app.kubernetes.io/name": "weightbase-serve", "app.kubernetes.io/instance": name}
    labels_all = {
        **options.labels,
        **selector,
        "app.kubernetes.io/version": _label_value(version),
        "app.kubernetes.io/component": "inference",
        "app.kubernetes.io/part-of": "weightbase",
        "app.kubernetes.io/managed-by": "weightbase",
        "weightbase.dev/model": _label_value(model),
        "weightbase.dev/environment": config.environment,
    }
    # Label values cannot hold '/' or '@': the exact reference goes in an annotation.
    annotations = {"weightbase.dev/ref": f"{model}@{version}"}

    def metadata() -> dict[str, Any]:
        return {
            "name": name,
            "namespace": options.namespace,
            "labels": dict(labels_all),
            "annotations": dict(annotations),
        }

    objects = [
        _deployment(
            metadata(), selector, labels_all, annotations, f"{model}@{version}", config, options
        ),
        _service(metadata(), selector),
    ]
    autoscaler = _autoscaler(metadata(), name, config)
    if autoscaler is not None:
        objects.append(autoscaler)
    objects.append(_disruption_budget(metadata(), selector))
    objects.append(service_monitor(metadata(), selector, config.monitoring))
    rule = prometheus_rule(metadata(), name, CONTAINER_NAME, config)
    if rule is not None:
        objects.append(rule)
    return objects


def _label_value(text: str) -> str:
    """``text`` as a label value: other characters become '-', cut to 63."""
    value = _NOT_LABEL.sub("-", text)[:_NAME_LIMIT].strip("-_.")
    return value if _LABEL_VALUE.match(value) else ""


def _deployment(
    metadata: dict[str, Any],
    selector: dict[str, str],
    labels: dict[str, str],
    annotations: dict[str, str],
    ref: str,
    config: DeploymentConfig,
    options: ManifestOptions,
) -> dict[str, Any]:
    resources = config.resources
    requests: dict[str, Any] = {"cpu": resources.cpu, "memory": resources.memory}
    # Memory is limited at the request, so a replica is killed before it starves its node;
    # CPU is not, since a throttled server only gets slower. GPUs go in limits, as their
    # device plugin requires (requests default to the limit).
    limits: dict[str, Any] = {"memory": resources.memory}
    if resources.gpu:
        limits["nvidia.com/gpu"] = resources.gpu
    probe_port = {"port": "http"}
    container = {
        "name": CONTAINER_NAME,
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        # The image's ENTRYPOINT is `weightbase`; these are its arguments.
        "args": _serve_arguments(ref, config),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [
            _secret_env("WEIGHTBASE_URL", options.secret, "url"),
            _secret_env("WEIGHTBASE_TOKEN", options.secret, "token"),
        ],
        "resources": {"requests": requests, "limits": limits},
        "readinessProbe": {
            "httpGet": {"path": "/readyz", **probe_port},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", **probe_port},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        # A large model loads for a while before /healthz answers: up to 10 minutes.
        "startupProbe": {
            "httpGet": {"path": "/healthz", **probe_port},
            "periodSeconds": 10,
            "failureThreshold": 60,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": config.scaling.min_replicas,
            "selector": {"matchLabels": dict(selector)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "fsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }


def _serve_arguments(ref: str, config: DeploymentConfig) -> list[str]:
    """``weightbase serve``'s arguments: the deployment's batching, limits, log level and
    metrics interval, and its environment, whose deployment each pod reports running."""
    arguments = [
        "serve",
        ref,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--batch-size",
        str(config.batch_size),
        "--max-wait-ms",
        f"{config.max_wait_ms:g}",
        "--max-concurrency",
        str(config.max_concurrency),
        "--timeout",
        f"{config.timeout_s:g}",
        "--log-level",
        config.monitoring.log_level,
        "--metrics-interval",
        f"{config.monitoring.metrics_interval_s:g}",
        "--environment",
        config.environment,
    ]
    if config.monitoring.sample_rate > 0:
        arguments += ["--sample-rate", f"{config.monitoring.sample_rate:g}"]
    if config.resources.gpu:
        arguments += ["--device", "cuda"]
    return arguments


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _service(metadata: dict[str, Any], selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _autoscaler(
    metadata: dict[str, Any], name: str, config: DeploymentConfig
) -> dict[str, Any] | None:
    """The HorizontalPodAutoscaler, or None where ``scaling`` sets no utilisation target
    (Kubernetes would then scale on 80% CPU, which nobody asked for)."""
    scaling = config.scaling
    targets = [("cpu", scaling.target_cpu), ("memory", scaling.target_memory)]
    metrics = [
        {
            "type": "Resource",
            "resource": {
                "name": resource,
                "target": {"type": "Utilization", "averageUtilization": percent},
            },
        }
        for resource, percent in targets
        if percent is not None
    ]
    if not metrics:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
        },
    }


def _disruption_budget(metadata: dict[str, Any], selector: dict[str, str]) -> dict[str, Any]:
    # One replica at a time: a drain never takes a scaled-out deployment down, and a
    # single-replica one can still be drained (minAvailable 1 would block it for ever).
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata,
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(selector)}},
    }
