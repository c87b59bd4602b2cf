"""``wb.deployments``: model versions deployed to environments, scaled, stopped, and their history.

    wb.deployments.deploy("digits@1.2.0", environment="staging",
                          config={"batchSize": 32, "scaling": {"minReplicas": 2, "maxReplicas": 8}})
    wb.deployments.scale("digits", 4, environment="staging")
    wb.deployments.status("digits").status         # "pending" until a server reports it
    wb.deployments.undeploy("digits", environment="staging", reason="replaced")

A model has at most one deployment per environment that is not ``stopped``;
deploying again to that environment changes its version and configuration in
place (a rolling update). A deployment records intent and state: it starts
``pending``, and the inference server that runs it reports ``running`` or
``failed`` through :meth:`Deployments.set_status`; ``scale`` leaves it ``scaled``,
``undeploy`` ``stopped``. Deploying to ``production`` needs what moving a version
into the production stage needs: the governance approval check the workspace
passes in (``weightbase.governance.approvals.production_guard``). Every change is
audited on the model, emitted as an event and kept in the deployment's history.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weightbase.catalog.schema import (
    DeploymentEventRow,
    DeploymentRow,
    ModelRow,
    ModelVersionRow,
    utcnow,
)
from weightbase.errors import NotFound, ValidationError
from weightbase.serving.deployment_checks import (
    ConfigLike,
    check_environment,
    check_reason,
    model_name,
    resolve_config,
    version_ref,
)
from weightbase.serving.deployment_rows import (
    active_row,
    deployment_record,
    event_record,
    find_active,
    health_detail,
    live_model_id,
    version_of,
)
from weightbase.serving.records import (
    STATUSES,
    Deployment,
    DeploymentConfig,
    DeploymentEvent,
    DeploymentHealth,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.registry import ModelRegistry

__all__ = ["ConfigLike", "Deployments", "ProductionGuard"]

#: The check a version must pass to enter production (governance's ``production_guard``).
ProductionGuard = Callable[["Session", int, ModelVersionRow], None]
#: The statuses an inference server (or an operator) reports; the others follow a verb.
REPORTED = ("pending", "running", "failed")


class Deployments:
    """Deployments of model versions: the configuration asked for and the state recorded."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        recorder: ChangeRecorder,
        models: ModelRegistry,
        guard: ProductionGuard | None = None,
    ) -> None:
        self._catalog = catalog
        self._recorder = recorder
        self._models = models
        self._guard = guard

    # -- changes ---------------------------------------------------------------------

    def deploy(
        self,
        model_ref: str,
        *,
        environment: str | None = None,
        config: ConfigLike = None,
        reason: str | None = None,
    ) -> Deployment:
        """Deploy ``model_ref`` (``name@version`` or ``name@alias``) to ``environment``.

        ``environment`` defaults to the configuration's, then ``development``. A
        deployment of the model already in that environment is updated in place;
        otherwise a new one starts ``pending`` with ``scaling.min_replicas`` replicas.
        ``production`` needs an approved request where the model's policy asks for one
        (``ApprovalRequired``); a bad configuration is a ``ValidationError`` naming the field.
        """
        chosen = resolve_config(config, environment)
        check_reason(reason)
        version_ref(model_ref)
        found = self._models.version(model_ref)
        who = self._recorder.actor

        def work(session: Session) -> Deployment:
            # Deploys of one model take turns (PostgreSQL locks its row; SQLite's write
            # transaction holds the database), so a racing deploy to the same environment
            # finds the first one's row and updates it instead of colliding on the index.
            session.execute(
                select(ModelRow.id).where(ModelRow.id == found.model_id).with_for_update()
            )
            version_row = session.get_one(ModelVersionRow, found.id)
            if chosen.environment == "production" and self._guard is not None:
                self._guard(session, found.model_id, version_row)
            row = active_row(session, found.model_id, chosen.environment)
            now = utcnow()
            previous = None if row is None else version_of(session, row.version_id)
            if row is None:
                row = DeploymentRow(
                    id=uuid.uuid4().hex,
                    model_id=found.model_id,
                    created_at=now,
                    created_by=who,
                    environment=chosen.environment,
                )
                session.add(row)
            row.version_id = found.id
            row.config = chosen.to_dict()
            row.status = "pending"
            row.replicas = chosen.scaling.min_replicas
            row.updated_at = now
            session.flush()
            details: dict[str, Any] = {"config": row.config}
            if previous is not None:
                details["previous_version"] = previous
            self._change(
                session,
                row,
                found.model,
                found.version,
                "deploy",
                reason,
                details,
                event="deployment_created" if previous is None else "deployment_updated",
            )
            return deployment_record(row, found.model, found.version)

        return self._catalog.write(work)

    def scale(
        self,
        model: str,
        replicas: int | None = None,
        *,
        environment: str | None = None,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Set the replica count of ``model``'s deployment, and its scaling range if given.

        ``replicas`` must lie within ``scaling.min_replicas``…``max_replicas`` (after
        the new bounds); without it the count is kept, moved into the new range.
        """
        if replicas is None and min_replicas is None and max_replicas is None:
            raise ValidationError("scale needs replicas, min_replicas or max_replicas")
        check_reason(reason)
        name = model_name(model)

        def work(session: Session) -> Deployment:
            row = self._require_active(session, name, environment)
            current = DeploymentConfig.from_dict(row.config)
            bounds = {
                key: value
                for key, value in (("min_replicas", min_replicas), ("max_replicas", max_replicas))
                if value is not None
            }
            config = current.merged({"scaling": bounds}) if bounds else current
            low, high = config.scaling.min_replicas, config.scaling.max_replicas
            if replicas is None:
                wanted = min(max(row.replicas, low), high)
            else:
                if isinstance(replicas, bool) or not isinstance(replicas, int):
                    raise ValidationError(
                        f"replicas must be a whole number, not {replicas!r}", field="replicas"
                    )
                wanted = replicas
            if not low <= wanted <= high:
                raise ValidationError(
                    f"replicas must be between {low} and {high} (scaling.min_replicas and "
                    f"scaling.max_replicas), not {wanted}; pass min_replicas or max_replicas "
                    "to change the range",
                    field="replicas",
                )
            details: dict[str, Any] = {"previous_replicas": row.replicas, "replicas": wanted}
            if bounds:
                details["scaling"] = config.scaling.to_dict()
            row.config = config.to_dict()
            row.replicas = wanted
            row.status = "scaled"
            row.updated_at = utcnow()
            version = version_of(session, row.version_id)
            self._change(
                session, row, name, version, "scale", reason, details, event="deployment_scaled"
            )
            return deployment_record(row, name, version)

        return self._catalog.write(work)

    def undeploy(
        self, model: str, *, environment: str | None = None, reason: str | None = None
    ) -> Deployment:
        """Stop ``model``'s deployment (in ``environment``): ``stopped``, no replicas.

        The environment is free again; the stopped deployment stays in the history.
        """
        check_reason(reason)
        name = model_name(model)

        def work(session: Session) -> Deployment:
            row = self._require_active(session, name, environment)
            previous = row.status
            row.status = "stopped"
            row.replicas = 0
            row.updated_at = utcnow()
            version = version_of(session, row.version_id)
            details = {"previous_status": previous}
            self._change(
                session, row, name, version, "undeploy", reason, details, event="deployment_stopped"
            )
            return deployment_record(row, name, version)

        return self._catalog.write(work)

    def set_status(
        self,
        model: str,
        status: str,
        *,
        environment: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Record what the inference server reports: ``pending``, ``running`` or ``failed``.

        ``scaled`` and ``stopped`` follow :meth:`scale` and :meth:`undeploy` only.
        """
        if status not in REPORTED:
            raise ValidationError(
                f"status must be one of {', '.join(REPORTED)}, not {status!r} "
                "(scale and undeploy set the others)",
                field="status",
            )
        check_reason(reason)
        name = model_name(model)

        def work(session: Session) -> Deployment:
            row = self._require_active(session, name, environment)
            previous = row.status
            row.status = status
            row.updated_at = utcnow()
            version = version_of(session, row.version_id)
            details = {"previous_status": previous}
            self._change(
                session,
                row,
                name,
                version,
                "status",
                reason,
                details,
                event="deployment_status_changed",
            )
            return deployment_record(row, name, version)

        return self._catalog.write(work)

    # -- reads -----------------------------------------------------------------------

    def status(self, model: str, *, environment: str | None = None) -> Deployment:
        """``model``'s deployment (in ``environment``): the active one, else the latest stopped.

        Without ``environment`` the model must be deployed to one environment only.
        """
        name = model_name(model)
        with self._catalog.session() as session:
            model_id = live_model_id(session, name)
            row = find_active(session, name, model_id, environment)
            if row is None:
                query = select(DeploymentRow).where(DeploymentRow.model_id == model_id)
                if environment is not None:
                    query = query.where(DeploymentRow.environment == environment)
                row = session.scalars(
                    query.order_by(DeploymentRow.updated_at.desc(), DeploymentRow.id).limit(1)
                ).first()
            if row is None:
                where = f" to {environment}" if environment else ""
                raise NotFound(f"{name} was never deployed{where}", model=name)
            return deployment_record(row, name, version_of(session, row.version_id))

    def health(self, model: str, *, environment: str | None = None) -> DeploymentHealth:
        """Whether ``model``'s deployment serves, as its recorded status says, and why not."""
        found = self.status(model, environment=environment)
        healthy = found.status in ("running", "scaled") and found.replicas > 0
        detail = health_detail(found)
        if found.status == "failed":
            reasons = [e.reason for e in self.history(model, environment=found.environment)]
            last = next((reason for reason in reversed(reasons) if reason), None)
            if last:
                detail = f"{detail}: {last}"
        return DeploymentHealth(
            deployment_id=found.id,
            model=found.model,
            version=found.version,
            environment=found.environment,
            status=found.status,
            replicas=found.replicas,
            healthy=healthy,
            detail=detail,
        )

    def history(
        self, model: str, *, environment: str | None = None
    ) -> builtins.list[DeploymentEvent]:
        """Every change to ``model``'s deployments (in ``environment``), oldest first."""
        name = model_name(model)
        if environment is not None:
            check_environment(environment)
        with self._catalog.session() as session:
            model_id = live_model_id(session, name)
            query = (
                select(DeploymentEventRow)
                .join(DeploymentRow, DeploymentRow.id == DeploymentEventRow.deployment_id)
                .where(DeploymentRow.model_id == model_id)
                .order_by(DeploymentEventRow.id)
            )
            if environment is not None:
                query = query.where(DeploymentRow.environment == environment)
            return [event_record(row) for row in session.scalars(query)]

    def list(
        self,
        *,
        model: str | None = None,
        environment: str | None = None,
        status: str | None = None,
        include_stopped: bool = False,
    ) -> builtins.list[Deployment]:
        """Deployments, newest first; stopped ones only with ``include_stopped`` (or
        ``status="stopped"``)."""
        if environment is not None:
            check_environment(environment)
        if status is not None and status not in STATUSES:
            raise ValidationError(
                f"status must be one of {', '.join(STATUSES)}, not {status!r}", field="status"
            )
        query = (
            select(DeploymentRow, ModelRow.name, ModelVersionRow.version)
            .join(ModelRow, ModelRow.id == DeploymentRow.model_id)
            .join(ModelVersionRow, ModelVersionRow.id == DeploymentRow.version_id)
            .where(ModelRow.deleted_at.is_(None))  # a deleted model serves nothing
            .order_by(DeploymentRow.created_at.desc(), DeploymentRow.id)
        )
        if model is not None:
            query = query.where(ModelRow.name == model_name(model))
        if environment is not None:
            query = query.where(DeploymentRow.environment == environment)
        if status is not None:
            query = query.where(DeploymentRow.status == status)
        elif not include_stopped:
            query = query.where(DeploymentRow.status != "stopped")
        with self._catalog.session() as session:
            return [
                deployment_record(row, name, version)
                for row, name, version in session.execute(query)
            ]

    # -- helpers ---------------------------------------------------------------------

    def _require_active(
        self, session: Session, name: str, environment: str | None
    ) -> DeploymentRow:
        row = find_active(session, name, live_model_id(session, name), environment)
        if row is None:
            where = f" in {environment}" if environment else ""
            raise NotFound(f"{name} has no active deployment{where}", model=name)
        return row

    def _change(
        self,
        session: Session,
        row: DeploymentRow,
        model: str,
        version: str,
        action: str,
        reason: str | None,
        details: dict[str, Any],
        *,
        event: str,
    ) -> None:
        """The history row, the audit entry on the model and the event of one change."""
        who = self._recorder.actor
        session.add(
            DeploymentEventRow(
                deployment_id=row.id,
                action=action,
                status=row.status,
                version=version,
                replicas=row.replicas,
                reason=reason,
                details=details,
                created_by=who,
            )
        )
        after = {
            "deployment": row.id,
            "model": model,
            "version": version,
            "environment": row.environment,
            "status": row.status,
            "replicas": row.replicas,
        }
        self._recorder.record(
            session,
            f"deployment.{action}",
            "model",
            row.model_id,
            after=after,
            reason=reason,
            event=event,
            payload={**after, "reason": reason} if reason else after,
        )
