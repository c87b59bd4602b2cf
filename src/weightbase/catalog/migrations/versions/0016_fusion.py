"""Fusion reactors: ensembles and cascades of served models, and their operations.

``reactors`` holds one row per reactor: a unique name, its strategy (weighted_average,
majority_vote, stacking, parallel, cascade), its members (model refs or deployment
names, each with a role, weight and priority) and interaction graph (edges
feeds_into/validates/augments) as JSON, a cascade's confidence threshold, and the
stacking combiner's snapshot id and description. ``reactor_operations`` logs each
fusion operation: the members that answered with a summary of their outputs and
latencies, the fused answer, how many inputs escalated, and the total latency.
Ruled by ``weightbase.serving.fusion``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reactors",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("members", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("edges", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("stacker_snapshot_id", sa.String(length=128), nullable=True),
        sa.Column("stacker", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "strategy IN ('weighted_average', 'majority_vote', 'stacking', 'parallel', 'cascade')",
            name=op.f("ck_reactors_strategy"),
        ),
        sa.CheckConstraint(
            "threshold IS NULL OR (threshold >= 0 AND threshold <= 1)",
            name=op.f("ck_reactors_threshold"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reactors")),
        sa.UniqueConstraint("name", name=op.f("uq_reactors_name")),
    )
    op.create_table(
        "reactor_operations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("reactor_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("members", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("result", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("escalated", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.CheckConstraint("batch_size >= 0", name=op.f("ck_reactor_operations_batch_size")),
        sa.CheckConstraint("escalated >= 0", name=op.f("ck_reactor_operations_escalated")),
        sa.ForeignKeyConstraint(
            ["reactor_id"],
            ["reactors.id"],
            name=op.f("fk_reactor_operations_reactor_id_reactors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reactor_operations")),
    )
    op.create_index("ix_reactor_operations_reactor_at", "reactor_operations", ["reactor_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_reactor_operations_reactor_at", table_name="reactor_operations")
    op.drop_table("reactor_operations")
    op.drop_table("reactors")
