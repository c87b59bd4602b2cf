"""The app factory: one workspace per process, the routers under ``/api/v1``, probes, metrics.

    app = create_app(lambda: weightbase.open("/srv/weightbase"), ServerOptions())

The workspace is opened when the app starts and closed when it stops, so each
uvicorn worker process has its own (several can serve one PostgreSQL + S3
workspace side by side), with its own webhook dispatcher: deliveries are
claimed in the catalog, so several dispatchers never send one twice.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from weightbase.api import (
    abtests,
    audit,
    datasets,
    deployments,
    fusion,
    governance,
    inference,
    lineage,
    models,
    monitoring,
    reviews,
    runs,
    runs_artifacts,
    runs_metrics,
    store,
    users,
    webhooks,
)
from weightbase.api.actor import record_request_actors
from weightbase.api.auth import Authenticator
from weightbase.api.common import API_PREFIX
from weightbase.api.errors import ErrorBody, JSONBody, error_response, install_error_handlers
from weightbase.api.errors import request_id_of as _request_id
from weightbase.api.middleware import HttpMetrics, RequestContext
from weightbase.config import Settings
from weightbase.webhooks import Dispatcher
from weightbase.workspace import Workspace

__all__ = ["API_PREFIX", "ServerOptions", "create_app", "create_app_from_env"]

WorkspaceFactory = Callable[[], Workspace]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "the request is malformed"),
        (401, "no token, or not a valid one"),
        (403, "the token may not do this"),
        (404, "no such thing"),
        (409, "it collides with what exists"),
        (413, "the request body is too large"),
        (422, "the request is not valid"),
        (503, "the catalog or store is unavailable"),
    )
}


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How the server admits requests.

    ``authenticator`` gives, for the opened workspace, what answers who a
    token is and what they may do: by default its ``wb.access`` (users and
    tokens in the catalog); None serves anonymous reads only.
    ``anonymous_read`` lets requests without a token read; bodies over
    ``max_body_bytes`` are refused with 413. ``webhooks`` runs a webhook
    :class:`~weightbase.webhooks.Dispatcher` while the app is up.
    """

    authenticator: Callable[[Workspace], Authenticator] | None = field(
        default=lambda opened: opened.access
    )
    anonymous_read: bool = False
    max_body_bytes: int = 64 * 1024 * 1024
    webhooks: bool = True


def create_app(
    workspace: WorkspaceFactory | Settings | None = None,
    options: ServerOptions | None = None,
) -> FastAPI:
    """The FastAPI app serving the workspace ``workspace`` makes (default: the environment's)."""
    options = options or ServerOptions()
    factory = _factory(workspace)
    metrics = HttpMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = await run_in_threadpool(factory)
        record_request_actors(opened)
        app.state.workspace = opened
        if options.authenticator is not None:
            app.state.authenticator = options.authenticator(opened)
        dispatcher = Dispatcher(opened.catalog) if options.webhooks else None
        if dispatcher is not None:
            dispatcher.start()
        app.state.dispatcher = dispatcher
        try:
            yield
        finally:
            if dispatcher is not None:
                await run_in_threadpool(dispatcher.stop)
            await run_in_threadpool(opened.close)

    app = FastAPI(
        title="weightbase",
        version=_version(),
        description="The model lifecycle platform's REST API. See docs/server.md.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        default_response_class=JSONBody,
        lifespan=lifespan,
    )
    app.state.options = options
    app.state.authenticator = None
    app.state.metrics = metrics
    install_error_handlers(app)
    app.add_middleware(RequestContext, metrics=metrics, max_body_bytes=options.max_body_bytes)
    for router in (
        models.router,
        datasets.router,
        runs.router,
        runs_metrics.router,
        runs_artifacts.router,
        audit.router,
        webhooks.router,
        governance.router,
        lineage.router,
        reviews.router,
        deployments.router,
        inference.router,
        abtests.router,
        monitoring.router,
        fusion.router,
        users.router,
        store.router,
    ):
        app.include_router(router, responses=_ERRORS)

    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], responses={503: {"model": ErrorBody}})
    def readyz(request: Request) -> Response:
        """The catalog and the tensor store answer."""
        checks = _readiness(request.app.state.workspace)
        if all(status == "ok" for status in checks.values()):
            return JSONBody({"status": "ready", "checks": checks})
        return error_response(
            503,
            "unavailable",
            "not ready: " + ", ".join(k for k, v in checks.items() if v != "ok"),
            request_id=_request_id(request),
            context={"checks": checks},
        )

    @app.get("/metrics", tags=["probes"], response_class=Response)
    def prometheus() -> Response:
        """Request counts and latencies by route template and status (Prometheus text)."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def create_app_from_env() -> FastAPI:
    """The app ``weightbase server`` runs in each worker, configured by ``WEIGHTBASE_*``.

    ``WEIGHTBASE_SERVER_ANONYMOUS_READ=1`` allows reads without a token;
    ``WEIGHTBASE_SERVER_WEBHOOKS=0`` leaves webhooks to another process.
    """
    anonymous = _flag("WEIGHTBASE_SERVER_ANONYMOUS_READ", default=False)
    deliver = _flag("WEIGHTBASE_SERVER_WEBHOOKS", default=True)
    return create_app(
        Settings.from_env(), ServerOptions(anonymous_read=anonymous, webhooks=deliver)
    )


def _flag(name: str, *, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in ("1", "true", "yes")


def _factory(workspace: WorkspaceFactory | Settings | None) -> WorkspaceFactory:
    if callable(workspace):
        return workspace
    settings = workspace or Settings.from_env()

    def open_workspace() -> Workspace:
        from weightbase.workspace import open as open_workspace

        return open_workspace(
            settings.home, catalog_url=settings.catalog_url, store_url=settings.store_url
        )

    return open_workspace


def _readiness(workspace: Workspace) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with workspace.catalog.session() as session:
            session.execute(text("SELECT 1"))
        checks["catalog"] = "ok"
    except Exception as exc:
        checks["catalog"] = f"unavailable: {type(exc).__name__}"
    try:
        workspace.store.objects.exists("readyz-probe")
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"unavailable: {type(exc).__name__}"
    return checks


def _version() -> str:
    try:
        return package_version("weightbase")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "0+unknown"
