"""``weightbase serve MODEL@ALIAS ...``: the inference server, with uvicorn.

Models come from the workspace ``weightbase.open()`` opens (``WEIGHTBASE_HOME``, or
``WEIGHTBASE_URL`` for a remote one); each is loaded on its first request. Needs the
``[server]`` extra and torch (``[torch]``, ``[hf]`` for Hugging Face folders);
``--engine ray`` runs the same server as Ray Serve replicas (``[ray]``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from weightbase.serving.server_options import ServeOptions
    from weightbase.workspace import Workspace

__all__ = ["serve"]


def serve(
    models: Annotated[
        list[str],
        typer.Argument(
            help="What to serve: versions as NAME@ALIAS or NAME@VERSION, fusion reactors "
            "(ensembles, cascades) as reactor:NAME, A/B tests as abtest:NAME (each request "
            "goes to its unit's variant: the X-Weightbase-Unit header, or OpenAI's user)."
        ),
    ],
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8000,
    memory_budget: Annotated[
        str,
        typer.Option(
            help="Bytes the loaded models may hold (2GiB, 500M); the least recently used "
            "model is evicted past it. 0: no bound."
        ),
    ] = "0",
    batch_size: Annotated[
        int, typer.Option(min=1, help="The most inputs run together in one forward pass.")
    ] = 8,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="How long a batch waits for more requests (ms).")
    ] = 5.0,
    inline_below_ms: Annotated[
        float,
        typer.Option(
            min=0,
            help="A model whose batches take less (ms) runs on the event loop, skipping the "
            "hand-off to a worker thread; 0: always in a thread.",
        ),
    ] = 1.0,
    max_concurrency: Annotated[
        int, typer.Option(min=1, help="Requests in flight per model; more are refused (429).")
    ] = 64,
    timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds before a request is answered 504.")
    ] = 30.0,
    cache_size: Annotated[
        str, typer.Option(help="Bytes of the response cache (64MiB; 0: no cache).")
    ] = "64MiB",
    cache_ttl: Annotated[
        float, typer.Option(min=0, help="Seconds a cached response is kept.")
    ] = 300.0,
    device: Annotated[str, typer.Option(help="Where models run: cpu, cuda or cuda:N.")] = "cpu",
    log_level: Annotated[
        str, typer.Option(help="uvicorn's log level: critical, error, warning, info, debug.")
    ] = "info",
    sample_rate: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="The share of requests whose inputs and outputs are kept for monitoring "
            "(weightbase monitor samples; chosen by request id). 0: none.",
        ),
    ] = 0.0,
    ab_refresh: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds between reads of the served A/B tests (abtest:NAME): a reweight or "
            "a stop reaches the server within this time.",
        ),
    ] = 5.0,
    kv_prefix_cache: Annotated[
        int,
        typer.Option(
            min=0,
            help="Prompts per generation model whose keys and values are kept for prompts "
            "that begin the same way (0: none).",
        ),
    ] = 16,
    metrics_interval: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds between writes of inference metrics and sessions to the catalog "
            "(0: never).",
        ),
    ] = 60.0,
    environment: Annotated[
        str | None,
        typer.Option(
            help="Report the served models' deployments in this environment (development, "
            "staging, production): running, failed, pending when stopped."
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="local: one process (uvicorn); ray: Ray Serve replicas of the same server, "
            "on a local Ray started here or the cluster at RAY_ADDRESS."
        ),
    ] = "local",
    replicas: Annotated[
        int | None,
        typer.Option(min=1, help="--engine ray: this many replicas, always."),
    ] = None,
    min_replicas: Annotated[
        int | None,
        typer.Option(min=0, help="--engine ray: autoscale from this many replicas (default 1)."),
    ] = None,
    max_replicas: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="--engine ray: autoscale up to this many replicas, adding one when each "
            "holds more than 70% of --max-concurrency requests.",
        ),
    ] = None,
) -> None:
    """Serve models for inference: Open Inference Protocol, OpenAI API, /metrics.

    Each of --max-concurrency, --batch-size, --memory-budget and the cache applies to
    each replica with --engine ray.
    """
    import weightbase
    from weightbase.errors import ValidationError
    from weightbase.serving.app import create_serve_app, require_serve_extra
    from weightbase.serving.records import ENGINES
    from weightbase.serving.server_options import ServeOptions, parse_bytes

    if engine not in ENGINES:
        raise ValidationError(
            f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}", field="engine"
        )
    counts = {
        "--replicas": replicas,
        "--min-replicas": min_replicas,
        "--max-replicas": max_replicas,
    }
    given = [name for name, count in counts.items() if count is not None]
    if engine == "local" and given:
        raise ValidationError(
            f"{', '.join(given)} needs --engine ray; the local engine is one process",
            field=given[0].removeprefix("--"),
        )
    if replicas is not None and (min_replicas is not None or max_replicas is not None):
        raise ValidationError(
            "--replicas is a fixed count; give it or --min-replicas/--max-replicas, not both",
            field="replicas",
        )
    require_serve_extra()
    import uvicorn

    options = ServeOptions(
        memory_budget=parse_bytes(memory_budget),
        batch_size=batch_size,
        max_wait_ms=max_wait_ms,
        inline_below_ms=inline_below_ms,
        max_concurrency=max_concurrency,
        timeout_s=timeout,
        cache_bytes=parse_bytes(cache_size),
        cache_ttl_s=cache_ttl,
        device=device,
        kv_prefix_cache=kv_prefix_cache,
        metrics_interval_s=metrics_interval,
        environment=environment,
        ab_refresh_s=ab_refresh,
        sample_rate=sample_rate,
    )
    if engine == "ray":
        if replicas is not None:
            low = high = replicas
        else:
            low = 1 if min_replicas is None else min_replicas
            high = max(low, 1) if max_replicas is None else max_replicas
        _serve_with_ray(models, options, host, port, log_level, low, high)
        return
    with weightbase.open() as wb:
        app = create_serve_app(wb, models, options)
        uvicorn.run(app, host=host, port=port, log_level=log_level)


@dataclass(frozen=True, slots=True)
class WorkspaceAddress:
    """Where a Ray Serve replica opens the workspace: a server's URL and token, or an
    embedded one's home, catalog and store; calling it opens the workspace."""

    url: str | None = None
    token: str | None = None
    home: str | None = None
    catalog_url: str | None = None
    store_url: str | None = None

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> WorkspaceAddress:
        """The workspace ``weightbase.open(home)`` opens here, with its paths made absolute
        (replicas run in other folders)."""
        from weightbase.config import Settings

        url = None if home is not None else os.environ.get("WEIGHTBASE_URL", "").strip()
        if url:
            return cls(url=url, token=os.environ.get("WEIGHTBASE_TOKEN") or None)
        if home is None:
            home = os.environ.get("WEIGHTBASE_HOME", "~/.weightbase")
        config = Settings.from_env(Path(home).expanduser().resolve())
        return cls(
            home=str(config.home), catalog_url=config.catalog_url, store_url=config.store_url
        )

    def __call__(self) -> Workspace:
        import weightbase

        if self.url is not None:
            return weightbase.open(self.url, token=self.token)
        return weightbase.open(self.home, catalog_url=self.catalog_url, store_url=self.store_url)


def _serve_with_ray(
    models: list[str],
    options: ServeOptions,
    host: str,
    port: int,
    log_level: str,
    min_replicas: int,
    max_replicas: int,
    ray_options: dict[str, Any] | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM as Ray Serve replicas, each asking for one CPU (and
    one GPU with --device cuda: Ray hides the GPUs from a replica that asks for none)."""
    import signal
    import time

    from weightbase.serving.pool import served_names
    from weightbase.serving.ray_engine import (
        ray_deployment_options,
        ray_server,
        require_ray_extra,
    )
    from weightbase.serving.records import Resources, Scaling

    scaling = Scaling(min_replicas=min_replicas, max_replicas=max_replicas)
    served_names(models)  # a ref given twice is refused before Ray starts
    require_ray_extra()
    gpus = 1 if options.device.startswith("cuda") else 0
    resources = Resources(cpu="1", memory="0", gpu=gpus)
    if ray_options is None:  # a deployment's come from its scaling and resources
        ray_options = ray_deployment_options(scaling, options.max_concurrency, resources)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    address = WorkspaceAddress.from_env()
    count = f"{min_replicas}" if min_replicas == max_replicas else f"{min_replicas}-{max_replicas}"
    count += " replica" if count == "1" else " replicas"
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with ray_server(
            address, models, options, ray_options, host=host, port=port, log_level=log_level
        ) as url:
            # set once Ray runs, whose own handler would end the process without stopping it
            signal.signal(signal.SIGTERM, stop)
            typer.echo(f"weightbase serve: ready on {url} (Ray Serve, {count})")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        typer.echo("weightbase serve: stopped", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
