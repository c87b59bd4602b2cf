"""What an inference server records about its models: windows of metrics and sessions.

An :class:`InferenceWindow` is one served model on one server over one
``metricsInterval``: requests, errors, latency percentiles, throughput, tokens,
memory and cache hits. An :class:`InferenceSession` (seed 001's) counts the requests
one server answered for one model version, operation and set of sampling parameters.
Both are frozen records with ``to_dict``/``from_dict``; ``from_dict`` checks what
it reads, since reports also arrive over HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from weightbase.errors import ValidationError
from weightbase.serving.runnable_outputs import GenerationParams

__all__ = ["OPERATION_NAMES", "InferenceSession", "InferenceWindow"]

#: What a request asks of a model (``weightbase.serving.engine.OPERATIONS``' keys).
OPERATION_NAMES = ("embed", "classify", "tag", "generate", "predict")

_COUNTS = (
    "requests",
    "errors",
    "tokens",
    "memory_bytes",
    "cache_hits",
    "cache_misses",
    "kv_prefix_hits",
    "kv_prefix_misses",
)
_RATES = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "throughput_rps", "tokens_per_s")


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name} must be a count (0 or more), not {value!r}", field=name)
    return value


def _rate(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number, not {value!r}", field=name)
    if value < 0:
        raise ValidationError(f"{name} must be 0 or more, not {value!r}", field=name)
    return float(value)


def _text(value: Any, name: str, *, limit: int = 255) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValidationError(f"{name} must be text of 1 to {limit} characters", field=name)
    return value


def _time(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        found = value
    else:
        try:
            found = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValidationError(
                f"{name} must be an ISO 8601 time, not {value!r}", field=name
            ) from None
    if found.tzinfo is None:
        raise ValidationError(f"{name} must say its time zone", field=name)
    return found


def _optional(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _checked_values(cls: type, data: Any, what: str, *, times: tuple[str, str]) -> dict[str, Any]:
    """``data``'s fields for ``cls``: only known ones, its times and optional ids read."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"a {what} must be a JSON object")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ValidationError(f"unknown {what} field {unknown[0]!r}", field=unknown[0])
    values = dict(data)
    for name in times:
        values[name] = _time(values.get(name), name)
    for name in ("deployment_id", "environment"):
        values[name] = _optional(values.get(name), name)
    return values


@dataclass(frozen=True, slots=True)
class InferenceWindow:
    """One served model on one server over one window: what it answered and how fast.

    Latency percentiles are over the window's requests (None without any);
    ``memory_bytes`` is what the loaded model holds; ``errors`` counts answers of 500
    and above plus requests refused (429) or timed out (504).
    """

    model: str
    version: str
    served_as: str
    server_id: str
    started: datetime
    ended: datetime
    requests: int = 0
    errors: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    throughput_rps: float = 0.0
    tokens: int = 0
    tokens_per_s: float | None = None
    memory_bytes: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    kv_prefix_hits: int = 0
    kv_prefix_misses: int = 0
    deployment_id: str | None = None
    environment: str | None = None

    def __post_init__(self) -> None:
        for name in ("model", "version", "served_as", "server_id"):
            _text(getattr(self, name), name)
        for name in _COUNTS:
            _count(getattr(self, name), name)
        for name in _RATES:
            object.__setattr__(self, name, _rate(getattr(self, name), name))
        for name in ("started", "ended"):
            _time(getattr(self, name), name)
        if self.ended < self.started:
            raise ValidationError("a window ends after it starts", field="ended")
        if self.throughput_rps is None:
            raise ValidationError("throughput_rps must be a number", field="throughput_rps")

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["started"] = self.started.isoformat()
        out["ended"] = self.ended.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InferenceWindow:
        values = _checked_values(cls, data, "window", times=("started", "ended"))
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValidationError(f"a window is missing a field: {exc}") from None


@dataclass(frozen=True, slots=True)
class InferenceSession:
    """The requests one server answered for one model version, operation and set of
    sampling parameters (``params`` is None for what does not generate)."""

    id: str
    model: str
    version: str
    served_as: str
    server_id: str
    operation: str
    started: datetime
    last_request: datetime
    requests: int = 0
    tokens: int = 0
    params: GenerationParams | None = None
    deployment_id: str | None = None
    environment: str | None = None

    def __post_init__(self) -> None:
        for name in ("id", "model", "version", "served_as", "server_id"):
            _text(getattr(self, name), name)
        if self.operation not in OPERATION_NAMES:
            raise ValidationError(
                f"operation must be one of {', '.join(OPERATION_NAMES)}, not {self.operation!r}",
                field="operation",
            )
        for name in ("requests", "tokens"):
            _count(getattr(self, name), name)
        if self.last_request < self.started:
            raise ValidationError("a session's last request is after its start", field="started")

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["started"] = self.started.isoformat()
        out["last_request"] = self.last_request.isoformat()
        out["params"] = None if self.params is None else self.params.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InferenceSession:
        values = _checked_values(cls, data, "session", times=("started", "last_request"))
        params = values.get("params")
        if params is not None:
            if not isinstance(params, Mapping):
                raise ValidationError("params must be a JSON object", field="params")
            try:
                values["params"] = GenerationParams(**params)
            except TypeError as exc:
                raise ValidationError(f"bad params: {exc}", field="params") from None
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValidationError(f"a session is missing a field: {exc}") from None
