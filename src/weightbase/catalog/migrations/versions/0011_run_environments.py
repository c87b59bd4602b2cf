"""Run environments: each run's reproducibility record and the seeds set through weightbase.

``run_environments`` holds one row per run that recorded one: ``record`` is
the JSON of what the run was started with (git commit and state, Python,
installed packages, command line, host, hardware), NULL for a run that opted
out; ``seeds`` the JSON object of seeds set through weightbase. Written by
``weightbase.tracking.environment_rows``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_environments",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("record", sa.Text(), nullable=True),
        sa.Column("seeds", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_environments_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_run_environments"),
    )


def downgrade() -> None:
    op.drop_table("run_environments")
