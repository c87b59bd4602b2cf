"""``wb.deployments`` of a remote workspace: deployments on a weightbase server.

Every public method of :class:`~weightbase.serving.service.Deployments` is
overridden (a test checks that none is inherited) and answers from
``/api/v1/deploy``; the server applies the same rules, production's approval among them.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from weightbase.serving.deployment_checks import (
    ConfigLike,
    model_name,
    resolve_config,
    version_ref,
)
from weightbase.serving.records import (
    Deployment,
    DeploymentEvent,
    DeploymentHealth,
)
from weightbase.serving.service import Deployments

if TYPE_CHECKING:
    from weightbase.remote.http import Connection

__all__ = ["RemoteDeployments"]

_DEPLOY = "/api/v1/deploy"


class RemoteDeployments(Deployments):
    """Deployments kept by the server: the same records, over HTTP."""

    def __init__(self, connection: Connection) -> None:  # no catalog: the server has it
        self._http = connection

    def deploy(
        self,
        model_ref: str,
        *,
        environment: str | None = None,
        config: ConfigLike = None,
        reason: str | None = None,
    ) -> Deployment:
        model, version = version_ref(model_ref)
        # checked here as embedded, so a bad one fails the same way before any request
        chosen = resolve_config(config, environment)
        body = {
            "version": version,
            "environment": chosen.environment,
            "config": None if config is None else chosen.to_dict(),
            "reason": reason,
        }
        return Deployment.from_dict(self._http.post(f"{_DEPLOY}/{model}", body))

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
        body = {
            "replicas": replicas,
            "min_replicas": min_replicas,
            "max_replicas": max_replicas,
            "environment": environment,
            "reason": reason,
        }
        return Deployment.from_dict(self._http.post(f"{_DEPLOY}/{model_name(model)}/-/scale", body))

    def undeploy(
        self, model: str, *, environment: str | None = None, reason: str | None = None
    ) -> Deployment:
        found = self._http.delete(
            f"{_DEPLOY}/{model_name(model)}", environment=environment, reason=reason
        )
        return Deployment.from_dict(found)

    def set_status(
        self,
        model: str,
        status: str,
        *,
        environment: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        body = {"status": status, "environment": environment, "reason": reason}
        return Deployment.from_dict(
            self._http.post(f"{_DEPLOY}/{model_name(model)}/-/status", body)
        )

    def status(self, model: str, *, environment: str | None = None) -> Deployment:
        found = self._http.get(f"{_DEPLOY}/{model_name(model)}/status", environment=environment)
        return Deployment.from_dict(found)

    def health(self, model: str, *, environment: str | None = None) -> DeploymentHealth:
        found = self._http.get(f"{_DEPLOY}/{model_name(model)}/-/health", environment=environment)
        return DeploymentHealth.from_dict(found)

    def history(
        self, model: str, *, environment: str | None = None
    ) -> builtins.list[DeploymentEvent]:
        found = self._http.get(f"{_DEPLOY}/{model_name(model)}/-/history", environment=environment)
        return [DeploymentEvent.from_dict(item) for item in found["items"]]

    def list(
        self,
        *,
        model: str | None = None,
        environment: str | None = None,
        status: str | None = None,
        include_stopped: bool = False,
    ) -> builtins.list[Deployment]:
        found = self._http.get(
            _DEPLOY,
            model=model,
            environment=environment,
            status=status,
            include_stopped=include_stopped or None,
        )
        return [Deployment.from_dict(item) for item in found["items"]]
