"""What ``python -m benchmarks serving`` measured: its configuration, rows and their JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import figures

__all__ = ["GPU_KEYS", "KEYS", "TARGETS", "Figure", "ServingConfig", "ServingResults"]

#: The contract's targets: key → (bound, "max" if the figure must stay at or below it).
TARGETS: dict[str, tuple[float, str]] = {
    "overhead_p50_ms": (2.0, "max"),
    "throughput_speedup_vs_mlflow_serve": (3.0, "min"),
    "batching_speedup": (3.0, "min"),
    "embeddings_vs_sentence_transformers": (0.8, "min"),
    "cache_hit_latency_ratio": (0.1, "max"),
}

#: Every row's JSON key, in the table's order (those without a target are reported only).
KEYS = (
    "overhead_p50_ms",
    "throughput_speedup_vs_mlflow_serve",
    "batching_speedup",
    "embeddings_per_s",
    "embeddings_vs_sentence_transformers",
    "cache_hit_latency_ratio",
    "ray_serve_overhead_p50_ms",
    "kv_prefix_hit_rate",
    "kv_prefix_speedup",
)

#: The rows measured again on a GPU where there is one, as ``gpu_<key>``.
GPU_KEYS = (
    "overhead_p50_ms",
    "batching_speedup",
    "embeddings_per_s",
    "embeddings_vs_sentence_transformers",
    "cache_hit_latency_ratio",
)


@dataclass(frozen=True, slots=True)
class ServingConfig:
    """Workload sizes; ``create`` picks the full or the ``--quick`` ones."""

    workdir: Path
    quick: bool
    rounds: int
    #: timed single requests per side and round (overhead, cache, prompt prefixes)
    latency_samples: int
    #: concurrent clients and seconds per side and round of the MLP throughput
    throughput_clients: int
    throughput_seconds: float
    #: concurrent one-sentence clients and seconds per side and round of batching
    batching_clients: int
    batching_seconds: float
    batch_size: int
    max_wait_ms: float
    #: texts per round, texts per request and concurrent clients of embeddings/s
    embedding_texts: int
    texts_per_request: int
    embedding_clients: int
    #: words of the shared system prompt, tokens generated per completion, timed
    #: completions per side and round
    prompt_words: int
    completion_tokens: int
    prompt_samples: int
    seed: int = 0

    @classmethod
    def create(cls, *, workdir: Path, quick: bool, rounds: int | None = None) -> ServingConfig:
        if quick:
            return cls(
                workdir=workdir,
                quick=True,
                rounds=rounds or 2,
                latency_samples=20,
                throughput_clients=8,
                throughput_seconds=1.0,
                batching_clients=64,
                batching_seconds=1.5,
                batch_size=32,
                max_wait_ms=5.0,
                embedding_texts=128,
                texts_per_request=64,
                embedding_clients=2,
                prompt_words=200,
                completion_tokens=4,
                prompt_samples=10,
            )
        return cls(
            workdir=workdir,
            quick=False,
            rounds=rounds or 3,
            latency_samples=300,
            throughput_clients=16,
            throughput_seconds=8.0,
            batching_clients=64,
            batching_seconds=10.0,
            batch_size=32,
            max_wait_ms=5.0,
            embedding_texts=1024,
            texts_per_request=64,
            embedding_clients=2,
            prompt_words=400,
            completion_tokens=8,
            prompt_samples=100,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["workdir"] = str(self.workdir)
        return data


class Figure(figures.Figure):
    """One row's figure (:class:`benchmarks.figures.Figure`), judged by this table's targets."""

    __slots__ = ()

    def meets(self, key: str) -> bool | None:
        """Whether every round clears ``key``'s target; None without one or a run."""
        return self.clears(TARGETS.get(key))

    def cleared(self, key: str) -> int:
        """How many rounds clear ``key``'s target."""
        return self.rounds_clearing(TARGETS[key])


@dataclass(frozen=True, slots=True)
class ServingResults:
    config: ServingConfig
    figures: dict[str, Figure]
    #: what each row measured besides its figure (latencies, rates, settings), by key
    detail: dict[str, dict[str, Any]]
    gpu_device: str | None
    versions: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    def figure(self, key: str) -> Figure:
        return self.figures.get(key) or Figure.skipped("not run: not measured")

    def targets_met(self) -> dict[str, bool | None]:
        met = {key: self.figure(key).meets(key) for key in TARGETS}
        for key in GPU_KEYS:
            if key in TARGETS:
                met[f"gpu_{key}"] = self.figure(f"gpu_{key}").meets(key)
        return met

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in (*KEYS, *(f"gpu_{key}" for key in GPU_KEYS)):
            figure = self.figure(key)
            if figure.ran:
                out[key] = figure.median
                out[f"{key}_range"] = [figure.low, figure.high]
            else:
                out[key] = figure.not_run
                out[f"{key}_range"] = None
        out["gpu_device"] = self.gpu_device
        out["targets_met"] = self.targets_met()
        return out

    def details(self) -> dict[str, Any]:
        rows = {
            key: {**self.figure(key).to_dict(), **self.detail.get(key, {})}
            for key in (*KEYS, *(f"gpu_{key}" for key in GPU_KEYS))
        }
        return {
            "quick": self.config.quick,
            "config": self.config.to_dict(),
            "versions": self.versions,
            "rows": rows,
            **self.extra,
        }
