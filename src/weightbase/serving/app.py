"""The inference server as an ASGI app: ``create_serve_app(wb, refs, options)``.

It speaks the Open Inference Protocol (``/v2``, :mod:`weightbase.serving.oip`), the
OpenAI API (``/v1``, :mod:`weightbase.serving.openai_api`), and answers ``/healthz``,
``/readyz`` and Prometheus ``/metrics``. Needs the ``[server]`` extra.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

from weightbase.errors import (
    InferenceTimeoutError,
    MissingExtraError,
    ModelUnavailableError,
    NotFound,
    ServerBusyError,
    ServingError,
    ValidationError,
)
from weightbase.serving.engine import InferenceEngine
from weightbase.serving.reporting import Reporter
from weightbase.serving.server_options import ServeOptions

if TYPE_CHECKING:
    from fastapi import FastAPI, Request, Response

    from weightbase.serving.runnable import Workspace

__all__ = [
    "create_serve_app",
    "error_payload",
    "error_response",
    "read_body",
    "require_serve_extra",
]


def require_serve_extra() -> None:
    """Import what the server needs or raise ``MissingExtraError`` naming ``[server]``."""
    for module in ("fastapi", "uvicorn", "prometheus_client", "orjson"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtraError(
                f"weightbase serve needs {module}, which is not installed; "
                "pip install 'weightbase[server]'",
                module=module,
                extra="server",
            ) from exc


def create_serve_app(
    wb: Workspace, refs: Sequence[str], options: ServeOptions | None = None
) -> FastAPI:
    """An app serving the versions ``refs`` (``NAME@ALIAS`` or ``NAME@VERSION``) of ``wb``.

    Each model is loaded on its first request; ``app.state.engine`` is the
    :class:`~weightbase.serving.engine.InferenceEngine` behind it. While it runs, the
    inference metrics go to the catalog every ``metrics_interval_s`` and, with an
    ``environment``, the served deployments' status too
    (:class:`~weightbase.serving.reporting.Reporter`, ``app.state.reporter``).
    """
    require_serve_extra()
    from fastapi import FastAPI, Response
    from fastapi.responses import JSONResponse

    from weightbase.serving import oip, openai_api
    from weightbase.serving.hot_routes import HotRoutes

    engine = InferenceEngine(wb, refs, options or ServeOptions())

    reporter = Reporter(wb, engine)
    if engine.options.sample_rate > 0:
        monitoring = cast(Any, wb).monitoring  # embedded or remote: both record samples
        engine.samples = monitoring.recorder(rate=engine.options.sample_rate)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await reporter.start()
        if engine.samples is not None:
            engine.samples.start()
        try:
            yield
        finally:
            if engine.samples is not None:
                await asyncio.to_thread(engine.samples.close)  # the last batch written
            await reporter.stop()
            await engine.close()

    app = FastAPI(title="weightbase serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine = engine
    app.state.reporter = reporter

    # the inference routes skip the framework; the latency of every request is recorded
    app.add_middleware(HotRoutes, engine=engine)
    app.add_middleware(_RecordLatency, engine=engine)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Any:
        models = engine.pool.describe()
        failed = sorted(name for name, model in models.items() if model["state"] == "failed")
        body = {"status": "failed" if failed else "ready", "failed": failed, "models": models}
        return JSONResponse(body, status_code=503 if failed else 200)

    @app.get("/metrics")
    async def metrics() -> Any:
        text, content_type = engine.metrics.render()
        return Response(text, media_type=content_type)

    app.include_router(oip.router)
    app.include_router(openai_api.router)

    for error in (NotFound, ValidationError, ServingError):
        app.add_exception_handler(error, _handle)
    return app


class _RecordLatency:
    """Records each request's latency for the model its route named (``request.state``),
    until its last byte; plain ASGI, so a request costs no extra task as
    ``@app.middleware`` would."""

    def __init__(self, app: Any, engine: InferenceEngine) -> None:
        self._app = app
        self._engine = engine

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            state = scope.get("state") or {}
            model = state.get("model")
            if model is not None:  # routes name the model they answered for
                endpoint = state.get("endpoint", scope.get("path", ""))
                self._engine.observe(model, endpoint, status[0], started)


_STATUS = {
    NotFound: (404, "not_found_error"),
    ValidationError: (422, "invalid_request_error"),
    ModelUnavailableError: (503, "model_unavailable"),
    ServerBusyError: (429, "rate_limit_exceeded"),
    InferenceTimeoutError: (504, "timeout"),
}


def error_payload(path: str, exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``exc`` as a status, a body and headers: OpenAI's error object under ``/v1``,
    ``{"error": ...}`` else; ``Retry-After`` on 429 and 503."""
    status, kind = next(
        (found for cls, found in _STATUS.items() if isinstance(exc, cls)), (500, "server_error")
    )
    message = str(exc)
    body: dict[str, Any]
    if path.startswith("/v1/"):
        body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    else:
        body = {"error": message}
    headers = {"Retry-After": "1"} if status in (429, 503) else {}
    return status, body, headers


def error_response(request: Request, exc: Exception) -> Response:
    """``exc`` as its status and body (:func:`error_payload`)."""
    from fastapi.responses import JSONResponse

    status, body, headers = error_payload(request.url.path, exc)
    return JSONResponse(body, status_code=status, headers=headers or None)


async def read_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; anything else is a ``ValidationError``."""
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object")
    return body


async def _handle(request: Request, exc: Exception) -> Response:
    return error_response(request, exc)
