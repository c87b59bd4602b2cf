"""Users, API tokens, per-model governance, approvals, compliance reports and scan results.

``users`` and ``api_tokens`` (a token's public id and the SHA-256 of its secret,
never the secret) and ``model_governance`` (owner, team, approvers, required
approvals, whether production needs an approval) are ruled by
``weightbase.governance.access``. ``approval_requests`` and ``approval_decisions``
(approvals per model version), ``compliance_reports`` (policies evaluated per
version, with a risk level) and ``scan_results`` (the model-file security scan
per version) are used by the governance work that follows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# Check constraints are named through op.f, so the naming convention does not prefix
# them a second time (0001 to 0004 have ``ck_<table>_ck_<table>_<name>``).


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(none_as_null=True), nullable=False)


def _version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["version_id"],
        ["model_versions.id"],
        name=f"fk_{table}_version_id_model_versions",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        _json("teams"),
        _timestamp("disabled_at", nullable=True),
        _timestamp("created_at"),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "role IN ('viewer', 'editor', 'approver', 'admin')", name=op.f("ck_users_role")
        ),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _timestamp("created_at"),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        _timestamp("last_used_at", nullable=True),
        _timestamp("expires_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        sa.CheckConstraint(
            "length(secret_hash) = 64", name=op.f("ck_api_tokens_secret_hash_length")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_id", name="uq_api_tokens_token_id"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "model_governance",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("team", sa.String(length=255), nullable=True),
        _json("approvers"),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column(
            "require_approval_for_production",
            sa.Boolean(),
            nullable=False,
            server_default=sa.false(),
        ),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "required_approvals >= 0", name=op.f("ck_model_governance_required_approvals")
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_model_governance_model_id_models",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name="fk_model_governance_owner_id_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("model_id", name="pk_model_governance"),
    )
    op.create_index("ix_model_governance_owner_id", "model_governance", ["owner_id"])
    op.create_index("ix_model_governance_team", "model_governance", ["team"])
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        _timestamp("created_at"),
        _timestamp("decided_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')",
            name=op.f("ck_approval_requests_status"),
        ),
        _version_fk("approval_requests"),
        sa.PrimaryKeyConstraint("id", name="pk_approval_requests"),
    )
    op.create_index("ix_approval_requests_status", "approval_requests", ["status", "id"])
    op.create_index(
        "ix_approval_requests_version_status", "approval_requests", ["version_id", "status"]
    )
    op.create_table(
        "approval_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("approver", sa.String(length=255), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        _timestamp("at"),
        sa.CheckConstraint(
            "decision IN ('approved', 'rejected')", name=op.f("ck_approval_decisions_decision")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["approval_requests.id"],
            name="fk_approval_decisions_request_id_approval_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_approval_decisions"),
        sa.UniqueConstraint(
            "request_id", "approver", name="uq_approval_decisions_request_id_approver"
        ),
    )
    op.create_table(
        "compliance_reports",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        _json("report"),
        sa.Column("risk_level", sa.String(length=16), nullable=False),
        _timestamp("created_at"),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "risk_level IN ('low', 'medium', 'high')", name=op.f("ck_compliance_reports_risk_level")
        ),
        _version_fk("compliance_reports"),
        sa.PrimaryKeyConstraint("id", name="pk_compliance_reports"),
    )
    op.create_index("ix_compliance_reports_version", "compliance_reports", ["version_id", "id"])
    op.create_table(
        "scan_results",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        _json("report"),
        sa.Column("clean", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        _version_fk("scan_results"),
        sa.PrimaryKeyConstraint("id", name="pk_scan_results"),
    )
    op.create_index("ix_scan_results_version", "scan_results", ["version_id", "id"])


def downgrade() -> None:
    op.drop_table("scan_results")
    op.drop_table("compliance_reports")
    op.drop_table("approval_decisions")
    op.drop_table("approval_requests")
    op.drop_table("model_governance")
    op.drop_table("api_tokens")
    op.drop_table("users")
