"""The inference routes answered in plain ASGI: ``POST /v2/models/{name}/infer`` and
``POST /v1/embeddings``.

They carry nearly all of a server's traffic, and a small model answers in less time than a
web framework takes to route, inject and encode a request. So these two are matched by
string, their JSON read and written with orjson, and everything else (metadata, health,
generation, metrics) goes on to the FastAPI app. What a request means and every check on
it live in :func:`weightbase.serving.oip.infer_answer` and
:func:`weightbase.serving.openai_api.embeddings_answer`; errors get the bodies and
statuses of :func:`weightbase.serving.app.error_payload`, as on every other route. A
request for a served A/B test goes to its unit's variant
(:mod:`weightbase.serving.ab_routing`), named in the answer's headers. With
``--sample-rate``, each answer is offered to the monitoring sample; one that was kept
carries its request id (``X-Weightbase-Request-Id``), the key a late label is sent with.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from weightbase.errors import NotFound, ServingError, ValidationError
from weightbase.serving.app import error_payload
from weightbase.serving.oip import infer_answer
from weightbase.serving.openai_api import embeddings_answer, model_name

if TYPE_CHECKING:
    from weightbase.serving.ab_routing import Route
    from weightbase.serving.engine import InferenceEngine

__all__ = ["HotRoutes"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_INFER_PREFIX, _INFER_SUFFIX = "/v2/models/", "/infer"
_EMBEDDINGS = "/v1/embeddings"
_JSON_HEADERS = [(b"content-type", b"application/json")]
_ANSWERED = (NotFound, ValidationError, ServingError)
_UNIT_HEADER = b"x-weightbase-unit"
_REQUEST_ID = "X-Weightbase-Request-Id"


class _Disconnected(Exception):
    """The client went away before its request body arrived."""


class HotRoutes:
    """ASGI middleware: answers the inference routes itself, passes on the rest."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], engine: InferenceEngine
    ) -> None:
        self._app = app
        self._engine = engine
        # request ids this server makes: a random prefix and a count, unique and cheap
        self._ids = _RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path == _EMBEDDINGS:
                await self._answer(scope, receive, send, None)
                return
            if path.startswith(_INFER_PREFIX) and path.endswith(_INFER_SUFFIX):
                name = path[len(_INFER_PREFIX) : -len(_INFER_SUFFIX)]
                if name and "/" not in name:
                    await self._answer(scope, receive, send, name)
                    return
        await self._app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, name: str | None) -> None:
        engine = self._engine
        state = scope.setdefault("state", {})
        route: Route | None = None
        served: str | None = None
        body: dict[str, Any] = {}
        started = time.perf_counter()
        try:
            if name is not None:
                unit = _unit(scope) if engine.ab_routes.serves(name) else None
                served, route = engine.resolve(name, unit)  # NotFound: 404
                state["model"], state["endpoint"] = served, "/v2/models/{name}/infer"
                body = _object(await _read(receive))
                answer = await infer_answer(engine, served, body)
            else:
                body = _object(await _read(receive))
                asked = model_name(body)
                unit = _unit(scope, body) if engine.ab_routes.serves(asked) else None
                served, route = engine.resolve(asked, unit)
                state["model"], state["endpoint"] = served, _EMBEDDINGS
                answer = await embeddings_answer(engine, served, body)
        except _Disconnected:
            return
        except _ANSWERED as exc:
            status, payload, headers = error_payload(scope["path"], exc)
            if route is not None:
                headers = {**headers, **route.headers()}
            if served is not None and engine.samples is not None:
                kept = _sample(engine, served, scope, body, None, started, exc, self._ids)
                if kept is not None:
                    headers[_REQUEST_ID] = kept
            await _send_json(send, status, payload, _encoded(headers))
            return
        headers = {} if route is None else route.headers()
        if engine.samples is not None:
            kept = _sample(engine, served, scope, body, answer, started, None, self._ids)
            if kept is not None:
                headers[_REQUEST_ID] = kept
        await _send_json(send, 200, answer, _encoded(headers) if headers else [])


class _RequestIds:
    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}-{next(self._count)}"


def _request_id(scope: Scope, body: dict[str, Any], ids: _RequestIds) -> str:
    """A request's id: the OIP body's ``id``, else the ``X-Request-Id`` header, else one
    this server makes; a late label is sent with it."""
    found = body.get("id")
    if isinstance(found, str) and found:
        return found
    return _header(scope, b"x-request-id") or ids.next()


def _sample(
    engine: InferenceEngine,
    served: str,
    scope: Scope,
    body: dict[str, Any],
    answer: dict[str, Any] | None,
    started: float,
    error: Exception | None,
    ids: _RequestIds,
) -> str | None:
    """Offer the request to the monitoring sample; its id where it was kept (the answer
    then names it: the key its late label is sent with), else ``None``."""
    samples, target = engine.samples, engine.sample_target(served)
    if samples is None or target is None:
        return None
    request_id = _request_id(scope, body, ids)
    if not samples.keeps(request_id):  # most requests: one hash, nothing more
        return None
    inputs = body.get("inputs", body.get("input"))
    outputs = None if answer is None else answer.get("outputs", answer.get("data"))
    latency_ms = (time.perf_counter() - started) * 1e3
    failure = None if error is None else f"{type(error).__name__}: {error}"
    kept = samples.observe(target, request_id, inputs, outputs, latency_ms, failure)
    return request_id if kept else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1") or None
    return None


def _unit(scope: Scope, body: dict[str, Any] | None = None) -> str | None:
    """The A/B unit a request names: the ``X-Weightbase-Unit`` header, else an OpenAI
    body's ``user``."""
    found = _header(scope, _UNIT_HEADER)
    if found is not None:
        return found
    user = None if body is None else body.get("user")
    return user if isinstance(user, str) and user else None


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(key.lower().encode(), value.encode()) for key, value in headers.items()]


async def _read(receive: Receive) -> bytes:
    """The request's whole body."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def _object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; anything else is a ``ValidationError``."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object")
    return body


async def _send_json(
    send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]]
) -> None:
    # NumPy arrays as they are; a non-finite float becomes null, as JSON has no NaN
    content = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *_JSON_HEADERS,
                (b"content-length", str(len(content)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
