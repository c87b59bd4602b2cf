"""``weightbase deploy serve`` and ``deploy metrics``: run a recorded deployment here, and
read what its inference servers recorded.

``deploy serve digits --env staging`` serves the deployment's version with its
configuration: batching, concurrency, timeout, metrics interval, a GPU where its
resources ask for one, and its engine (``ray``: Ray Serve replicas from its scaling and
resources). The server reports the deployment ``running`` while it serves.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, open_workspace
from weightbase.cli.deploy import EnvOption
from weightbase.cli.options import JsonOption, ModelNameArgument
from weightbase.cli.render import table

__all__ = ["deploy_metrics", "deploy_serve"]


def deploy_serve(
    model: ModelNameArgument,
    env: EnvOption = None,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8000,
) -> None:
    """Serve a recorded deployment here, with its configuration and engine."""
    from weightbase.cli.serve import _serve_with_ray
    from weightbase.serving.app import create_serve_app, require_serve_extra
    from weightbase.serving.server_options import ServeOptions

    require_serve_extra()
    with open_workspace() as wb:
        deployment = wb.deployments.status(model, environment=env)
        config = deployment.config
        options = ServeOptions(
            batch_size=config.batch_size,
            max_wait_ms=config.max_wait_ms,
            max_concurrency=config.max_concurrency,
            timeout_s=config.timeout_s,
            metrics_interval_s=config.monitoring.metrics_interval_s,
            sample_rate=config.monitoring.sample_rate,
            environment=deployment.environment,
            device="cuda" if config.resources.gpu else "cpu",
        )
        console.print(
            f"serving {escape(deployment.ref)} ({deployment.environment}, engine "
            f"{config.engine}) on http://{host}:{port}",
            highlight=False,
        )
        if config.engine != "ray":
            import uvicorn

            app = create_serve_app(wb, [deployment.ref], options)
            uvicorn.run(app, host=host, port=port, log_level=config.monitoring.log_level)
            return
    from weightbase.serving.ray_engine import deployment_options

    scaling = config.scaling
    _serve_with_ray(
        [deployment.ref],
        options,
        host,
        port,
        config.monitoring.log_level,
        scaling.min_replicas,
        scaling.max_replicas,
        ray_options=deployment_options(config),
    )


def deploy_metrics(
    model: ModelNameArgument,
    env: EnvOption = None,
    version: Annotated[str | None, typer.Option(help="Only this version's windows.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="The latest this many.")] = 20,
    json: JsonOption = False,
) -> None:
    """Inference metrics the servers recorded for a model, window by window."""
    with open_workspace() as wb:
        found = wb.inference.metrics(model, version=version, environment=env, limit=limit)
    if json:
        emit_json([window.to_dict() for window in found])
        return
    if not found:
        console.print(f"no inference metrics recorded for {escape(model)} yet")
        return
    generated = any(window.tokens for window in found)
    columns = ["ended", "version", "env", "requests", "errors", "p50 ms", "p99 ms", "req/s"]
    columns += ["cache"] + (["tokens/s", "prefix"] if generated else [])
    shown = table(columns, right=columns[3:], no_wrap=columns, plain=True)
    for window in found:
        row = [
            window.ended.strftime("%m-%d %H:%M"),
            escape(window.version),
            window.environment or "",
            str(window.requests),
            str(window.errors),
            _ms(window.latency_p50_ms),
            _ms(window.latency_p99_ms),
            f"{window.throughput_rps:.2f}",
            f"{window.cache_hits}/{window.cache_hits + window.cache_misses}",
        ]
        if generated:
            looked = window.kv_prefix_hits + window.kv_prefix_misses
            rate = "" if window.tokens_per_s is None else f"{window.tokens_per_s:.0f}"
            row += [rate, f"{window.kv_prefix_hits}/{looked}"]
        shown.add_row(*row)
    console.print(shown)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
