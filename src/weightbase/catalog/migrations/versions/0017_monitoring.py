"""Production monitoring: sampled requests, late labels and alerts.

``monitoring_samples`` holds sampled requests of served model versions (and the
deployment that served them): request id, time, latency, error, and the inputs and
outputs as JSON (null when over the size limit, with ``truncated`` set).
``monitoring_labels`` holds the true outcome of a request, keyed by request id, joined
to its sample when the model's performance is read. ``monitoring_alerts`` holds alerts
on deployments: the rule, value and threshold, the message, and the state (open,
acknowledged, resolved) with who moved it and when; one unresolved alert per
deployment and rule (a partial unique index). Ruled by ``weightbase.monitoring``.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNRESOLVED = sa.text("status != 'resolved'")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitoring_samples",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.String(length=32), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("inputs", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("outputs", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.CheckConstraint("latency_ms >= 0", name=op.f("ck_monitoring_samples_latency_ms")),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_monitoring_samples_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_monitoring_samples_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_monitoring_samples_deployment_id_deployments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_samples")),
    )
    op.create_index("ix_monitoring_samples_version_at", "monitoring_samples", ["version_id", "at"])
    op.create_index(
        "ix_monitoring_samples_deployment_at", "monitoring_samples", ["deployment_id", "at"]
    )
    op.create_index("ix_monitoring_samples_request", "monitoring_samples", ["request_id"])
    op.create_table(
        "monitoring_labels",
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("label", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_monitoring_labels")),
    )
    op.create_table(
        "monitoring_alerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=255), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=255), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'resolved')",
            name=op.f("ck_monitoring_alerts_status"),
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_monitoring_alerts_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_alerts")),
    )
    op.create_index(
        "uq_monitoring_alerts_unresolved",
        "monitoring_alerts",
        ["deployment_id", "rule"],
        unique=True,
        sqlite_where=_UNRESOLVED,
        postgresql_where=_UNRESOLVED,
    )
    op.create_index("ix_monitoring_alerts_opened", "monitoring_alerts", ["opened_at"])


def downgrade() -> None:
    op.drop_index("ix_monitoring_alerts_opened", table_name="monitoring_alerts")
    op.drop_index("uq_monitoring_alerts_unresolved", table_name="monitoring_alerts")
    op.drop_table("monitoring_alerts")
    op.drop_table("monitoring_labels")
    op.drop_index("ix_monitoring_samples_request", table_name="monitoring_samples")
    op.drop_index("ix_monitoring_samples_deployment_at", table_name="monitoring_samples")
    op.drop_index("ix_monitoring_samples_version_at", table_name="monitoring_samples")
    op.drop_table("monitoring_samples")
