"""The catalog's tables, as SQLAlchemy 2 declarative classes.

Rows only: the rules about what may be written live in the domain modules
(``registry``, ``lineage``, ``governance``) that own these tables. The base and
column types are in ``base``; users, tokens and governance records in
``governance_tables``, webhooks in ``webhook_tables``, ethics reviews and
explanations in ``review_tables``, deployments in ``deployment_tables``, the
inference server's windows and sessions in ``inference_tables``, checkpoints in
``checkpoint_tables``, re-exported here, so this module names every table.
Every change to these needs a migration in ``migrations/versions`` (a test
compares the two).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
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

from weightbase.catalog.abtest_tables import ABTestRow, ABTestStatRow
from weightbase.catalog.base import LIVE, Base, BigId, UTCDateTime, utcnow
from weightbase.catalog.checkpoint_tables import CheckpointRow
from weightbase.catalog.deployment_tables import DeploymentEventRow, DeploymentRow
from weightbase.catalog.governance_tables import (
    APPROVAL_DECISIONS,
    APPROVAL_STATUSES,
    RISK_LEVELS,
    ROLES,
    ApiTokenRow,
    ApprovalDecisionRow,
    ApprovalRequestRow,
    ComplianceReportRow,
    ModelGovernanceRow,
    ScanResultRow,
    UserRow,
)
from weightbase.catalog.inference_tables import InferenceMetricRow, InferenceSessionRow
from weightbase.catalog.review_tables import ETHICS_DECISIONS, EthicsReviewRow, ExplanationRow
from weightbase.catalog.webhook_tables import DELIVERY_STATUSES, WebhookDeliveryRow, WebhookRow

__all__ = [
    "APPROVAL_DECISIONS",
    "DELIVERY_STATUSES",
    "ETHICS_DECISIONS",
    "APPROVAL_STATUSES",
    "RISK_LEVELS",
    "ROLES",
    "RUN_STATUSES",
    "STAGES",
    "ABTestRow",
    "ABTestStatRow",
    "AliasRow",
    "ApiTokenRow",
    "ApprovalDecisionRow",
    "ApprovalRequestRow",
    "AuditLogRow",
    "Base",
    "CheckpointRow",
    "ComplianceReportRow",
    "DatasetRow",
    "DatasetVersionRow",
    "DeploymentEventRow",
    "DeploymentRow",
    "EthicsReviewRow",
    "EventRow",
    "InferenceMetricRow",
    "InferenceSessionRow",
    "ExplanationRow",
    "ExperimentRow",
    "LineageEdgeRow",
    "MetricBlockRow",
    "MetricKeyRow",
    "MetricWriterRow",
    "ModelGovernanceRow",
    "ModelRow",
    "ModelVersionLayerRow",
    "ModelVersionRow",
    "RunArtifactRow",
    "RunEnvironmentRow",
    "RunMetricRow",
    "RunParamRow",
    "RunRow",
    "ScanResultRow",
    "TagRow",
    "UTCDateTime",
    "UserRow",
    "VersionColumns",
    "VersionMetricRow",
    "WebhookDeliveryRow",
    "WebhookRow",
    "utcnow",
]

#: The lifecycle stages a model version can be in, in order.
STAGES = ("development", "staging", "production", "deprecated", "archived")


class VersionColumns:
    """The columns every semantic version row has: model and dataset versions.

    ``content_digest`` is not here: a model version's may be NULL (rows from
    before it existed), a dataset version's may not.
    """

    version: Mapped[str] = mapped_column(String(128))
    # The parsed version, for ordering in SQL; prerelease is NULL for a release.
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    patch: Mapped[int] = mapped_column(Integer)
    prerelease: Mapped[str | None] = mapped_column(String(128))
    snapshot_id: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))
    deleted_at: Mapped[datetime | None]


class ModelRow(Base):
    """A named model; its versions hold the weights. Soft-deleted by ``deleted_at``."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    licence: Mapped[str | None] = mapped_column(String(255))
    model_card: Mapped[str | None] = mapped_column(Text)
    framework: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]

    __table_args__ = (
        # A name is unique among live models; a deleted model frees its name.
        Index(
            "uq_models_name_live",
            "name",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        Index("ix_models_framework", "framework"),
        Index("ix_models_owner", "owner"),
        Index("ix_models_updated_at", "updated_at"),
    )


class ModelVersionRow(VersionColumns, Base):
    """One semantic version of a model: a snapshot in the tensor store plus what we know of it."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    # BLAKE3 of the tensors' and blob files' digests: equal for equal weights,
    # however they were pushed (state dict, safetensors file, folder).
    content_digest: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(32), default="development")
    framework: Mapped[str | None] = mapped_column(String(64))
    # Architecture summary (NULL where the model is not a recognised transformer).
    model_type: Mapped[str | None] = mapped_column(String(128))
    num_layers: Mapped[int | None] = mapped_column(Integer)
    hidden_size: Mapped[int | None] = mapped_column(Integer)
    num_attention_heads: Mapped[int | None] = mapped_column(Integer)
    head_dim: Mapped[int | None] = mapped_column(Integer)
    total_params: Mapped[int] = mapped_column(BigInteger, default=0)
    trainable_params: Mapped[int] = mapped_column(BigInteger, default=0)
    logical_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    dtypes: Mapped[dict[str, Any] | None]
    # The whole ModelAnalysis (architecture, buffers, warnings) as pushed.
    analysis: Mapped[dict[str, Any] | None]

    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
        CheckConstraint(f"stage IN ({', '.join(repr(stage) for stage in STAGES)})", name="stage"),
        CheckConstraint("major >= 0 AND minor >= 0 AND patch >= 0", name="version_numbers"),
        CheckConstraint("length(snapshot_id) = 64", name="snapshot_id_length"),
        Index("ix_model_versions_order", "model_id", "major", "minor", "patch"),
        Index("ix_model_versions_model_created", "model_id", "created_at"),
        Index("ix_model_versions_snapshot_id", "snapshot_id"),
        Index("ix_model_versions_content", "model_id", "content_digest"),
        Index("ix_model_versions_stage", "stage"),
        Index("ix_model_versions_framework", "framework"),
        Index("ix_model_versions_architecture", "model_type", "num_layers", "hidden_size"),
        # "models with a live version of this type", answered from the index alone
        Index(
            "ix_model_versions_live_type",
            "model_type",
            "model_id",
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
    )


class ModelVersionLayerRow(Base):
    """One transformer layer of a model version: its attention shape and Q/K/V/O tensors."""

    __tablename__ = "model_version_layers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    # The block's stack (``encoder.layer``, ``model.layers``…) and its index there.
    stack: Mapped[str] = mapped_column(String(255), default="", server_default="")
    layer_index: Mapped[int] = mapped_column(Integer)
    fused_qkv: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    hidden_size: Mapped[int | None] = mapped_column(Integer)
    num_heads: Mapped[int | None] = mapped_column(Integer)
    num_kv_heads: Mapped[int | None] = mapped_column(Integer)
    head_dim: Mapped[int | None] = mapped_column(Integer)
    q_tensor: Mapped[str | None] = mapped_column(String(512))
    k_tensor: Mapped[str | None] = mapped_column(String(512))
    v_tensor: Mapped[str | None] = mapped_column(String(512))
    o_tensor: Mapped[str | None] = mapped_column(String(512))

    __table_args__ = (
        UniqueConstraint(
            "version_id",
            "stack",
            "layer_index",
            name="uq_model_version_layers_version_id_stack_layer_index",
        ),
        Index("ix_model_version_layers_shape", "num_heads", "head_dim", "hidden_size"),
    )


class AliasRow(Base):
    """A movable name (``production``, ``champion``, …) for one version of a model."""

    __tablename__ = "aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(128))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("model_id", "alias", name="uq_aliases_model_id_alias"),
        Index("ix_aliases_version_id", "version_id"),
        Index("ix_aliases_alias", "alias"),
    )


class TagRow(Base):
    """A free-form tag on any catalog row, named by its kind (``model``, ``model_version``…)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity_kind: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int] = mapped_column(Integer)
    tag: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        UniqueConstraint("entity_kind", "entity_id", "tag", name="uq_tags_entity_tag"),
        # "which models carry tag t" without touching the tags of other kinds
        Index("ix_tags_kind_tag", "entity_kind", "tag", "entity_id"),
    )


class VersionMetricRow(Base):
    """A metric measured on a model version (optionally on a dataset, at a step)."""

    __tablename__ = "version_metrics"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    value: Mapped[float] = mapped_column(Double)
    dataset: Mapped[str | None] = mapped_column(String(255))
    step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_version_metrics_version_name", "version_id", "name"),)


class LineageEdgeRow(Base):
    """``source <relation> target``: e.g. (model_version 7) fine_tuned_from (model_version 3).

    Nodes are (kind, id) pairs with string ids, so an edge can point at things
    outside the catalog (a run id, a snapshot digest).
    """

    __tablename__ = "lineage_edges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_kind: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(255))
    target_kind: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(255))
    relation: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # Its leading columns are the index for walking from a source (ancestors).
        UniqueConstraint(
            "source_kind",
            "source_id",
            "target_kind",
            "target_id",
            "relation",
            name="uq_lineage_edges_edge",
        ),
        Index("ix_lineage_edges_target", "target_kind", "target_id"),
    )


class AuditLogRow(Base):
    """Who changed what, when, from what to what, and why. Append-only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(128))
    entity_kind: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(255))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    reason: Mapped[str | None] = mapped_column(Text)
    # Where an API request made the change: its token's public id and client address.
    token_id: Mapped[str | None] = mapped_column(String(64))
    remote_address: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_entity", "entity_kind", "entity_id", "id"),
        Index("ix_audit_log_action", "action", "id"),
        Index("ix_audit_log_actor", "actor", "id"),
    )


class EventRow(Base):
    """One persisted event, in the order it was committed-to-be (by id)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]]

    __table_args__ = (Index("ix_events_type", "type", "id"),)


# -- experiment tracking (owned by weightbase.tracking) ----------------------------------

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


# -- datasets (owned by weightbase.datasets) --------------------------------------------


class DatasetRow(Base):
    """A named dataset; its versions hold the data. Soft-deleted by ``deleted_at``."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    licence: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str | None] = mapped_column(String(32))
    format: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_datasets_name_live",
            "name",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        Index("ix_datasets_kind_format", "kind", "format"),
    )


class DatasetVersionRow(VersionColumns, Base):
    """One version of a dataset: a content snapshot, its statistics, quality and splits."""

    __tablename__ = "dataset_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    content_digest: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(32))
    sample_count: Mapped[int] = mapped_column(BigInteger)
    logical_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    statistics: Mapped[dict[str, Any] | None]
    quality_score: Mapped[float | None] = mapped_column(Double)
    quality: Mapped[dict[str, Any] | None]
    # The split spec and sizes; the index arrays are in ``splits_snapshot_id``.
    splits: Mapped[dict[str, Any] | None]
    splits_snapshot_id: Mapped[str | None] = mapped_column(String(64))
    preprocessing: Mapped[list[Any] | None]

    __table_args__ = (
        UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_id_version"),
        CheckConstraint("length(snapshot_id) = 64", name="snapshot_id_length"),
        Index("ix_dataset_versions_order", "dataset_id", "major", "minor", "patch"),
        Index("ix_dataset_versions_content", "dataset_id", "content_digest"),
        Index("ix_dataset_versions_snapshot_id", "snapshot_id"),
    )
