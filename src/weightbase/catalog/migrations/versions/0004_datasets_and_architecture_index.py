"""Datasets and their versions; an index for listing models by architecture.

Dataset versions keep a content snapshot, statistics, quality, splits and
preprocessing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("deleted_at IS NULL")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(none_as_null=True), nullable=True)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("licence", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("format", sa.String(length=32), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
    )
    op.create_index(
        "uq_datasets_name_live",
        "datasets",
        ["name"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_index("ix_datasets_kind_format", "datasets", ["kind", "format"])
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("patch", sa.Integer(), nullable=False),
        sa.Column("prerelease", sa.String(length=128), nullable=True),
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("sample_count", sa.BigInteger(), nullable=False),
        sa.Column("logical_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        _json("statistics"),
        sa.Column("quality_score", sa.Double(), nullable=True),
        _json("quality"),
        _json("splits"),
        sa.Column("splits_snapshot_id", sa.String(length=64), nullable=True),
        _json("preprocessing"),
        sa.Column("description", sa.Text(), nullable=True),
        _timestamp("created_at"),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        _timestamp("deleted_at", nullable=True),
        sa.CheckConstraint(
            "length(snapshot_id) = 64", name="ck_dataset_versions_snapshot_id_length"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_dataset_versions_dataset_id_datasets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_id_version"),
    )
    op.create_index(
        "ix_dataset_versions_order",
        "dataset_versions",
        ["dataset_id", "major", "minor", "patch"],
    )
    op.create_index(
        "ix_dataset_versions_content", "dataset_versions", ["dataset_id", "content_digest"]
    )
    op.create_index("ix_dataset_versions_snapshot_id", "dataset_versions", ["snapshot_id"])
    op.create_index(
        "ix_model_versions_live_type",
        "model_versions",
        ["model_type", "model_id"],
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_model_versions_live_type", table_name="model_versions")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
