"""The experiment tracking tables: experiments, runs, their parameters, metrics (keys,
blocks of points, writers), environments and artifacts.

Rows only; :mod:`weightbase.tracking` owns the rules (what a run's status may become,
how metric points are batched into blocks).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from weightbase.catalog.base import Base, BigId, utcnow

__all__ = [
    "RUN_STATUSES",
    "ExperimentRow",
    "MetricBlockRow",
    "MetricKeyRow",
    "MetricWriterRow",
    "RunArtifactRow",
    "RunEnvironmentRow",
    "RunMetricRow",
    "RunParamRow",
    "RunRow",
]

#: The states a run can be in; ``running`` and ``paused`` are the live ones.
RUN_STATUSES = ("running", "paused", "completed", "failed", "cancelled")


class ExperimentRow(Base):
    """A named group of runs (``mnist-baselines``, ``lora-sweep``…)."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("name", name="uq_experiments_name"),)


class RunRow(Base):
    """One training or evaluation run: its status, timing and resource usage.

    Params, metrics and artifacts hang off it in their own tables; its tags are
    ``tags`` rows with ``entity_kind = 'run'``.
    """

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="running")
    # Why the run ended as it did (the exception of a failed run, a cancel reason).
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    ended_at: Mapped[datetime | None]
    # Resource usage, summed over every process that logged into the run.
    cpu_seconds: Mapped[float] = mapped_column(Double, default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(Double, default=0.0)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    storage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        CheckConstraint(
            f"status IN ({', '.join(repr(status) for status in RUN_STATUSES)})", name="status"
        ),
        Index("ix_runs_experiment", "experiment_id", "id"),
        Index("ix_runs_status", "status", "id"),
    )


class RunParamRow(Base):
    """One hyper-parameter of a run; ``value`` is its canonical JSON text."""

    __tablename__ = "run_params"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_run_params_key", "key", "run_id"),)


class MetricKeyRow(Base):
    """A metric name, interned once so that metric rows carry a small integer instead."""

    __tablename__ = "metric_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("name", name="uq_metric_keys_name"),)


class MetricBlockRow(Base):
    """A block of consecutive points of one metric of one run, as packed little-endian arrays.

    ``steps`` holds int64s; ``epochs`` (NULL when no point had one, NaN for a
    point without), ``times`` (Unix seconds) and ``metric_values`` hold float64s,
    NaN and ±inf kept bit for bit. ``nonfinite`` counts the NaN/inf values, so
    a query can flag them without unpacking. One background write adds one
    block per metric; a finished run's blocks are merged.
    """

    __tablename__ = "metric_blocks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key_id: Mapped[int] = mapped_column(ForeignKey("metric_keys.id", ondelete="CASCADE"))
    count: Mapped[int] = mapped_column(Integer)
    nonfinite: Mapped[int] = mapped_column(Integer, default=0)
    first_step: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)
    steps: Mapped[bytes] = mapped_column(LargeBinary)
    epochs: Mapped[bytes | None] = mapped_column(LargeBinary)
    times: Mapped[bytes] = mapped_column(LargeBinary)
    metric_values: Mapped[bytes] = mapped_column(LargeBinary)
    # Logged past the checkpoint a resumed run restarted from: kept, hidden by default.
    superseded: Mapped[bool] = mapped_column(default=False, server_default=false())

    __table_args__ = (
        CheckConstraint("count > 0 AND nonfinite >= 0 AND nonfinite <= count", name="counts"),
        Index("ix_metric_blocks_series", "run_id", "key_id", "id"),
    )


class RunMetricRow(Base):
    """The summary of one metric of one run: its latest point, extremes and counts.

    ``last_value`` is NULL when the latest value is not finite; ``last_flag``
    then says which (0 finite, 1 NaN, 2 +inf, 3 -inf). ``min_value`` and
    ``max_value`` are over the finite values only.
    """

    __tablename__ = "run_metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[int] = mapped_column(
        ForeignKey("metric_keys.id", ondelete="CASCADE"), primary_key=True
    )
    count: Mapped[int] = mapped_column(BigInteger)
    nonfinite: Mapped[int] = mapped_column(BigInteger, default=0)
    last_step: Mapped[int] = mapped_column(BigInteger)
    last_time: Mapped[float] = mapped_column(Double)
    last_value: Mapped[float | None] = mapped_column(Double)
    last_flag: Mapped[int] = mapped_column(Integer, default=0)
    min_value: Mapped[float | None] = mapped_column(Double)
    max_value: Mapped[float | None] = mapped_column(Double)

    __table_args__ = (Index("ix_run_metrics_key_value", "key_id", "last_value"),)


class MetricWriterRow(Base):
    """The highest batch ``sequence`` stored from one metric writer (a client process) of a run.

    A remote run numbers its batches; a batch sent again after a lost answer
    carries a sequence at or below this one and is not stored twice.
    """

    __tablename__ = "metric_writers"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    writer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunEnvironmentRow(Base):
    """A run's reproducibility record (JSON; NULL if it opted out) and seeds set (JSON object)."""

    __tablename__ = "run_environments"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    captured_at: Mapped[datetime | None]
    record: Mapped[str | None] = mapped_column(Text)
    seeds: Mapped[str] = mapped_column(Text, default="{}")


class RunArtifactRow(Base):
    """A named output of a run: a snapshot in the tensor store (arrays, a file or a folder)."""

    __tablename__ = "run_artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    snapshot_id: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "name", name="uq_run_artifacts_run_id_name"),
        CheckConstraint("kind IN ('tensors', 'file', 'folder')", name="kind"),
        Index("ix_run_artifacts_snapshot_id", "snapshot_id"),
    )
