"""The first catalog: models, versions, layers, aliases, tags, metrics, lineage, audit, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in schema.py as they were at this revision; a
# migration must not change meaning when schema.py changes later.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LIVE = sa.text("deleted_at IS NULL")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(none_as_null=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("licence", sa.String(length=255), nullable=True),
        sa.Column("model_card", sa.Text(), nullable=True),
        sa.Column("framework", sa.String(length=64), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
    )
    op.create_index(
        "uq_models_name_live",
        "models",
        ["name"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_index("ix_models_framework", "models", ["framework"])
    op.create_index("ix_models_owner", "models", ["owner"])
    op.create_index("ix_models_updated_at", "models", ["updated_at"])

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("patch", sa.Integer(), nullable=False),
        sa.Column("prerelease", sa.String(length=128), nullable=True),
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("framework", sa.String(length=64), nullable=True),
        sa.Column("model_type", sa.String(length=128), nullable=True),
        sa.Column("num_layers", sa.Integer(), nullable=True),
        sa.Column("hidden_size", sa.Integer(), nullable=True),
        sa.Column("num_attention_heads", sa.Integer(), nullable=True),
        sa.Column("head_dim", sa.Integer(), nullable=True),
        sa.Column("total_params", sa.BigInteger(), nullable=False),
        sa.Column("trainable_params", sa.BigInteger(), nullable=False),
        sa.Column("logical_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        _json("dtypes"),
        _timestamp("created_at"),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        _timestamp("deleted_at", nullable=True),
        sa.CheckConstraint(
            "stage IN ('development', 'staging', 'production', 'deprecated', 'archived')",
            name="ck_model_versions_stage",
        ),
        sa.CheckConstraint(
            "major >= 0 AND minor >= 0 AND patch >= 0", name="ck_model_versions_version_numbers"
        ),
        sa.CheckConstraint("length(snapshot_id) = 64", name="ck_model_versions_snapshot_id_length"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_model_versions_model_id_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
    )
    op.create_index(
        "ix_model_versions_order", "model_versions", ["model_id", "major", "minor", "patch"]
    )
    op.create_index("ix_model_versions_model_created", "model_versions", ["model_id", "created_at"])
    op.create_index("ix_model_versions_snapshot_id", "model_versions", ["snapshot_id"])
    op.create_index("ix_model_versions_stage", "model_versions", ["stage"])
    op.create_index("ix_model_versions_framework", "model_versions", ["framework"])
    op.create_index(
        "ix_model_versions_architecture",
        "model_versions",
        ["model_type", "num_layers", "hidden_size"],
    )

    op.create_table(
        "model_version_layers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("layer_index", sa.Integer(), nullable=False),
        sa.Column("hidden_size", sa.Integer(), nullable=True),
        sa.Column("num_heads", sa.Integer(), nullable=True),
        sa.Column("num_kv_heads", sa.Integer(), nullable=True),
        sa.Column("head_dim", sa.Integer(), nullable=True),
        sa.Column("q_tensor", sa.String(length=512), nullable=True),
        sa.Column("k_tensor", sa.String(length=512), nullable=True),
        sa.Column("v_tensor", sa.String(length=512), nullable=True),
        sa.Column("o_tensor", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_model_version_layers_version_id_model_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_version_layers"),
        sa.UniqueConstraint(
            "version_id", "layer_index", name="uq_model_version_layers_version_id_layer_index"
        ),
    )

    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_aliases_model_id_models", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_aliases_version_id_model_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_aliases"),
        sa.UniqueConstraint("model_id", "alias", name="uq_aliases_model_id_alias"),
    )
    op.create_index("ix_aliases_version_id", "aliases", ["version_id"])
    op.create_index("ix_aliases_alias", "aliases", ["alias"])

    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_kind", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
        sa.UniqueConstraint("entity_kind", "entity_id", "tag", name="uq_tags_entity_tag"),
    )
    op.create_index("ix_tags_kind_tag", "tags", ["entity_kind", "tag", "entity_id"])

    op.create_table(
        "version_metrics",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("dataset", sa.String(length=255), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_version_metrics_version_id_model_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_version_metrics"),
    )
    op.create_index("ix_version_metrics_version_name", "version_metrics", ["version_id", "name"])

    op.create_table(
        "lineage_edges",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("source_kind", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("target_kind", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=255), nullable=False),
        sa.Column("relation", sa.String(length=64), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_edges"),
        sa.UniqueConstraint(
            "source_kind",
            "source_id",
            "target_kind",
            "target_id",
            "relation",
            name="uq_lineage_edges_edge",
        ),
    )
    op.create_index("ix_lineage_edges_target", "lineage_edges", ["target_kind", "target_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", _BIG_ID, nullable=False),
        _timestamp("at"),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("entity_kind", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=255), nullable=False),
        _json("before"),
        _json("after"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_kind", "entity_id", "id"])
    op.create_index("ix_audit_log_action", "audit_log", ["action", "id"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "id"])

    op.create_table(
        "events",
        sa.Column("id", _BIG_ID, nullable=False),
        _timestamp("at"),
        sa.Column("type", sa.String(length=128), nullable=False),
        _json("payload", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_type", "events", ["type", "id"])


def downgrade() -> None:
    # Dependants first; dropping a table drops its indexes.
    for table in (
        "events",
        "audit_log",
        "lineage_edges",
        "version_metrics",
        "tags",
        "aliases",
        "model_version_layers",
        "model_versions",
        "models",
    ):
        op.drop_table(table)
