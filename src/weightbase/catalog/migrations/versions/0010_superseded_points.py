"""Superseded metric points: blocks a resumed run's dead attempt logged after its checkpoint.

``metric_blocks.superseded`` marks a block whose points were logged past the
checkpoint a run later resumed from: they are kept, but history and summaries
leave them out unless asked, so a resumed run's curves hold one point per step.
Written by ``weightbase.tracking.metrics``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("metric_blocks") as batch:
        batch.add_column(
            sa.Column("superseded", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("metric_blocks") as batch:
        batch.drop_column("superseded")
