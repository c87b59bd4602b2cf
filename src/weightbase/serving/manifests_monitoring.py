"""The prometheus-operator's objects for a deployment: a ServiceMonitor and a PrometheusRule.

The rules come from ``monitoring.alert_thresholds``; the metrics are the inference
server's request histogram (``weightbase_serve_request_seconds``, by model, endpoint and
status) and the kubelet's container memory and CPU.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from weightbase.serving.records import DeploymentConfig, Monitoring

__all__ = ["ALERT_THRESHOLDS", "memory_bytes", "prometheus_rule", "service_monitor"]

#: The thresholds that become alert rules; others (``accuracy``…) are for the monitoring
#: service, which reads recorded metrics, not Prometheus.
ALERT_THRESHOLDS = {
    "p99_latency_ms": "p99 request latency above this many milliseconds",
    "error_rate": "share of requests answered 5xx above this fraction (0 to 1)",
    "memory_fraction": "a replica's working set above this fraction of its memory limit",
    "cpu_fraction": "a replica's CPU use above this fraction of its CPU request",
}
# How long a condition holds before it alerts, and the window rates are taken over.
_FOR = "5m"
_WINDOW = "5m"
_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)([A-Za-z]*)\Z")


def memory_bytes(quantity: str) -> int:
    """``"4Gi"`` → ``4294967296``: a Kubernetes memory quantity in bytes."""
    match = _QUANTITY.match(quantity)
    if not match or match.group(2) not in _UNITS:
        raise ValidationError(f"not a memory quantity: {quantity!r}", field="resources.memory")
    return math.ceil(float(match.group(1)) * _UNITS[match.group(2)])


def service_monitor(
    metadata: dict[str, Any], selector: dict[str, str], monitoring: Monitoring
) -> dict[str, Any]:
    """Scrape ``/metrics`` of every replica behind the Service, every ``metrics_interval_s``."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": dict(selector)},
            "namespaceSelector": {"matchNames": [metadata["namespace"]]},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": _duration(monitoring.metrics_interval_s),
                }
            ],
        },
    }


def _duration(seconds: float) -> str:
    """A Prometheus duration: ``30s``, or ``500ms`` below a second."""
    if seconds >= 1:
        return f"{math.ceil(seconds)}s"
    return f"{max(1, math.ceil(seconds * 1000))}ms"


def prometheus_rule(
    metadata: dict[str, Any], name: str, container: str, config: DeploymentConfig
) -> dict[str, Any] | None:
    """Alert rules for the thresholds of :data:`ALERT_THRESHOLDS` that ``config`` sets;
    None where it sets none of them."""
    thresholds = config.monitoring.alert_thresholds
    namespace = metadata["namespace"]
    service = f'namespace="{namespace}", service="{name}"'
    pods = f'namespace="{namespace}", pod=~"{name}-.*", container="{container}"'
    rules: list[dict[str, Any]] = []
    if "p99_latency_ms" in thresholds:
        limit_ms = thresholds["p99_latency_ms"]
        rules.append(
            _rule(
                name,
                "HighP99Latency",
                "histogram_quantile(0.99, sum by (le) (rate("
                f"weightbase_serve_request_seconds_bucket{{{service}}}[{_WINDOW}]))) "
                f"> {_number(limit_ms / 1000)}",
                f"p99 latency of {name} is above {_number(limit_ms)} ms",
            )
        )
    if "error_rate" in thresholds:
        # Every answered request is one observation of the latency histogram.
        requests = "weightbase_serve_request_seconds_count"
        total = f"sum(rate({requests}{{{service}}}[{_WINDOW}]))"
        errors = f'sum(rate({requests}{{{service}, status=~"5.."}}[{_WINDOW}]))'
        rules.append(
            _rule(
                name,
                "HighErrorRate",
                f"{errors} / {total} > {_number(thresholds['error_rate'])}",
                f"more than {_number(thresholds['error_rate'] * 100)}% of requests to "
                f"{name} fail with 5xx",
            )
        )
    if "memory_fraction" in thresholds:
        # The limit is known here, so the rule needs no kube-state-metrics.
        limit = memory_bytes(config.resources.memory)
        rules.append(
            _rule(
                name,
                "HighMemory",
                f"max(container_memory_working_set_bytes{{{pods}}}) / {limit} "
                f"> {_number(thresholds['memory_fraction'])}",
                f"a replica of {name} uses more than "
                f"{_number(thresholds['memory_fraction'] * 100)}% of its "
                f"{config.resources.memory} memory limit",
            )
        )
    if "cpu_fraction" in thresholds:
        cpu = config.resources.cpu
        cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
        rules.append(
            _rule(
                name,
                "HighCPU",
                "max(rate(container_cpu_usage_seconds_total"
                f"{{{pods}}}[{_WINDOW}])) / {_number(cores)} "
                f"> {_number(thresholds['cpu_fraction'])}",
                f"a replica of {name} uses more than "
                f"{_number(thresholds['cpu_fraction'] * 100)}% of its {cpu} CPU request",
            )
        )
    if not rules:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": [{"name": f"{name}.rules", "rules": rules}]},
    }


def _rule(name: str, alert: str, expr: str, summary: str) -> dict[str, Any]:
    return {
        "alert": f"Weightbase{alert}",
        "expr": expr,
        "for": _FOR,
        "labels": {"severity": "warning", "deployment": name},
        "annotations": {"summary": summary},
    }


def _number(value: float) -> str:
    """``0.25`` → ``0.25``, ``250.0`` → ``250``: as PromQL and people write numbers."""
    return f"{value:g}" if value != int(value) else str(int(value))
