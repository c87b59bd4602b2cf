"""Deployments: each model version deployed to an environment, and the history of each.

``deployments`` holds one row per deployment: the model and version, the
environment, the whole configuration as JSON, the status and replica count the
service recorded; at most one not ``stopped`` per model and environment (a
partial unique index). ``deployment_events`` holds every change (deploy, scale,
undeploy, status) with who made it and why. Ruled by ``weightbase.serving``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = sa.text("status <> 'stopped'")


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("replicas", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(none_as_null=True), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'scaled', 'stopped', 'failed')",
            name=op.f("ck_deployments_status"),
        ),
        sa.CheckConstraint(
            "environment IN ('development', 'staging', 'production')",
            name=op.f("ck_deployments_env"),
        ),
        sa.CheckConstraint("replicas >= 0", name=op.f("ck_deployments_replicas")),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_deployments_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_deployments_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    op.create_index(
        "uq_deployments_model_env_active",
        "deployments",
        ["model_id", "environment"],
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_index("ix_deployments_model_created", "deployments", ["model_id", "created_at"])
    op.create_index("ix_deployments_version", "deployments", ["version_id"])
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("replicas", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(none_as_null=True), nullable=True),
        _timestamp("created_at"),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "action IN ('deploy', 'scale', 'undeploy', 'status')",
            name=op.f("ck_deployment_events_action"),
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_events_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_events")),
    )
    op.create_index("ix_deployment_events_deployment", "deployment_events", ["deployment_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_deployment_events_deployment", table_name="deployment_events")
    op.drop_table("deployment_events")
    op.drop_index("ix_deployments_version", table_name="deployments")
    op.drop_index("ix_deployments_model_created", table_name="deployments")
    op.drop_index("uq_deployments_model_env_active", table_name="deployments")
    op.drop_table("deployments")
