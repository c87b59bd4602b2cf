"""Training checkpoints: each checkpoint a run stored, as a catalog fact.

``checkpoints`` holds one row per checkpoint of a run: its store ref (unique),
step, epoch, the metrics at that point, the snapshot id, the bytes it stored, and
whether retention kept or pruned it (and when). The store ref keeps a kept
checkpoint's content alive; a pruned one keeps its row as history. Written by
``weightbase.training``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("metrics", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('kept', 'pruned')", name=op.f("ck_checkpoints_status")),
        sa.CheckConstraint("step >= 0", name=op.f("ck_checkpoints_step")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_checkpoints_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
    )
    op.create_index("uq_checkpoints_ref", "checkpoints", ["ref"], unique=True)
    op.create_index("ix_checkpoints_run_step", "checkpoints", ["run_id", "step"])


def downgrade() -> None:
    op.drop_index("ix_checkpoints_run_step", table_name="checkpoints")
    op.drop_index("uq_checkpoints_ref", table_name="checkpoints")
    op.drop_table("checkpoints")
