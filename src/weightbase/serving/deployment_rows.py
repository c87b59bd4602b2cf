"""The catalog side of ``wb.deployments``: finding deployment rows, and rows as records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from weightbase.catalog.schema import (
    DeploymentEventRow,
    DeploymentRow,
    ModelRow,
    ModelVersionRow,
)
from weightbase.errors import NotFound, ValidationError
from weightbase.serving.deployment_checks import check_environment
from weightbase.serving.records import Deployment, DeploymentConfig, DeploymentEvent

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "active_row",
    "deployment_record",
    "event_record",
    "find_active",
    "health_detail",
    "live_model_id",
    "version_of",
]


def live_model_id(session: Session, name: str) -> int:
    found = session.scalar(
        select(ModelRow.id).where(ModelRow.name == name, ModelRow.deleted_at.is_(None))
    )
    if found is None:
        raise NotFound(f"no model named {name!r}", model=name)
    return found


def active_row(session: Session, model_id: int, environment: str) -> DeploymentRow | None:
    return session.scalars(
        select(DeploymentRow)
        .where(
            DeploymentRow.model_id == model_id,
            DeploymentRow.environment == environment,
            DeploymentRow.status != "stopped",
        )
        .with_for_update()
    ).first()


def find_active(
    session: Session, name: str, model_id: int, environment: str | None
) -> DeploymentRow | None:
    if environment is not None:
        check_environment(environment)
        return active_row(session, model_id, environment)
    rows = list(
        session.scalars(
            select(DeploymentRow)
            .where(DeploymentRow.model_id == model_id, DeploymentRow.status != "stopped")
            .order_by(DeploymentRow.environment)
        )
    )
    if len(rows) > 1:
        names = ", ".join(row.environment for row in rows)
        raise ValidationError(
            f"{name} is deployed to {names}: name the environment", field="environment"
        )
    return rows[0] if rows else None


def version_of(session: Session, version_id: int) -> str:
    return session.get_one(ModelVersionRow, version_id).version


def deployment_record(row: DeploymentRow, model: str, version: str) -> Deployment:
    return Deployment(
        id=row.id,
        model=model,
        version=version,
        environment=row.environment,
        config=DeploymentConfig.from_dict(row.config),
        status=row.status,
        replicas=row.replicas,
        created=row.created_at,
        updated=row.updated_at,
        by=row.created_by,
    )


def event_record(row: DeploymentEventRow) -> DeploymentEvent:
    return DeploymentEvent(
        id=row.id,
        deployment_id=row.deployment_id,
        action=row.action,
        status=row.status,
        version=row.version,
        replicas=row.replicas,
        created=row.created_at,
        by=row.created_by,
        reason=row.reason,
        details=dict(row.details or {}),
    )


def health_detail(found: Deployment) -> str:
    if found.status == "pending":
        return "pending: no inference server has reported it running yet"
    if found.status == "stopped":
        return "stopped: undeployed"
    if found.status == "failed":
        return "failed"
    if found.replicas == 0:
        return f"{found.status} with no replicas"
    return f"{found.status} with {found.replicas} replica(s)"
