"""A/B tests: each test, and the running sums of its outcomes.

``ab_tests`` holds one row per test: its variants (model versions or deployments,
the first is control) as JSON, the bucket allocation as JSON (so a reweight keeps
units where they were), the weights of each stretch of traffic with the outcomes
counted when it began, the salt, the primary metric and guardrails, the planned
size, start and stop, the decision and winner; one ``running`` test per name (a
partial unique index). ``ab_test_stats`` holds per test, variant and metric the
count, sum and sum of squares of the outcomes, updated with each batch, and the
running minimum of the always-valid p-value. Ruled by ``weightbase.serving``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_table(
        "ab_tests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("variants", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("allocation", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("weight_periods", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("salt", sa.String(length=255), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("metric_kind", sa.String(length=16), nullable=False),
        sa.Column("higher_is_better", sa.Boolean(), nullable=False),
        sa.Column("guardrails", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("planned_units", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("winner", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.CheckConstraint("status IN ('running', 'stopped')", name=op.f("ck_ab_tests_status")),
        sa.CheckConstraint(
            "metric_kind IN ('binary', 'continuous')", name=op.f("ck_ab_tests_metric_kind")
        ),
        sa.CheckConstraint(
            "planned_units IS NULL OR planned_units > 0", name=op.f("ck_ab_tests_planned_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_tests")),
    )
    op.create_index(
        "uq_ab_tests_name_running",
        "ab_tests",
        ["name"],
        unique=True,
        sqlite_where=_RUNNING,
        postgresql_where=_RUNNING,
    )
    op.create_index("ix_ab_tests_started", "ab_tests", ["started_at"])
    op.create_table(
        "ab_test_stats",
        sa.Column("test_id", sa.String(length=32), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.Column("total_squares", sa.Double(), nullable=False),
        sa.Column("min_p_value", sa.Double(), nullable=True),
        sa.Column("looks", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_ab_test_stats_count")),
        sa.ForeignKeyConstraint(
            ["test_id"],
            ["ab_tests.id"],
            name=op.f("fk_ab_test_stats_test_id_ab_tests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("test_id", "variant", "metric", name=op.f("pk_ab_test_stats")),
    )


def downgrade() -> None:
    op.drop_table("ab_test_stats")
    op.drop_index("ix_ab_tests_started", table_name="ab_tests")
    op.drop_index("uq_ab_tests_name_running", table_name="ab_tests")
    op.drop_table("ab_tests")
