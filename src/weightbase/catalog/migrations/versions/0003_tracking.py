"""Experiment tracking: experiments, runs, params, metric keys, blocks, summaries, artifacts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in schema.py as they were at this revision.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["runs.id"], name=f"fk_{table}_run_id_runs", ondelete="CASCADE"
    )


def _key_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["key_id"], ["metric_keys.id"], name=f"fk_{table}_key_id_metric_keys", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _timestamp("created_at"),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
    )

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        _timestamp("started_at"),
        _timestamp("updated_at"),
        _timestamp("ended_at", nullable=True),
        sa.Column("cpu_seconds", sa.Double(), nullable=False),
        sa.Column("gpu_seconds", sa.Double(), nullable=False),
        sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("storage_bytes", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'paused', 'completed', 'failed', 'cancelled')",
            name="ck_runs_status",
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_runs_experiment_id_experiments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_experiment", "runs", ["experiment_id", "id"])
    op.create_index("ix_runs_status", "runs", ["status", "id"])

    op.create_table(
        "run_params",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _run_fk("run_params"),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_run_params"),
    )
    op.create_index("ix_run_params_key", "run_params", ["key", "run_id"])

    op.create_table(
        "metric_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metric_keys"),
        sa.UniqueConstraint("name", name="uq_metric_keys_name"),
    )

    op.create_table(
        "metric_blocks",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("nonfinite", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("epochs", sa.LargeBinary(), nullable=True),
        sa.Column("times", sa.LargeBinary(), nullable=False),
        sa.Column("metric_values", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "count > 0 AND nonfinite >= 0 AND nonfinite <= count", name="ck_metric_blocks_counts"
        ),
        _run_fk("metric_blocks"),
        _key_fk("metric_blocks"),
        sa.PrimaryKeyConstraint("id", name="pk_metric_blocks"),
    )
    op.create_index("ix_metric_blocks_series", "metric_blocks", ["run_id", "key_id", "id"])

    op.create_table(
        "run_metrics",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("nonfinite", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("last_time", sa.Double(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=True),
        sa.Column("last_flag", sa.Integer(), nullable=False),
        sa.Column("min_value", sa.Double(), nullable=True),
        sa.Column("max_value", sa.Double(), nullable=True),
        _run_fk("run_metrics"),
        _key_fk("run_metrics"),
        sa.PrimaryKeyConstraint("run_id", "key_id", name="pk_run_metrics"),
    )
    op.create_index("ix_run_metrics_key_value", "run_metrics", ["key_id", "last_value"])

    op.create_table(
        "run_artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint("kind IN ('tensors', 'file', 'folder')", name="ck_run_artifacts_kind"),
        _run_fk("run_artifacts"),
        sa.PrimaryKeyConstraint("id", name="pk_run_artifacts"),
        sa.UniqueConstraint("run_id", "name", name="uq_run_artifacts_run_id_name"),
    )
    op.create_index("ix_run_artifacts_snapshot_id", "run_artifacts", ["snapshot_id"])


def downgrade() -> None:
    # Run tags live in the shared ``tags`` table; drop them with their runs.
    op.execute(sa.text("DELETE FROM tags WHERE entity_kind = 'run'"))
    for table in (
        "run_artifacts",
        "run_metrics",
        "metric_blocks",
        "metric_keys",
        "run_params",
        "runs",
        "experiments",
    ):
        op.drop_table(table)
