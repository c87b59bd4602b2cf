"""``weightbase deploy manifests``: Kubernetes manifests for a deployment, as YAML.

From the recorded deployment (its configuration, environment and version), or without
one from ``--env`` and a ``--config`` file, which needs no workspace at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from weightbase import __version__
from weightbase.cli._common import console, open_workspace
from weightbase.cli.deploy import read_config_file
from weightbase.errors import NotFound, ValidationError
from weightbase.names import split_ref

if TYPE_CHECKING:
    from weightbase.serving.records import DeploymentConfig

__all__ = ["manifests"]


def manifests(
    ref: Annotated[
        str,
        typer.Argument(
            help="NAME@VERSION to serve; NAME alone takes the recorded deployment's version.",
            show_default=False,
        ),
    ],
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            help="The environment (development, staging, production): its recorded "
            "deployment, or the default configuration where none is recorded.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A configuration file (YAML or JSON, seed 000's keys or ours) to use "
            "instead of a recorded deployment; no workspace is opened.",
            show_default=False,
        ),
    ] = None,
    image: Annotated[
        str, typer.Option(help="The server image the pods run (see the Dockerfile).")
    ] = f"weightbase:{__version__}",
    namespace: Annotated[str, typer.Option(help="The Kubernetes namespace.")] = "default",
    secret: Annotated[
        str,
        typer.Option(
            help="The Secret whose keys url and token become WEIGHTBASE_URL and "
            "WEIGHTBASE_TOKEN (referred to, never copied)."
        ),
    ] = "weightbase-credentials",
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label", help="KEY=VALUE put on every object (repeat it).", show_default=False
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write one file per kind into this folder instead of one YAML stream to stdout.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the Kubernetes manifests that serve a model version: Deployment, Service,
    HorizontalPodAutoscaler, PodDisruptionBudget, ServiceMonitor and PrometheusRule."""
    from weightbase.serving.manifests import render_config_manifests
    from weightbase.serving.manifests_yaml import dump_manifests, write_manifests

    name, version = split_ref(ref)
    labels = _labels(label or [])
    if config is not None:
        if version is None:
            raise ValidationError(f"{ref!r}: name the version to serve, as NAME@VERSION")
        chosen = _config_from_file(config, env)
    else:
        chosen, version = _recorded(name, version, env)
    objects = render_config_manifests(
        name,
        version,
        chosen,
        image=image,
        namespace=namespace,
        secret=secret,
        labels=labels,
    )
    if output is None:
        typer.echo(dump_manifests(objects), nl=False)
        return
    for path in write_manifests(objects, output):
        console.print(f"wrote {path}", highlight=False, markup=False)


def _recorded(name: str, version: str | None, env: str | None) -> tuple[DeploymentConfig, str]:
    """The configuration and version of ``name``'s recorded deployment (in ``env``); the
    default configuration of ``env`` where none is recorded."""
    from weightbase.serving.records import DeploymentConfig as Config

    try:
        with open_workspace() as wb:
            deployment = wb.deployments.status(name, environment=env)
    except NotFound:
        if env is None:
            raise NotFound(
                f"{name} has no recorded deployment: name an environment with --env, "
                "or give a configuration with --config",
                model=name,
            ) from None
        if version is None:
            raise ValidationError(
                f"{name} has no recorded deployment in {env}: name the version, as NAME@VERSION"
            ) from None
        return Config(environment=env), version
    chosen = deployment.config.with_environment(deployment.environment)
    return chosen, version or deployment.version


def _config_from_file(path: Path, env: str | None) -> DeploymentConfig:
    from weightbase.serving.records import DeploymentConfig as Config

    data = read_config_file(path)
    if env is not None:
        data = {**data, "environment": env}
    return Config.from_dict(data)


def _labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(f"--label {pair!r}: expected KEY=VALUE", field="labels")
        labels[key] = value
    return labels
