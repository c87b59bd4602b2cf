"""Deployment records: a configuration (seed 000's ``deployModel``), a deployment, its history.

A configuration is checked when it is built, so a bad one is refused before anything is
written, with a :class:`~weightbase.errors.ValidationError` that names the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from weightbase.errors import ValidationError

__all__ = [
    "ACTIONS",
    "ENGINES",
    "ENVIRONMENTS",
    "LOG_LEVELS",
    "STATUSES",
    "TASKS",
    "Deployment",
    "DeploymentConfig",
    "DeploymentEvent",
    "DeploymentHealth",
    "Monitoring",
    "Resources",
    "Scaling",
]

ENVIRONMENTS = ("development", "staging", "production")
ENGINES = ("local", "ray")
TASKS = ("embeddings", "text-classification", "token-classification", "text-generation", "predict")
STATUSES = ("pending", "running", "scaled", "stopped", "failed")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: What a history event records: the deployment made or changed, scaled, stopped, or its
#: state set (the inference server reports ``running`` or ``failed``).
ACTIONS = ("deploy", "scale", "undeploy", "status")

# Kubernetes quantities, which the manifests carry as written: "500m", "2", "1.5", "4Gi", "512M".
_CPU = re.compile(r"^(?:\d+m|\d+(?:\.\d+)?)\Z")
_MEMORY = re.compile(r"^\d+(?:\.\d+)?(?:[KMGTPE]i?|k)?\Z")
_THRESHOLD = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")
# Thresholds that are fractions of a whole, so a value above 1 is a mistake (70 for 0.7).
_FRACTIONS = frozenset({"error_rate", "memory_fraction", "cpu_fraction"})

# Seed 000 writes the configuration in camelCase with times in milliseconds; each such
# key maps to ours and a factor that turns its value into our unit.
_CAMEL = {
    "batchSize": ("batch_size", None),
    "maxWaitMs": ("max_wait_ms", None),
    "maxConcurrency": ("max_concurrency", None),
    "timeout": ("timeout_s", 0.001),
    "timeoutMs": ("timeout_s", 0.001),
    "timeoutS": ("timeout_s", None),
    "minReplicas": ("min_replicas", None),
    "maxReplicas": ("max_replicas", None),
    "targetCPU": ("target_cpu", None),
    "targetCpu": ("target_cpu", None),
    "targetMemory": ("target_memory", None),
    "metricsInterval": ("metrics_interval_s", 0.001),
    "metricsIntervalMs": ("metrics_interval_s", 0.001),
    "metricsIntervalS": ("metrics_interval_s", None),
    "alertThresholds": ("alert_thresholds", None),
    "logLevel": ("log_level", None),
    "sampleRate": ("sample_rate", None),
}


def _keys(data: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """``data`` with seed 000's camelCase keys renamed and converted; unknown keys refused."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where} must be a mapping, not {data!r}", field=where)
    out: dict[str, Any] = {}
    for key, value in data.items():
        name, factor = _CAMEL.get(str(key), (str(key), None))
        if name not in allowed:
            raise ValidationError(
                f"unknown setting {where}.{key}; known: {', '.join(allowed)}",
                field=f"{where}.{key}",
            )
        if name in out:
            raise ValidationError(f"{where}.{name} is given twice", field=f"{where}.{name}")
        if factor is not None and value is not None:
            out[name] = _number(value, f"{where}.{key}") * factor
        else:
            out[name] = value
    return out


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValidationError(f"{name} must be a number, not {value!r}", field=name)
    try:
        number = float(value)
    except ValueError:
        raise ValidationError(f"{name} must be a number, not {value!r}", field=name) from None
    if not math.isfinite(number):
        raise ValidationError(f"{name} must be a finite number, not {value!r}", field=name)
    return number


def _integer(value: Any, name: str, *, low: int, high: int | None = None) -> int:
    number = _number(value, name)
    if number != int(number):
        raise ValidationError(f"{name} must be a whole number, not {value!r}", field=name)
    if number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValidationError(f"{name} must be {bounds}, not {value!r}", field=name)
    return int(number)


def _positive(value: Any, name: str) -> float:
    number = _number(value, name)
    if number <= 0:
        raise ValidationError(f"{name} must be greater than 0, not {value!r}", field=name)
    return number


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValidationError(
            f"{name} must be one of {', '.join(choices)}, not {value!r}", field=name
        )
    return str(value)


@dataclass(frozen=True, slots=True)
class Scaling:
    """How many replicas, and the utilisation (percent of the request) that adds one."""

    min_replicas: int = 1
    max_replicas: int = 1
    target_cpu: int | None = 70
    target_memory: int | None = None

    def __post_init__(self) -> None:
        low = _integer(self.min_replicas, "scaling.min_replicas", low=0)
        high = _integer(self.max_replicas, "scaling.max_replicas", low=1)
        if high < low:
            raise ValidationError(
                f"scaling.max_replicas ({high}) is below scaling.min_replicas ({low})",
                field="scaling.max_replicas",
            )
        object.__setattr__(self, "min_replicas", low)
        object.__setattr__(self, "max_replicas", high)
        for name in ("target_cpu", "target_memory"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _integer(value, f"scaling.{name}", low=1, high=100))

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "target_cpu": self.target_cpu,
            "target_memory": self.target_memory,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scaling:
        return cls(**_keys(data, "scaling", _fields(cls)))


@dataclass(frozen=True, slots=True)
class Resources:
    """What one replica asks for: Kubernetes quantities for CPU and memory, whole GPUs."""

    cpu: str = "1"
    memory: str = "2Gi"
    gpu: int = 0

    def __post_init__(self) -> None:
        cpu = str(self.cpu) if isinstance(self.cpu, (int, float, str)) else self.cpu
        if not isinstance(cpu, str) or not _CPU.match(cpu) or _number_of(cpu) <= 0:
            raise ValidationError(
                f"resources.cpu must be a CPU quantity such as 500m or 2, not {self.cpu!r}",
                field="resources.cpu",
            )
        memory = self.memory
        if not isinstance(memory, str) or not _MEMORY.match(memory):
            raise ValidationError(
                f"resources.memory must be a memory quantity such as 512Mi or 4Gi, "
                f"not {self.memory!r}",
                field="resources.memory",
            )
        object.__setattr__(self, "cpu", cpu)
        object.__setattr__(self, "gpu", _integer(self.gpu, "resources.gpu", low=0))

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "memory": self.memory, "gpu": self.gpu}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resources:
        return cls(**_keys(data, "resources", _fields(cls)))


def _number_of(cpu: str) -> float:
    return float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


@dataclass(frozen=True, slots=True)
class Monitoring:
    """How often the server records metrics, the limits that raise an alert, its log level,
    and the share of requests whose inputs and outputs are sampled (0: none)."""

    metrics_interval_s: float = 30.0
    alert_thresholds: Mapping[str, float] = field(default_factory=dict)
    log_level: str = "info"
    sample_rate: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "metrics_interval_s",
            _positive(self.metrics_interval_s, "monitoring.metrics_interval_s"),
        )
        if not isinstance(self.alert_thresholds, Mapping):
            raise ValidationError(
                "monitoring.alert_thresholds must be a mapping of name to number, "
                f"not {self.alert_thresholds!r}",
                field="monitoring.alert_thresholds",
            )
        thresholds: dict[str, float] = {}
        for name, value in self.alert_thresholds.items():
            where = f"monitoring.alert_thresholds.{name}"
            if not isinstance(name, str) or not _THRESHOLD.match(name):
                raise ValidationError(
                    f"monitoring.alert_thresholds: invalid name {name!r} (lower-case "
                    "letters, digits and _, starting with a letter)",
                    field=where,
                )
            number = _number(value, where)
            if number < 0 or (name in _FRACTIONS and number > 1):
                limit = "between 0 and 1" if name in _FRACTIONS else "at least 0"
                raise ValidationError(f"{where} must be {limit}, not {value!r}", field=where)
            thresholds[name] = number
        object.__setattr__(self, "alert_thresholds", thresholds)
        rate = _number(self.sample_rate, "monitoring.sample_rate")
        if not 0 <= rate <= 1:
            raise ValidationError(
                f"monitoring.sample_rate must be between 0 and 1, not {self.sample_rate!r}",
                field="monitoring.sample_rate",
            )
        object.__setattr__(self, "sample_rate", rate)
        object.__setattr__(
            self,
            "log_level",
            _choice(
                str(self.log_level).lower() if isinstance(self.log_level, str) else self.log_level,
                "monitoring.log_level",
                LOG_LEVELS,
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics_interval_s": self.metrics_interval_s,
            "alert_thresholds": dict(self.alert_thresholds),
            "log_level": self.log_level,
            "sample_rate": self.sample_rate,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Monitoring:
        return cls(**_keys(data, "monitoring", _fields(cls)))


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    """How a version is served in one environment (seed 000's ``deployModel`` configuration).

    ``batch_size`` and ``max_wait_ms`` drive dynamic batching (requests gathered up to
    ``batch_size`` or for ``max_wait_ms``), ``max_concurrency`` bounds the requests in
    flight and ``timeout_s`` cancels a slow one. ``task`` says what a Hugging Face folder
    is served as, where its config does not say.
    """

    environment: str = "development"
    batch_size: int = 32
    max_wait_ms: float = 5.0
    max_concurrency: int = 64
    timeout_s: float = 30.0
    scaling: Scaling = field(default_factory=Scaling)
    resources: Resources = field(default_factory=Resources)
    monitoring: Monitoring = field(default_factory=Monitoring)
    engine: str = "local"
    task: str | None = None

    def __post_init__(self) -> None:
        _choice(self.environment, "environment", ENVIRONMENTS)
        object.__setattr__(
            self, "batch_size", _integer(self.batch_size, "batch_size", low=1, high=65536)
        )
        wait = _number(self.max_wait_ms, "max_wait_ms")
        if wait < 0:
            raise ValidationError(
                f"max_wait_ms must be 0 or more, not {self.max_wait_ms!r}", field="max_wait_ms"
            )
        object.__setattr__(self, "max_wait_ms", wait)
        object.__setattr__(
            self, "max_concurrency", _integer(self.max_concurrency, "max_concurrency", low=1)
        )
        object.__setattr__(self, "timeout_s", _positive(self.timeout_s, "timeout_s"))
        sections = (("scaling", Scaling), ("resources", Resources), ("monitoring", Monitoring))
        for name, kind in sections:
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, kind.from_dict(value))
            elif not isinstance(value, kind):
                raise ValidationError(f"{name} must be a mapping, not {value!r}", field=name)
        _choice(self.engine, "engine", ENGINES)
        if self.task is not None:
            _choice(self.task, "task", TASKS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "batch_size": self.batch_size,
            "max_wait_ms": self.max_wait_ms,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "scaling": self.scaling.to_dict(),
            "resources": self.resources.to_dict(),
            "monitoring": self.monitoring.to_dict(),
            "engine": self.engine,
            "task": self.task,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentConfig:
        """A configuration from ``data``, in our snake_case or seed 000's camelCase.

        Seed 000's ``timeout`` and ``metricsInterval`` are milliseconds; ``timeout_s`` and
        ``metrics_interval_s`` are seconds. Seed 000 also puts ``monitoring`` beside
        ``config``; here it is one of the configuration's keys.
        """
        return cls(**_keys(data, "config", _fields(cls)))

    def merged(self, changes: Mapping[str, Any]) -> DeploymentConfig:
        """This configuration with ``changes`` applied; nested sections merge key by key."""
        current = self.to_dict()
        for key, value in _keys(changes, "config", _fields(type(self))).items():
            if key in ("scaling", "resources", "monitoring") and isinstance(value, Mapping):
                section = _keys(value, key, tuple(current[key]))
                current[key] = {**current[key], **section}
            else:
                current[key] = value
        return DeploymentConfig.from_dict(current)

    def with_environment(self, environment: str) -> DeploymentConfig:
        return replace(self, environment=environment)


def _fields(cls: type) -> tuple[str, ...]:
    return tuple(cls.__dataclass_fields__)  # type: ignore[attr-defined]


def _time(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(
            f"{name} must be an ISO 8601 time, not {value!r}", field=name
        ) from None


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model's deployment to one environment: the version and configuration it should
    serve (intent) and the state the service recorded (``status``, ``replicas``)."""

    id: str
    model: str
    version: str
    environment: str
    config: DeploymentConfig
    status: str
    replicas: int
    created: datetime
    updated: datetime
    by: str | None = None

    def __post_init__(self) -> None:
        _choice(self.environment, "environment", ENVIRONMENTS)
        _choice(self.status, "status", STATUSES)

    @property
    def active(self) -> bool:
        """Whether it still holds its environment: not stopped."""
        return self.status != "stopped"

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "environment": self.environment,
            "config": self.config.to_dict(),
            "status": self.status,
            "replicas": self.replicas,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deployment:
        return cls(
            id=str(data["id"]),
            model=str(data["model"]),
            version=str(data["version"]),
            environment=str(data["environment"]),
            config=DeploymentConfig.from_dict(data["config"]),
            status=str(data["status"]),
            replicas=int(data["replicas"]),
            created=_time(data["created"], "created"),
            updated=_time(data["updated"], "updated"),
            by=data.get("by"),
        )


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """One change in a deployment's life, oldest first in its history."""

    id: int
    deployment_id: str
    action: str
    status: str
    version: str
    replicas: int
    created: datetime
    by: str | None = None
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment_id": self.deployment_id,
            "action": self.action,
            "status": self.status,
            "version": self.version,
            "replicas": self.replicas,
            "created": self.created.isoformat(),
            "by": self.by,
            "reason": self.reason,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentEvent:
        return cls(
            id=int(data["id"]),
            deployment_id=str(data["deployment_id"]),
            action=str(data["action"]),
            status=str(data["status"]),
            version=str(data["version"]),
            replicas=int(data["replicas"]),
            created=_time(data["created"], "created"),
            by=data.get("by"),
            reason=data.get("reason"),
            details=dict(data.get("details") or {}),
        )


@dataclass(frozen=True, slots=True)
class DeploymentHealth:
    """Whether a deployment serves, as far as its recorded state says, and why not."""

    deployment_id: str
    model: str
    version: str
    environment: str
    status: str
    replicas: int
    healthy: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "model": self.model,
            "version": self.version,
            "environment": self.environment,
            "status": self.status,
            "replicas": self.replicas,
            "healthy": self.healthy,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentHealth:
        return cls(
            deployment_id=str(data["deployment_id"]),
            model=str(data["model"]),
            version=str(data["version"]),
            environment=str(data["environment"]),
            status=str(data["status"]),
            replicas=int(data["replicas"]),
            healthy=bool(data["healthy"]),
            detail=str(data["detail"]),
        )
