"""What wraps every request: its id, a bound on its body, its metrics, and the last-resort 500.

One pure ASGI middleware (no per-request task, so context variables set here
reach the endpoint): it takes the caller's ``X-Request-ID`` (or makes one) and
echoes it, refuses bodies over the limit with 413, counts the request and its
latency by route template and status, and turns an exception nothing else
handled into the one error body with status 500, logged with the request id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weightbase.api.errors import error_response

__all__ = ["REQUEST_ID", "HttpMetrics", "RequestContext"]

logger = logging.getLogger("weightbase.api")

#: The id of the request being served (for log records); None outside a request.
REQUEST_ID: ContextVar[str | None] = ContextVar("weightbase_request_id", default=None)

_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
_UNMATCHED = "<unmatched>"


class HttpMetrics:
    """Request counts and latencies, in a registry of this app's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("method", "route", "status")
        self.requests = Counter(
            "weightbase_http_requests",
            "HTTP requests served, by route template and status.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "weightbase_http_request_duration_seconds",
            "Time to serve an HTTP request, by route template and status.",
            labels,
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)


class RequestContext:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.lower(): value for key, value in scope.get("headers", [])}
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _GOOD_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        try:
            declared = headers.get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                response = error_response(
                    413, "too_large", self._too_large(), request_id=request_id
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, bounded_receive, send_with_id)
        except Exception:
            logger.exception("request %s failed", request_id)
            if not response_started:
                response = error_response(
                    500,
                    "internal_error",
                    f"internal server error; quote request id {request_id} when reporting it",
                    request_id=request_id,
                )
                await response(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            self.metrics.observe(
                scope["method"], _route(scope), status, time.perf_counter() - started
            )

    def _too_large(self) -> str:
        return f"the request body is larger than this server takes ({self.max_body_bytes} bytes)"


def _route(scope: Scope) -> str:
    """The template of the route that served the request (bounded label values)."""
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else _UNMATCHED
