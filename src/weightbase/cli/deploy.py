"""``weightbase deploy …``: deployments of model versions to environments (``wb.deployments``).

``deploy create NAME@VERSION --env staging --config deploy.yaml`` records the deployment;
the flags (``--batch-size``, ``--min-replicas``…) override the file's settings, which
may use our names or seed 000's camelCase ones (``batchSize``, ``scaling.minReplicas``).
"""

from __future__ import annotations

import json as json_module
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.options import JsonOption, ModelNameArgument, ReasonOption
from weightbase.cli.render import table
from weightbase.errors import MissingExtraError, ValidationError

if TYPE_CHECKING:
    from weightbase.serving.records import Deployment

__all__ = ["deploy_app", "read_config_file"]

deploy_app = typer.Typer(
    help="Deployments: a model version deployed to an environment, scaled, stopped.",
    no_args_is_help=True,
)

EnvOption = Annotated[
    str | None,
    typer.Option(
        "--env", help="development, staging or production (optional where only one is deployed)."
    ),
]


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a YAML or JSON configuration file holds; a typed error for anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read the configuration {path}: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json_module.loads(text)
        except json_module.JSONDecodeError as exc:
            raise ValidationError(f"{path} is not valid JSON: {exc}") from exc
    else:
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - pyyaml ships with the CLI's deps
            raise MissingExtraError(
                f"reading {path} needs pyyaml: pip install pyyaml, or write it as JSON"
            ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ValidationError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
    # seed 000 puts the settings under ``config`` beside ``environment`` and ``monitoring``
    if isinstance(data.get("config"), Mapping):
        outer = {key: value for key, value in data.items() if key != "config"}
        data = {**outer, **data["config"]}
    return dict(data)


#: The other names a file may give a setting that a flag overrides (seed 000's camelCase).
_ALIASES = {
    "batch_size": ("batchSize",),
    "max_wait_ms": ("maxWaitMs",),
    "max_concurrency": ("maxConcurrency",),
    "timeout_s": ("timeout", "timeoutMs", "timeoutS"),
    "min_replicas": ("minReplicas",),
    "max_replicas": ("maxReplicas",),
}


def _override(settings: dict[str, Any], flags: Mapping[str, Any]) -> None:
    """The flags given replace the file's settings, under whichever name the file used."""
    for key, value in flags.items():
        if value is not None:
            for alias in _ALIASES.get(key, ()):
                settings.pop(alias, None)
            settings[key] = value


def _show(found: Deployment) -> None:
    config = found.config
    console.print(
        f"{escape(found.ref)} in [bold]{found.environment}[/]: {found.status}, "
        f"{found.replicas} replica(s) (scaling {config.scaling.min_replicas}-"
        f"{config.scaling.max_replicas}); deployment {found.id}"
    )
    console.print(
        f"  batch {config.batch_size} (wait ≤ {config.max_wait_ms:g} ms), "
        f"concurrency {config.max_concurrency}, timeout {config.timeout_s:g} s, "
        f"engine {config.engine}, resources cpu {config.resources.cpu} memory "
        f"{config.resources.memory} gpu {config.resources.gpu}",
        highlight=False,
    )


@deploy_app.command("create")
def create(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (or NAME@ALIAS) to deploy.")],
    env: EnvOption = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="A YAML or JSON configuration (our keys or seed 000's camelCase)."
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Requests batched together.")] = None,
    max_wait_ms: Annotated[
        float | None, typer.Option(help="How long a batch waits to fill (ms).")
    ] = None,
    max_concurrency: Annotated[int | None, typer.Option(help="Requests in flight at most.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Request timeout in seconds.")] = None,
    min_replicas: Annotated[int | None, typer.Option(help="Fewest replicas.")] = None,
    max_replicas: Annotated[int | None, typer.Option(help="Most replicas.")] = None,
    engine: Annotated[str | None, typer.Option(help="local or ray.")] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="embeddings, text-classification, token-classification, text-generation "
            "or predict."
        ),
    ] = None,
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Deploy a version to an environment (production needs an approved request)."""
    settings: dict[str, Any] = {} if config is None else read_config_file(config)
    flags = {
        "batch_size": batch_size,
        "max_wait_ms": max_wait_ms,
        "max_concurrency": max_concurrency,
        "timeout_s": timeout,
        "engine": engine,
        "task": task,
    }
    _override(settings, flags)
    bounds = {"min_replicas": min_replicas, "max_replicas": max_replicas}
    if any(value is not None for value in bounds.values()):
        scaling = dict(settings.get("scaling") or {})
        _override(scaling, bounds)
        settings["scaling"] = scaling
    if env is not None:
        settings.pop("environment", None)
    with open_workspace() as wb:
        made = wb.deployments.deploy(ref, environment=env, config=settings or None, reason=reason)
    if json:
        emit_json(made.to_dict())
        return
    _show(made)


@deploy_app.command("scale")
def scale(
    model: ModelNameArgument,
    replicas: Annotated[int | None, typer.Argument(help="The replica count.")] = None,
    env: EnvOption = None,
    min_replicas: Annotated[int | None, typer.Option(help="A new lower bound.")] = None,
    max_replicas: Annotated[int | None, typer.Option(help="A new upper bound.")] = None,
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Set a deployment's replica count (within its scaling range, which this may change)."""
    with open_workspace() as wb:
        scaled = wb.deployments.scale(
            model,
            replicas,
            environment=env,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            reason=reason,
        )
    if json:
        emit_json(scaled.to_dict())
        return
    _show(scaled)


@deploy_app.command("stop")
def stop(
    model: ModelNameArgument,
    env: EnvOption = None,
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Undeploy: stop a model's deployment and free its environment."""
    with open_workspace() as wb:
        stopped = wb.deployments.undeploy(model, environment=env, reason=reason)
    if json:
        emit_json(stopped.to_dict())
        return
    _show(stopped)


@deploy_app.command("status")
def status(model: ModelNameArgument, env: EnvOption = None, json: JsonOption = False) -> None:
    """A model's deployment, and whether it serves as far as its recorded status says."""
    with open_workspace() as wb:
        found = wb.deployments.status(model, environment=env)
        health = wb.deployments.health(model, environment=found.environment)
    if json:
        emit_json({**found.to_dict(), "health": health.to_dict()})
        return
    _show(found)
    mark = "[green]healthy[/]" if health.healthy else "[yellow]not serving[/]"
    console.print(f"  {mark}: {escape(health.detail)}")


@deploy_app.command("list")
def list_deployments(
    model: Annotated[str | None, typer.Argument(help="Only this model's deployments.")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    status: Annotated[str | None, typer.Option(help="Only deployments in this status.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Stopped deployments too.")] = False,
    json: JsonOption = False,
) -> None:
    """Deployments, newest first (stopped ones with --all)."""
    with open_workspace() as wb:
        found = wb.deployments.list(
            model=model, environment=env, status=status, include_stopped=all_
        )
    if json:
        emit_json([item.to_dict() for item in found])
        return
    shown = table(["model", "version", "environment", "status", "replicas", "updated"])
    for item in found:
        shown.add_row(
            escape(item.model),
            escape(item.version),
            item.environment,
            item.status,
            str(item.replicas),
            item.updated.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(shown)


@deploy_app.command("history")
def history(model: ModelNameArgument, env: EnvOption = None, json: JsonOption = False) -> None:
    """Every change to a model's deployments, oldest first."""
    with open_workspace() as wb:
        found = wb.deployments.history(model, environment=env)
    if json:
        emit_json([item.to_dict() for item in found])
        return
    shown = table(["when", "action", "version", "status", "replicas", "by", "reason"])
    for item in found:
        shown.add_row(
            item.created.strftime("%Y-%m-%d %H:%M:%S"),
            item.action,
            escape(item.version),
            item.status,
            str(item.replicas),
            escape(item.by or ""),
            escape(item.reason or ""),
        )
    console.print(shown)
