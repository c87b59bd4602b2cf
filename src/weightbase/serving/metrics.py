"""The inference server's Prometheus metrics, per model, in a registry of its own.

Request latency, batch sizes, time queued before a batch, tokens per second of
generation, response-cache and key/value-prefix hits and misses; ``/metrics`` renders them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKENS_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class ServerMetrics:
    """The server's counters and histograms; each app has its own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        registry = self.registry
        self.latency = Histogram(
            "weightbase_serve_request_seconds",
            "Time to answer an inference request.",
            ["model", "endpoint", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "weightbase_serve_batch_size",
            "Inputs run together in one forward pass.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.queue_time = Histogram(
            "weightbase_serve_queue_seconds",
            "Time a request waited before its batch ran.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens_per_second = Histogram(
            "weightbase_serve_tokens_per_second",
            "Generated tokens per second of a generation batch.",
            ["model"],
            buckets=_TOKENS_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "weightbase_serve_generated_tokens",
            "Tokens generated.",
            ["model"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "weightbase_serve_cache_hits", "Answers from the response cache.", ["model"],
            registry=registry,
        )  # fmt: skip
        self.cache_misses = Counter(
            "weightbase_serve_cache_misses", "Cacheable requests the cache did not hold.",
            ["model"], registry=registry,
        )  # fmt: skip
        self.kv_prefix_hits = Counter(
            "weightbase_serve_kv_prefix_hits",
            "Prompts that began as a recent prompt did: its keys and values were reused.",
            ["model"],
            registry=registry,
        )
        self.kv_prefix_misses = Counter(
            "weightbase_serve_kv_prefix_misses",
            "Prompts that shared no reusable prefix with a recent prompt.",
            ["model"],
            registry=registry,
        )
        self.kv_prefix_tokens = Counter(
            "weightbase_serve_kv_prefix_tokens",
            "Prompt tokens whose keys and values came from the prefix cache.",
            ["model"],
            registry=registry,
        )
        self.rejected = Counter(
            "weightbase_serve_rejected",
            "Requests refused (429) or timed out (504).",
            ["model", "reason"],
            registry=registry,
        )
        self.loads = Counter(
            "weightbase_serve_model_loads", "Model loads, by outcome.", ["model", "outcome"],
            registry=registry,
        )  # fmt: skip
        self.evictions = Counter(
            "weightbase_serve_model_evictions", "Models evicted under the memory budget.",
            ["model"], registry=registry,
        )  # fmt: skip

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def sample(self, name: str, **labels: Any) -> float:
        """One sample's value (0 where absent): for tests and the demo."""
        value = self.registry.get_sample_value(name, {k: str(v) for k, v in labels.items()})
        return float(value or 0.0)
