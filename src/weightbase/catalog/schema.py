"""The catalog's tables, as SQLAlchemy 2 declarative classes.

Rows only: the rules about what may be written live in the domain modules
(``registry``, ``lineage``, ``governance``) that own these tables. The base and
column types are in ``base``; experiment tracking in ``tracking_tables``; users,
tokens and governance records in ``governance_tables``; webhooks in
``webhook_tables``; ethics reviews and explanations in ``review_tables``;
deployments in ``deployment_tables``; the inference server's windows and sessions in
``inference_tables``; checkpoints in ``checkpoint_tables``; A/B tests in
``abtest_tables``; fusion reactors in ``fusion_tables``; monitoring's samples, labels
and alerts in ``monitoring_tables``; all re-exported here, so this module names every
table.
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
from weightbase.catalog.fusion_tables import ReactorOperationRow, ReactorRow
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
from weightbase.catalog.monitoring_tables import (
    MonitoringAlertRow,
    MonitoringLabelRow,
    MonitoringSampleRow,
)
from weightbase.catalog.review_tables import ETHICS_DECISIONS, EthicsReviewRow, ExplanationRow
from weightbase.catalog.tracking_tables import (
    RUN_STATUSES,
    ExperimentRow,
    MetricBlockRow,
    MetricKeyRow,
    MetricWriterRow,
    RunArtifactRow,
    RunEnvironmentRow,
    RunMetricRow,
    RunParamRow,
    RunRow,
)
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
    "MonitoringAlertRow",
    "MonitoringLabelRow",
    "MonitoringSampleRow",
    "ReactorOperationRow",
    "ReactorRow",
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
