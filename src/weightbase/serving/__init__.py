"""Serving: deployments of model versions to environments (``wb.deployments``).

- :mod:`~weightbase.serving.records`: the configuration, deployment and history records;
- :mod:`~weightbase.serving.service`: ``wb.deployments``, deploy, scale, undeploy, status (its
  argument checks in ``deployment_checks``, its catalog queries in ``deployment_rows``).
"""

from weightbase.serving.records import (
    Deployment,
    DeploymentConfig,
    DeploymentEvent,
    DeploymentHealth,
    Monitoring,
    Resources,
    Scaling,
)

__all__ = [
    "Deployment",
    "DeploymentConfig",
    "DeploymentEvent",
    "DeploymentHealth",
    "Monitoring",
    "Resources",
    "Scaling",
]
