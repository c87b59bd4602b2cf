"""Inference records: what each served model did, window by window, and its sessions.

``inference_metrics`` holds one row per served model, server and window of
``metricsInterval``: requests, errors, latency percentiles, throughput, tokens,
memory, response-cache and key/value-prefix hits and misses. ``inference_sessions``
holds one row per server, model version, operation and set of sampling parameters
(temperature, top_k, top_p, max_tokens, stop, seed) with its request and token
counts. Both point at the deployment they served, where there was one. Written by
``weightbase serve`` through ``weightbase.serving``.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _count(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def _owners(table: str) -> list[sa.Column[object] | sa.ForeignKeyConstraint]:
    return [
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.String(length=32), nullable=True),
        sa.Column("server_id", sa.String(length=32), nullable=False),
        sa.Column("served_as", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f(f"fk_{table}_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"],
            name=op.f(f"fk_{table}_version_id_model_versions"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"], ["deployments.id"],
            name=op.f(f"fk_{table}_deployment_id_deployments"), ondelete="SET NULL",
        ),
    ]  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "inference_metrics",
        sa.Column("id", _BIG_ID, nullable=False),
        *_owners("inference_metrics"),
        _timestamp("started_at"),
        _timestamp("ended_at"),
        _count("requests"),
        _count("errors"),
        sa.Column("latency_p50_ms", sa.Double(), nullable=True),
        sa.Column("latency_p95_ms", sa.Double(), nullable=True),
        sa.Column("latency_p99_ms", sa.Double(), nullable=True),
        sa.Column("throughput_rps", sa.Double(), nullable=False),
        _count("tokens"),
        sa.Column("tokens_per_s", sa.Double(), nullable=True),
        _count("memory_bytes"),
        _count("cache_hits"),
        _count("cache_misses"),
        _count("kv_prefix_hits"),
        _count("kv_prefix_misses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_metrics")),
    )
    op.create_index(
        "ix_inference_metrics_version_ended", "inference_metrics", ["version_id", "ended_at"]
    )
    op.create_index(
        "ix_inference_metrics_deployment_ended", "inference_metrics", ["deployment_id", "ended_at"]
    )
    op.create_table(
        "inference_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_owners("inference_sessions"),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("temperature", sa.Double(), nullable=True),
        sa.Column("top_k", sa.Integer(), nullable=True),
        sa.Column("top_p", sa.Double(), nullable=True),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("stop", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        _count("requests"),
        _count("tokens"),
        _timestamp("started_at"),
        _timestamp("last_request_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_sessions")),
    )
    op.create_index(
        "ix_inference_sessions_version_last",
        "inference_sessions",
        ["version_id", "last_request_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_inference_sessions_version_last", table_name="inference_sessions")
    op.drop_table("inference_sessions")
    op.drop_index("ix_inference_metrics_deployment_ended", table_name="inference_metrics")
    op.drop_index("ix_inference_metrics_version_ended", table_name="inference_metrics")
    op.drop_table("inference_metrics")
