"""The inference server's records: what each served model did, window by window, and its
inference sessions (one per server, model version, operation and sampling parameters).

Rows only; :mod:`weightbase.serving` writes them from what ``weightbase serve`` counts
and reads them for monitoring.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Double, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from weightbase.catalog.base import Base, BigId

__all__ = ["InferenceMetricRow", "InferenceSessionRow"]


class InferenceMetricRow(Base):
    """One window of a served model on one server: requests, latency, tokens, caches."""

    __tablename__ = "inference_metrics"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL")
    )
    server_id: Mapped[str] = mapped_column(String(32))
    served_as: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    requests: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    latency_p50_ms: Mapped[float | None] = mapped_column(Double)
    latency_p95_ms: Mapped[float | None] = mapped_column(Double)
    latency_p99_ms: Mapped[float | None] = mapped_column(Double)
    throughput_rps: Mapped[float] = mapped_column(Double)
    tokens: Mapped[int] = mapped_column(BigInteger)
    tokens_per_s: Mapped[float | None] = mapped_column(Double)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    cache_hits: Mapped[int] = mapped_column(BigInteger)
    cache_misses: Mapped[int] = mapped_column(BigInteger)
    kv_prefix_hits: Mapped[int] = mapped_column(BigInteger)
    kv_prefix_misses: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_inference_metrics_version_ended", "version_id", "ended_at"),
        Index("ix_inference_metrics_deployment_ended", "deployment_id", "ended_at"),
    )


class InferenceSessionRow(Base):
    """Requests a server answered for one model version, operation and set of sampling
    parameters (seed 001's inference sessions): the configuration and the counts."""

    __tablename__ = "inference_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL")
    )
    server_id: Mapped[str] = mapped_column(String(32))
    served_as: Mapped[str] = mapped_column(String(255))
    operation: Mapped[str] = mapped_column(String(16))
    temperature: Mapped[float | None] = mapped_column(Double)
    top_k: Mapped[int | None] = mapped_column(Integer)
    top_p: Mapped[float | None] = mapped_column(Double)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    stop: Mapped[list[Any] | None]
    seed: Mapped[int | None] = mapped_column(BigInteger)
    requests: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime]
    last_request_at: Mapped[datetime]

    __table_args__ = (Index("ix_inference_sessions_version_last", "version_id", "last_request_at"),)
