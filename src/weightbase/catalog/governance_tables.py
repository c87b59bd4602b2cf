"""The governance tables: users, API tokens, per-model ownership, approvals, reports, scans.

Rows only, owned by ``weightbase.governance``: ``governance.access`` rules
users, tokens and ownership; approvals, compliance reports and scan results
are written by the governance work that follows (migration ``0005``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from weightbase.catalog.base import Base, BigId, utcnow

__all__ = [
    "APPROVAL_DECISIONS",
    "APPROVAL_STATUSES",
    "RISK_LEVELS",
    "ROLES",
    "ApiTokenRow",
    "ApprovalDecisionRow",
    "ApprovalRequestRow",
    "ComplianceReportRow",
    "ModelGovernanceRow",
    "ScanResultRow",
    "UserRow",
]

#: The roles a user can have, from the least to the most it may do.
ROLES = ("viewer", "editor", "approver", "admin")
#: The states of an approval request; ``pending`` until it is decided.
APPROVAL_STATUSES = ("pending", "approved", "rejected")
#: What one approver can decide on a request.
APPROVAL_DECISIONS = ("approved", "rejected")
#: The risk levels a compliance report can give a version.
RISK_LEVELS = ("low", "medium", "high")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class UserRow(Base):
    """A person or a service that signs in with API tokens. Disabled, never deleted."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    # The teams the user belongs to, by name; a model's team lets its members change it.
    teams: Mapped[list[Any]] = mapped_column(default=list)
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        UniqueConstraint("name", name="uq_users_name"),
        CheckConstraint(_one_of("role", ROLES), name="role"),
    )


class ApiTokenRow(Base):
    """An API token of a user: its public id and the SHA-256 of its secret, never the secret."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The short public part of the token (``wb_<token_id>_<secret>``), safe to show and log.
    token_id: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("token_id", name="uq_api_tokens_token_id"),
        CheckConstraint("length(secret_hash) = 64", name="secret_hash_length"),
        Index("ix_api_tokens_user_id", "user_id"),
    )


class ModelGovernanceRow(Base):
    """Who owns a model, which team may change it, who approves it and how many must."""

    __tablename__ = "model_governance"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team: Mapped[str | None] = mapped_column(String(255))
    # User names of the approvers of this model's approval requests.
    approvers: Mapped[list[Any]] = mapped_column(default=list)
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    require_approval_for_production: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("required_approvals >= 0", name="required_approvals"),
        Index("ix_model_governance_owner_id", "owner_id"),
        Index("ix_model_governance_team", "team"),
    )


class ApprovalRequestRow(Base):
    """A request that a model version be approved (for production, say), and its outcome."""

    __tablename__ = "approval_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    requested_by: Mapped[str] = mapped_column(String(255))
    # What the approval is for (``production``) and why it is asked.
    target: Mapped[str | None] = mapped_column(String(128))
    comment: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(_one_of("status", APPROVAL_STATUSES), name="status"),
        Index("ix_approval_requests_version_status", "version_id", "status"),
        Index("ix_approval_requests_status", "status", "id"),
    )


class ApprovalDecisionRow(Base):
    """One approver's decision on an approval request, with a comment."""

    __tablename__ = "approval_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id", ondelete="CASCADE"))
    approver: Mapped[str] = mapped_column(String(255))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "request_id", "approver", name="uq_approval_decisions_request_id_approver"
        ),
        CheckConstraint(_one_of("decision", APPROVAL_DECISIONS), name="decision"),
    )


class ComplianceReportRow(Base):
    """A model version's policies evaluated at one moment: the report and its risk level."""

    __tablename__ = "compliance_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    report: Mapped[dict[str, Any]]
    risk_level: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint(_one_of("risk_level", RISK_LEVELS), name="risk_level"),
        Index("ix_compliance_reports_version", "version_id", "id"),
    )


class ScanResultRow(Base):
    """A security scan of a model version's files: the findings and whether it is clean."""

    __tablename__ = "scan_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    report: Mapped[dict[str, Any]]
    clean: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_scan_results_version", "version_id", "id"),)
