"""One JSON error body for every failure, mapped from weightbase's one error tree.

    {"error": {"type": "not_found", "message": "…", "request_id": "…", "context": {…}}}

A ``WeightbaseError`` maps by class to a status (``STATUSES``); a request that
does not fit the schema is 422 (400 when its body is not JSON at all); a catalog
that cannot be reached is 503. Anything else is 500: the body carries the
request id and a fixed message, never a traceback; the log has the exception.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException

from weightbase.errors import (
    ApprovalRequired,
    AuthenticationError,
    Conflict,
    IntegrityError,
    MissingExtraError,
    NotFound,
    PermissionDenied,
    StorageError,
    ValidationError,
    WeightbaseError,
)

__all__ = [
    "STATUSES",
    "ErrorBody",
    "ErrorDetail",
    "JSONBody",
    "error_response",
    "install_error_handlers",
    "request_id_of",
]

logger = logging.getLogger("weightbase.api")


#: Status and error type per class of the error tree; the first class that matches wins.
STATUSES: tuple[tuple[type[WeightbaseError], int, str], ...] = (
    (AuthenticationError, 401, "not_authenticated"),
    (ApprovalRequired, 403, "approval_required"),
    (PermissionDenied, 403, "permission_denied"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (ValidationError, 422, "validation_error"),
    (StorageError, 503, "unavailable"),
    (MissingExtraError, 501, "not_available"),
    (IntegrityError, 500, "integrity_error"),
)

_HTTP_TYPES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "validation_error",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``type``, a message for people, the request id, details."""

    type: str
    message: str
    request_id: str | None
    context: dict[str, Any]


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class JSONBody(JSONResponse):
    """JSON where NaN and infinities are the strings ``"nan"``, ``"inf"``, ``"-inf"``.

    Metric values may be non-finite; JSON has no such numbers, and a bare
    ``NaN`` token would break strict clients.
    """

    def render(self, content: Any) -> bytes:
        return json.dumps(
            _finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def request_id_of(request: Request) -> str | None:
    """The id the request-context middleware gave this request."""
    state: Mapping[str, Any] = request.scope.get("state", {})
    found = state.get("request_id")
    return found if isinstance(found, str) else None


def error_response(
    status: int,
    error_type: str,
    message: str,
    *,
    request_id: str | None,
    context: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONBody:
    """The one error body, with ``status``."""
    body = ErrorBody(
        error=ErrorDetail(
            type=error_type,
            message=message,
            request_id=request_id,
            context=_plain_context(context or {}),
        )
    )
    return JSONBody(body.model_dump(), status_code=status, headers=dict(headers or {}))


def _plain_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """Context values JSON can carry as they are; anything else as its text."""

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list | tuple | set | frozenset):
            return [plain(item) for item in value]
        if isinstance(value, Mapping):
            return {str(key): plain(item) for key, item in value.items()}
        return str(value)

    return {str(key): plain(value) for key, value in context.items()}


def _weightbase_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, WeightbaseError)
    request_id = request_id_of(request)
    status, error_type = next(
        ((status, kind) for cls, status, kind in STATUSES if isinstance(exc, cls)),
        (500, "internal_error"),
    )
    if status >= 500 and status != 503:
        logger.error("request %s failed: %s", request_id, exc, exc_info=exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(
        status,
        error_type,
        exc.message,
        request_id=request_id,
        context=exc.context,
        headers=headers,
    )


def _validation_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    if any(error["type"] == "json_invalid" for error in errors):
        status, error_type, message = 400, "bad_request", "the request body is not valid JSON"
    else:
        status, error_type = 422, "validation_error"
        message = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
    return error_response(
        status, error_type, message, request_id=request_id_of(request), context={"errors": errors}
    )


def _http_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, HTTPException)
    error_type = _HTTP_TYPES.get(exc.status_code, "http_error")
    return error_response(
        exc.status_code,
        error_type,
        str(exc.detail),
        request_id=request_id_of(request),
        headers=exc.headers,
    )


def _catalog_unavailable(request: Request, exc: Exception) -> JSONBody:
    request_id = request_id_of(request)
    logger.warning("request %s: the catalog is unavailable: %s", request_id, exc)
    return error_response(
        503, "unavailable", "the catalog is unavailable; try again", request_id=request_id
    )


def _unstorable(request: Request, exc: Exception) -> JSONBody:
    """A value the catalog cannot hold: a number past 64 bits, a NUL in text (422, not 500)."""
    cause = exc.orig if isinstance(exc, sa_exc.StatementError) else exc
    if not isinstance(cause, OverflowError | ValueError) and not isinstance(exc, sa_exc.DataError):
        request_id = request_id_of(request)
        logger.error("request %s failed: %s", request_id, exc, exc_info=exc)
        return error_response(
            500,
            "internal_error",
            f"internal server error; quote request id {request_id} when reporting it",
            request_id=request_id,
        )
    return error_response(
        422,
        "validation_error",
        "a value in the request is out of what the catalog holds "
        "(a number beyond 64 bits, or a NUL character in text)",
        request_id=request_id_of(request),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map the error tree, schema errors, HTTP errors and driver errors to the one body."""
    app.add_exception_handler(OverflowError, _unstorable)
    app.add_exception_handler(sa_exc.DataError, _unstorable)
    app.add_exception_handler(sa_exc.StatementError, _unstorable)
    app.add_exception_handler(WeightbaseError, _weightbase_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(sa_exc.OperationalError, _catalog_unavailable)
    app.add_exception_handler(sa_exc.InterfaceError, _catalog_unavailable)
