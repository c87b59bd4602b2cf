"""How ``weightbase serve`` runs: the models it serves and its batching, limits and cache.

A frozen record checked when it is built, so a bad option is refused before the server
starts, with a :class:`~weightbase.errors.ValidationError` that names it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from weightbase.errors import ValidationError
from weightbase.serving.deployment_checks import check_environment

__all__ = ["ServeOptions", "parse_bytes"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|[KMGT]|B)?\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_bytes(text: str | int) -> int:
    """``"2GiB"``, ``"500M"``, ``"1.5G"`` or a plain count as a number of bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValidationError(f"a size must be 0 or more bytes, not {text}", size=text)
        return text
    match = _SIZE.match(str(text))
    if match is None:
        raise ValidationError(
            f"{text!r} is not a size; write bytes or a number with K, M, G, T (or KiB, MiB, GiB)",
            size=str(text),
        )
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    binary = "i" in unit
    unit = unit.replace("i", "").replace("b", "")
    factor = _BINARY[unit] if binary else _UNITS[unit]
    return int(number * factor)


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """The server's settings; times in seconds except those in ``_ms``.

    ``memory_budget`` bounds the estimated bytes of the loaded models (0: no bound);
    ``batch_size`` and ``max_wait_ms`` shape dynamic batching; ``max_concurrency``
    bounds each model's requests in flight; a model whose batches take under
    ``inline_below_ms`` runs on the event loop rather than in a worker thread (0: always in
    a thread); ``timeout_s`` ends a request with 504;
    ``cache_bytes`` (0: no cache) and ``cache_ttl_s`` bound the response cache; a model
    that failed to load is tried again after ``retry_load_s``. ``kv_prefix_cache``
    bounds the prompts per generation model whose keys and values are kept for later
    prompts that begin the same way (0: none). Every ``metrics_interval_s`` (0: never)
    each model's window of inference metrics and its sessions are written to the
    catalog; with an ``environment``, the server reports each served model's
    deployment there ``running`` (or ``failed`` when it cannot load) and links the
    records to it. The A/B tests served (``abtest:NAME``) are read again every
    ``ab_refresh_s``, so a reweight or a stop reaches the server within that time. A
    ``sample_rate`` share of requests (chosen by request id) has its inputs and outputs
    kept for monitoring (``wb.monitoring``), written in batches off the request path.
    """

    memory_budget: int = 0
    batch_size: int = 8
    max_wait_ms: float = 5.0
    inline_below_ms: float = 1.0
    max_concurrency: int = 64
    timeout_s: float = 30.0
    cache_bytes: int = 64 * 2**20
    cache_ttl_s: float = 300.0
    retry_load_s: float = 30.0
    device: str = "cpu"
    kv_prefix_cache: int = 16
    metrics_interval_s: float = 60.0
    environment: str | None = None
    ab_refresh_s: float = 5.0
    sample_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_concurrency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(
                    f"{name} must be a positive integer, not {value!r}", field=name
                )
        for name in ("memory_budget", "cache_bytes", "kv_prefix_cache"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                unit = "prompts" if name == "kv_prefix_cache" else "bytes"
                raise ValidationError(f"{name} must be 0 or more {unit}, not {value!r}", field=name)
        for name in (
            "max_wait_ms",
            "inline_below_ms",
            "cache_ttl_s",
            "retry_load_s",
            "metrics_interval_s",
            "ab_refresh_s",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValidationError(f"{name} must be 0 or more, not {value!r}", field=name)
        if not isinstance(self.timeout_s, int | float) or not self.timeout_s > 0:
            raise ValidationError(
                f"timeout_s must be a positive number, not {self.timeout_s!r}", field="timeout_s"
            )
        if (
            isinstance(self.sample_rate, bool)
            or not isinstance(self.sample_rate, int | float)
            or not 0 <= self.sample_rate <= 1
        ):
            raise ValidationError(
                f"sample_rate must be between 0 and 1, not {self.sample_rate!r}",
                field="sample_rate",
            )
        if self.environment is not None:
            check_environment(self.environment)
