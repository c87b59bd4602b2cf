"""Model versions keep their content digest and full analysis; layers know their stack.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("content_digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("analysis", sa.JSON(none_as_null=True), nullable=True))
        batch.create_index("ix_model_versions_content", ["model_id", "content_digest"])
    with op.batch_alter_table("model_version_layers") as batch:
        batch.add_column(
            sa.Column("stack", sa.String(length=255), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("fused_qkv", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.drop_constraint("uq_model_version_layers_version_id_layer_index", type_="unique")
        batch.create_unique_constraint(
            "uq_model_version_layers_version_id_stack_layer_index",
            ["version_id", "stack", "layer_index"],
        )
        batch.create_index(
            "ix_model_version_layers_shape", ["num_heads", "head_dim", "hidden_size"]
        )


def downgrade() -> None:
    with op.batch_alter_table("model_version_layers") as batch:
        batch.drop_index("ix_model_version_layers_shape")
        batch.drop_constraint(
            "uq_model_version_layers_version_id_stack_layer_index", type_="unique"
        )
        batch.create_unique_constraint(
            "uq_model_version_layers_version_id_layer_index", ["version_id", "layer_index"]
        )
        batch.drop_column("fused_qkv")
        batch.drop_column("stack")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_index("ix_model_versions_content")
        batch.drop_column("analysis")
        batch.drop_column("content_digest")
