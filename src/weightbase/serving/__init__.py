"""Serving: deployments of model versions to environments (``wb.deployments``).

- :mod:`~weightbase.serving.records`: the configuration, deployment and history records.
"""

from weightbase.serving.records import (
    Deployment,
    DeploymentConfig,
    DeploymentEvent,
    Monitoring,
    Resources,
    Scaling,
)

__all__ = [
    "Deployment",
    "DeploymentConfig",
    "DeploymentEvent",
    "Monitoring",
    "Resources",
    "Scaling",
]
