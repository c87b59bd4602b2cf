"""``weightbase server``: serve the workspace's REST API (``/api/v1``) with uvicorn.

The workspace is the one ``weightbase.open()`` opens (``WEIGHTBASE_HOME``, or
``WEIGHTBASE_CATALOG_URL`` and ``WEIGHTBASE_STORE_URL``); each worker process
opens its own, and runs a webhook dispatcher unless ``--no-webhooks``. Needs the
``[server]`` extra.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

__all__ = ["server"]


def server(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes, each with its own workspace handle.")
    ] = 1,
    anonymous_read: Annotated[
        bool, typer.Option("--anonymous-read", help="Let requests without a token read.")
    ] = False,
    webhooks: Annotated[
        bool,
        typer.Option(
            "--webhooks/--no-webhooks",
            help="Deliver webhooks from each worker (off: another process delivers them).",
        ),
    ] = True,
    log_level: Annotated[
        str, typer.Option(help="uvicorn's log level: critical, error, warning, info, debug.")
    ] = "info",
) -> None:
    """Serve the REST API of the workspace: models, datasets, runs, audit log and events."""
    from weightbase.api._extras import require_server_extra

    require_server_extra()
    import uvicorn

    # Workers are separate processes that build the app from the environment.
    os.environ["WEIGHTBASE_SERVER_ANONYMOUS_READ"] = "1" if anonymous_read else "0"
    os.environ["WEIGHTBASE_SERVER_WEBHOOKS"] = "1" if webhooks else "0"
    uvicorn.run(
        "weightbase.api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )
