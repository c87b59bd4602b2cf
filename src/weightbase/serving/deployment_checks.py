"""What ``wb.deployments`` checks before it writes: names, references, the configuration.

Shared by the embedded service and the remote one, so a bad argument fails the same
way in both, before any request is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from weightbase.errors import ValidationError
from weightbase.names import check_entity_name, split_ref
from weightbase.serving.records import ENVIRONMENTS, DeploymentConfig

__all__ = [
    "ConfigLike",
    "check_environment",
    "check_reason",
    "model_name",
    "resolve_config",
    "version_ref",
]

#: A configuration: the record, a mapping (snake_case or seed 000's camelCase), or None.
ConfigLike = DeploymentConfig | Mapping[str, Any] | None


def resolve_config(config: ConfigLike, environment: str | None) -> DeploymentConfig:
    """The configuration ``deploy`` records: ``config`` checked, ``environment`` applied."""
    if environment is not None:
        check_environment(environment)
    if config is None:
        return DeploymentConfig(environment=environment or "development")
    if isinstance(config, DeploymentConfig):
        return config if environment is None else config.with_environment(environment)
    if not isinstance(config, Mapping):
        raise ValidationError(
            f"config must be a mapping or a DeploymentConfig, not {type(config).__name__}",
            field="config",
        )
    named = config.get("environment")
    if environment is not None and named is not None and named != environment:
        raise ValidationError(
            f"environment {environment!r} and config environment {named!r} disagree",
            field="environment",
        )
    if environment is not None:
        config = {**config, "environment": environment}
    return DeploymentConfig.from_dict(config)


def check_environment(environment: str) -> None:
    if environment not in ENVIRONMENTS:
        raise ValidationError(
            f"environment must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}",
            field="environment",
        )


def check_reason(reason: str | None) -> None:
    if reason is not None and not isinstance(reason, str):
        raise ValidationError(f"reason must be text, not {type(reason).__name__}", field="reason")


def model_name(model: str) -> str:
    """``model`` if it names a model (not a version): the verbs after ``deploy`` take one."""
    if isinstance(model, str) and "@" in model:
        raise ValidationError(
            f"name a model ({model.partition('@')[0]}), not a version ({model}): "
            "a model has one deployment per environment",
            field="model",
        )
    return check_entity_name(model)


def version_ref(model_ref: str) -> tuple[str, str | None]:
    """The model name and version (or alias; None: ``latest``) of ``model_ref``, checked."""
    if not isinstance(model_ref, str):
        raise ValidationError(f"name a model version, not {model_ref!r}", field="model")
    name, ref = split_ref(model_ref)
    return check_entity_name(name), ref
