"""One connection to a weightbase server: a token, retries, and errors mapped back to the tree.

Every failure the server answers carries the one error body
(``{"error": {"type", "message", "request_id", "context"}}``); here it becomes
the same ``WeightbaseError`` subclass the embedded workspace would have raised,
with the server's context and request id, so code written against one
workspace runs against the other. A connection that fails, and a server that
answers 502/503/504, are retried with exponential backoff and jitter, for
requests that are safe to repeat: reads, and writes whose repetition the
server recognises (uploads addressed by digest, metric batches with sequence
numbers). Other writes are sent once.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from weightbase.errors import (
    ApprovalRequired,
    AuthenticationError,
    Conflict,
    IntegrityError,
    MissingExtraError,
    NotFound,
    NotSupported,
    PermissionDenied,
    StorageError,
    ValidationError,
    WeightbaseError,
)

__all__ = ["Connection", "RetryPolicy", "path_of"]

logger = logging.getLogger("weightbase.remote")

#: The error class for each ``type`` of the error body.
ERROR_TYPES: dict[str, type[WeightbaseError]] = {
    "not_authenticated": AuthenticationError,
    "approval_required": ApprovalRequired,
    "permission_denied": PermissionDenied,
    "not_found": NotFound,
    "conflict": Conflict,
    "validation_error": ValidationError,
    "bad_request": ValidationError,
    "too_large": ValidationError,
    "method_not_allowed": NotSupported,
    "unavailable": StorageError,
    "not_available": MissingExtraError,
    "integrity_error": IntegrityError,
}

_RETRY_STATUSES = frozenset({502, 503, 504})


class RetryPolicy:
    """How often and how long to retry: ``attempts`` tries, the waits growing from ``base``.

    The wait before try ``n`` (from 1) is ``base * 2**(n-1)`` capped at ``cap``,
    times a random factor in [0.5, 1] so that many clients do not retry in step.
    """

    def __init__(self, attempts: int = 8, base: float = 0.1, cap: float = 5.0) -> None:
        if attempts < 1:
            raise ValidationError("attempts must be at least 1")
        self.attempts = attempts
        self.base = base
        self.cap = cap

    def wait(self, attempt: int) -> float:
        delay: float = min(self.cap, self.base * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)


def path_of(name: str) -> str:
    """A model or dataset name as the path segments the API takes (``org/bert`` stays so)."""
    return "/".join(quote(part, safe="") for part in name.split("/"))


class Connection:
    """HTTP to one server, with its token; thread-safe (one pooled httpx client)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - httpx comes with the server extra
            raise MissingExtraError(
                "a remote workspace needs httpx; install it with: pip install 'weightbase[server]'",
                extra="server",
            ) from exc
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        headers = {"User-Agent": "weightbase-remote"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._httpx = httpx
        self._client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )

    def __repr__(self) -> str:
        return f"Connection({self.url!r})"

    def close(self) -> None:
        self._client.close()

    # -- requests --------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        """The JSON a GET answers; None parameters are left out."""
        return self.request("GET", path, params=params).json()

    def get_bytes(self, path: str) -> bytes:
        """The raw body a GET answers."""
        content: bytes = self.request("GET", path).content
        return content

    def post(self, path: str, body: Any = None, *, retry: bool = False, **params: Any) -> Any:
        """The JSON a POST answers (None for 204); ``retry`` only where repeating is safe."""
        return _json(self.request("POST", path, json=body, params=params, retry=retry))

    def put(self, path: str, body: Any = None, *, retry: bool = False, **params: Any) -> Any:
        return _json(self.request("PUT", path, json=body, params=params, retry=retry))

    def patch(self, path: str, body: Any = None, **params: Any) -> Any:
        return _json(self.request("PATCH", path, json=body, params=params, retry=False))

    def delete(self, path: str, **params: Any) -> Any:
        return _json(self.request("DELETE", path, params=params, retry=False))

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
    ) -> Any:
        """Send one request, retrying where safe; raise the mapped error on a failure status."""
        repeatable = method in ("GET", "HEAD") if retry is None else retry
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        attempts = self.retry.attempts if repeatable else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._client.request(
                    method,
                    path,
                    json=_finite(json),
                    content=content,
                    params=query,
                    headers=dict(headers or {}),
                )
            except self._httpx.TransportError as exc:
                if attempt == attempts:
                    raise StorageError(
                        f"cannot reach the weightbase server at {self.url}: {exc}", url=self.url
                    ) from exc
                self._pause(attempt, f"{method} {path}: {exc}")
                continue
            if response.status_code in _RETRY_STATUSES and attempt < attempts:
                self._pause(attempt, f"{method} {path}: HTTP {response.status_code}")
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int, why: str) -> None:
        wait = self.retry.wait(attempt)
        logger.info("retrying in %.2fs after %s", wait, why)
        time.sleep(wait)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinities: send them as ``"nan"``, ``"inf"``, ``"-inf"``, as the
    server does (its float fields read them back)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _json(response: Any) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def _error(response: Any) -> WeightbaseError:
    """The error a failure response stands for, from its error body where it has one."""
    try:
        detail = response.json()["error"]
        kind = str(detail["type"])
        message = str(detail["message"])
        context = dict(detail.get("context") or {})
        request_id = detail.get("request_id")
    except (ValueError, KeyError, TypeError):
        kind = "http_error"
        message = f"HTTP {response.status_code}: {response.text[:200]}"
        context = {}
        request_id = response.headers.get("x-request-id")
    cls = ERROR_TYPES.get(kind, WeightbaseError)
    if cls is WeightbaseError and response.status_code < 500:
        cls = ValidationError if response.status_code < 404 else WeightbaseError
    context.pop("request_id", None)
    context.pop("status", None)
    error = cls(message, **context)
    error.request_id = request_id  # type: ignore[attr-defined]
    error.status = response.status_code  # type: ignore[attr-defined]
    return error
