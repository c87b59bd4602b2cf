"""What ``python -m benchmarks server`` measured: its configuration, figures and their JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import figures

__all__ = [
    "TARGETS",
    "ConcurrentResult",
    "FuzzResult",
    "Rounds",
    "ServerConfig",
    "ServerResults",
]

#: The contract's targets: key → (bound, "max" if the figure must stay at or below it).
TARGETS: dict[str, tuple[float, str]] = {
    "api_overhead_p50_ms": (2.0, "max"),
    "remote_log_speedup_vs_mlflow_server": (20.0, "min"),
    "remote_push_bytes_fraction": (0.15, "max"),
    "remote_push_speedup_vs_mlflow_artifacts": (1.0, "min"),
}

#: Metrics logged per step, as a training loop logs loss, lr, …
METRICS_PER_STEP = 10
#: Points per request on both sides of the logging comparison: MLflow's most per log_batch.
LOG_BATCH_POINTS = 1000


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Workload sizes; ``create`` picks the full, the scaled-down or the ``--quick`` ones."""

    workdir: Path
    quick: bool
    scale: float
    rounds: int
    overhead_samples: int
    log_points: int
    mlflow_log_points: int
    dedup_tensors: int
    dedup_tensor_elements: int
    clients: int
    client_seconds: float
    client_batch_steps: int
    client_metrics: int
    fuzz_examples: int
    fuzz_phases: str
    seed: int = 0

    @classmethod
    def create(
        cls, *, workdir: Path, quick: bool, scale: float = 1.0, rounds: int | None = None
    ) -> ServerConfig:
        """``scale`` (0 < scale ≤ 1) shrinks the durations and point counts of the full run."""
        if quick:
            return cls(
                workdir=workdir,
                quick=True,
                scale=scale,
                rounds=rounds or 2,
                overhead_samples=50,
                log_points=10_000,
                mlflow_log_points=2_000,
                dedup_tensors=10,
                dedup_tensor_elements=1 << 16,
                clients=20,
                client_seconds=2.0,
                client_batch_steps=10,
                client_metrics=5,
                fuzz_examples=2,
                fuzz_phases="examples,fuzzing",
            )

        def scaled(count: int, least: int) -> int:
            return max(least, round(count * scale))

        return cls(
            workdir=workdir,
            quick=False,
            scale=scale,
            rounds=rounds or 3,
            overhead_samples=scaled(500, 50),
            log_points=scaled(500_000, 10_000),
            mlflow_log_points=scaled(50_000, 2_000),
            dedup_tensors=20,
            # one 4 MiB chunk per fp32 tensor at full size
            dedup_tensor_elements=scaled(1 << 20, 1 << 16),
            clients=200,
            client_seconds=max(1.0, 30.0 * scale),
            client_batch_steps=20,
            client_metrics=5,
            fuzz_examples=scaled(50, 3),
            fuzz_phases="examples,coverage,fuzzing,stateful",
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["workdir"] = str(self.workdir)
        return data


class Rounds(figures.Figure):
    """One figure measured once per round (:class:`benchmarks.figures.Figure`)."""

    __slots__ = ()

    def meets(self, key: str) -> bool:
        """Whether every round clears ``key``'s target (the whole range, not the median)."""
        return bool(self.clears(TARGETS[key]))


@dataclass(frozen=True, slots=True)
class ConcurrentResult:
    """Many clients logging at once, and what was found stored afterwards."""

    clients: int
    seconds: float
    requests: int
    points_sent: int
    points_stored: int
    points_lost: int
    points_unexpected: int
    server_errors: int
    transport_errors: int
    client_errors: int
    server_5xx_counted_by_server: int
    latency_p50_ms: float
    latency_p99_ms: float
    error_samples: tuple[str, ...] = ()

    @property
    def points_per_s(self) -> float:
        return self.points_stored / self.seconds

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 3),
            "points_sent": self.points_sent,
            "points_lost": self.points_lost,
            "server_errors": self.server_errors,
            "points_per_s": self.points_per_s,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "points_per_s": self.points_per_s}


@dataclass(frozen=True, slots=True)
class FuzzResult:
    """A schemathesis run over every operation: its responses by status, those ≥ 500."""

    operations: int
    responses: int
    statuses: dict[str, int]
    server_errors: int
    failing: tuple[str, ...]
    schemathesis_version: str
    passes: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ServerResults:
    config: ServerConfig
    overhead: Rounds
    overhead_detail: dict[str, Any]
    log_speedup: Rounds
    log_detail: dict[str, Any]
    bytes_fraction: Rounds
    bytes_detail: dict[str, Any]
    push_speedup: Rounds
    push_detail: dict[str, Any]
    concurrent: ConcurrentResult
    fuzz: FuzzResult
    versions: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    def ratios(self) -> dict[str, Rounds]:
        return {
            "api_overhead_p50_ms": self.overhead,
            "remote_log_speedup_vs_mlflow_server": self.log_speedup,
            "remote_push_bytes_fraction": self.bytes_fraction,
            "remote_push_speedup_vs_mlflow_artifacts": self.push_speedup,
        }

    def targets_met(self) -> dict[str, bool]:
        met = {key: rounds.meets(key) for key, rounds in self.ratios().items()}
        met["concurrent_clients"] = (
            self.concurrent.points_lost == 0 and self.concurrent.server_errors == 0
        )
        met["schemathesis_server_errors"] = self.fuzz.server_errors == 0
        return met

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, rounds in self.ratios().items():
            out[key] = rounds.median
            out[f"{key}_range"] = [rounds.low, rounds.high]
        out["concurrent_clients"] = self.concurrent.summary()
        out["schemathesis_server_errors"] = self.fuzz.server_errors
        out["targets_met"] = self.targets_met()
        return out

    def details(self) -> dict[str, Any]:
        return {
            "quick": self.config.quick,
            "scale": self.config.scale,
            "config": self.config.to_dict(),
            "versions": self.versions,
            "api_overhead": {**self.overhead.to_dict(), **self.overhead_detail},
            "remote_logging": {**self.log_speedup.to_dict(), **self.log_detail},
            "remote_push_bytes": {**self.bytes_fraction.to_dict(), **self.bytes_detail},
            "remote_push_minilm": {**self.push_speedup.to_dict(), **self.push_detail},
            "concurrent_clients": self.concurrent.to_dict(),
            "schemathesis": self.fuzz.to_dict(),
            **self.extra,
        }
