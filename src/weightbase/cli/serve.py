"""``weightbase serve MODEL@ALIAS ...``: the inference server, with uvicorn.

Models come from the workspace ``weightbase.open()`` opens (``WEIGHTBASE_HOME``, or
``WEIGHTBASE_URL`` for a remote one); each is loaded on its first request. Needs the
``[server]`` extra and torch (``[torch]``, ``[hf]`` for Hugging Face folders).
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["serve"]


def serve(
    models: Annotated[
        list[str], typer.Argument(help="The versions to serve: NAME@ALIAS or NAME@VERSION.")
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
) -> None:
    """Serve models for inference: Open Inference Protocol, OpenAI API, /metrics."""
    import weightbase
    from weightbase.serving.app import create_serve_app, require_serve_extra
    from weightbase.serving.server_options import ServeOptions, parse_bytes

    require_serve_extra()
    import uvicorn

    options = ServeOptions(
        memory_budget=parse_bytes(memory_budget),
        batch_size=batch_size,
        max_wait_ms=max_wait_ms,
        max_concurrency=max_concurrency,
        timeout_s=timeout,
        cache_bytes=parse_bytes(cache_size),
        cache_ttl_s=cache_ttl,
        device=device,
    )
    with weightbase.open() as wb:
        app = create_serve_app(wb, models, options)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
