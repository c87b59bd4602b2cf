"""Ethics reviews and explanations of model versions.

``ethics_reviews`` holds a reviewer's signed-off answers to an ethics
questionnaire on a version: the questionnaire's name and digest, the answers,
the decision (approved, concerns, rejected), notes, and a sign-off digest over
all of it. ``explanations`` holds feature attributions of a tabular model: mean
|attribution| per feature, the explainer and its library version, and how many
rows were explained against how large a background. Ruled by
``weightbase.governance.ethics`` and ``weightbase.governance.explain``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["version_id"],
        ["model_versions.id"],
        name=f"fk_{table}_version_id_model_versions",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "ethics_reviews",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=255), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("questionnaire", sa.String(length=255), nullable=False),
        sa.Column("questionnaire_digest", sa.String(length=64), nullable=False),
        sa.Column("answers", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("signoff_digest", sa.String(length=64), nullable=False),
        _timestamp("reviewed_at"),
        sa.CheckConstraint(
            "decision IN ('approved', 'concerns', 'rejected')",
            name=op.f("ck_ethics_reviews_decision"),
        ),
        _version_fk("ethics_reviews"),
        sa.PrimaryKeyConstraint("id", name="pk_ethics_reviews"),
    )
    op.create_index("ix_ethics_reviews_version", "ethics_reviews", ["version_id", "id"])
    op.create_table(
        "explanations",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=128), nullable=False),
        sa.Column("library_version", sa.String(length=64), nullable=False),
        sa.Column("attributions", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("background_size", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=255), nullable=True),
        _timestamp("created_at"),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        _version_fk("explanations"),
        sa.PrimaryKeyConstraint("id", name="pk_explanations"),
    )
    op.create_index("ix_explanations_version", "explanations", ["version_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_explanations_version", table_name="explanations")
    op.drop_table("explanations")
    op.drop_index("ix_ethics_reviews_version", table_name="ethics_reviews")
    op.drop_table("ethics_reviews")
