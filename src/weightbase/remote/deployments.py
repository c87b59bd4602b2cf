"""``wb.deployments`` of a remote workspace: deployments on a weightbase server.

Every public method of :class:`~weightbase.serving.service.Deployments` is
overridden (a test checks that none is inherited) and answers from
``/api/v1/deploy``; the server applies the same rules, production's approval among them.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from weightbase.errors import ValidationError
from weightbase.serving.records import (
    Deployment,
    DeploymentConfig,
    DeploymentEvent,
    DeploymentHealth,
)
from weightbase.serving.service import ConfigLike, Deployments

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
        if not isinstance(model_ref, str) or not model_ref:
            raise ValidationError(f"name a model version, not {model_ref!r}", field="model")
        model, _, version = model_ref.partition("@")
        if isinstance(config, DeploymentConfig):
            body_config: Any = config.to_dict()
        else:
            body_config = None if config is None else dict(config)
        body = {
            "version": version or None,
            "environment": environment,
            "config": body_config,
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
        return Deployment.from_dict(self._http.post(f"{_DEPLOY}/{_name(model)}/-/scale", body))

    def undeploy(
        self, model: str, *, environment: str | None = None, reason: str | None = None
    ) -> Deployment:
        found = self._http.delete(
            f"{_DEPLOY}/{_name(model)}", environment=environment, reason=reason
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
        return Deployment.from_dict(self._http.post(f"{_DEPLOY}/{_name(model)}/-/status", body))

    def status(self, model: str, *, environment: str | None = None) -> Deployment:
        found = self._http.get(f"{_DEPLOY}/{_name(model)}/status", environment=environment)
        return Deployment.from_dict(found)

    def health(self, model: str, *, environment: str | None = None) -> DeploymentHealth:
        found = self._http.get(f"{_DEPLOY}/{_name(model)}/-/health", environment=environment)
        return DeploymentHealth.from_dict(found)

    def history(
        self, model: str, *, environment: str | None = None
    ) -> builtins.list[DeploymentEvent]:
        found = self._http.get(f"{_DEPLOY}/{_name(model)}/-/history", environment=environment)
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


def _name(model: str) -> str:
    """A model name for a path: refused here, as embedded, when it names a version."""
    if not isinstance(model, str) or not model:
        raise ValidationError(f"name a model, not {model!r}", field="model")
    if "@" in model:
        raise ValidationError(
            f"name a model ({model.partition('@')[0]}), not a version ({model}): "
            "a model has one deployment per environment",
            field="model",
        )
    return model
