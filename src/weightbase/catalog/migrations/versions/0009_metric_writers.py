"""Metric writers: the highest batch sequence stored per writer of a run.

``metric_writers`` holds, for each (run, writer id), the sequence number of the
last metric batch stored from that writer (a remote run's background sender).
It is updated in the transaction that stores the batch's points, so a batch
sent again after a lost answer is recognised and not stored twice. Written by
``weightbase.tracking.metrics``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_writers",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("writer_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_metric_writers_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "writer_id", name="pk_metric_writers"),
    )


def downgrade() -> None:
    op.drop_table("metric_writers")
