"""The deployments' tables: each model version deployed to an environment, and its history.

Rows only; :mod:`weightbase.serving` owns the rules (which configurations are valid,
what production needs, how a deployment moves from one status to the next).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from weightbase.catalog.base import Base, BigId, utcnow

__all__ = ["DEPLOYMENT_ACTIONS", "DEPLOYMENT_STATUSES", "DeploymentEventRow", "DeploymentRow"]

#: Where a deployment stands; ``stopped`` ones no longer hold their environment.
DEPLOYMENT_STATUSES = ("pending", "running", "scaled", "stopped", "failed")
#: What changed, per history row.
DEPLOYMENT_ACTIONS = ("deploy", "scale", "undeploy", "status")

# One deployment of a model per environment at a time: a stopped one frees its place.
_ACTIVE = text("status <> 'stopped'")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class DeploymentRow(Base):
    """A model version deployed to an environment: its configuration and recorded state."""

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    replicas: Mapped[int] = mapped_column(Integer, default=0)
    # The whole DeploymentConfig, as its to_dict() writes it.
    config: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint(_in("status", DEPLOYMENT_STATUSES), name="status"),
        CheckConstraint(_in("environment", ("development", "staging", "production")), name="env"),
        CheckConstraint("replicas >= 0", name="replicas"),
        Index(
            "uq_deployments_model_env_active",
            "model_id",
            "environment",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        Index("ix_deployments_model_created", "model_id", "created_at"),
        Index("ix_deployments_version", "version_id"),
    )


class DeploymentEventRow(Base):
    """One change in a deployment's life: what, by whom, why, and the state it left."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(128))
    replicas: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint(_in("action", DEPLOYMENT_ACTIONS), name="action"),
        Index("ix_deployment_events_deployment", "deployment_id", "id"),
    )
