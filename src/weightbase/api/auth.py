"""Token authentication and per-route authorization, as a FastAPI dependency.

Every route under ``/api/v1`` depends on :func:`access`: it reads
``Authorization: Bearer <token>``, asks the server's :class:`Authenticator`
(the workspace's ``wb.access``) who that is, then whether they may do the
route's action: ``read`` for GET, ``write`` for mutations unless a route names
``approve`` or ``admin``; a mutation of a model is checked against that
model's owner and team. No token is 401, unless the server allows anonymous
reads and the action is ``read``; a token that may not do it is 403. The
caller becomes the audit actor of what the request changes, with its token's
id and the client's address as the origin (:mod:`weightbase.api.actor`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from weightbase.api.actor import REQUEST_CALLER, RequestCaller
from weightbase.errors import AuthenticationError, PermissionDenied

__all__ = ["Action", "Authenticator", "Principal", "access"]

Action = Literal["read", "write", "approve", "admin"]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class Principal(Protocol):
    """Who a token signs in as: what the audit log records, and the token's public id."""

    @property
    def user(self) -> str: ...

    @property
    def token_id(self) -> str | None: ...


class Authenticator(Protocol):
    """What the server asks about tokens (``weightbase.governance.access.Access`` answers it)."""

    def authenticate(self, secret: str) -> Principal:
        """Who ``secret`` signs in as; ``AuthenticationError`` (a ``PermissionDenied``) if none."""
        ...

    def can(self, principal: Any, action: str, model: str | None = None) -> bool:
        """Whether ``principal`` may do ``action`` (on ``model``, by its ownership)."""
        ...


def access(action: Action | None = None) -> Callable[[Request], Awaitable[Principal | None]]:
    """The dependency that admits a request to a route whose action is ``action``.

    Without ``action`` it follows the method: ``read`` for GET and HEAD,
    ``write`` for everything else. It returns the caller, None when anonymous.
    """

    async def admit(request: Request) -> Principal | None:
        needed: Action = action or ("read" if request.method in _READS else "write")
        # Ownership narrows changes only: reads need no lookup of the model.
        model = request.path_params.get("model") if needed != "read" else None
        found = await _authenticate(request, needed, model)
        principal = None if found is None else found[0]
        if found is not None:
            principal, allowed = found
            if not allowed:
                raise PermissionDenied(
                    f"{principal.user} may not {needed} " + (f"model {model}" if model else "here"),
                    action=needed,
                    user=principal.user,
                )
            # Set in the request's own task: the endpoint's worker thread inherits it.
            client = request.client
            REQUEST_CALLER.set(
                RequestCaller(
                    user=principal.user,
                    token_id=principal.token_id,
                    remote_address=None if client is None else client.host,
                )
            )
        request.state.principal = principal
        return principal

    return admit


async def _authenticate(
    request: Request, needed: Action, model: str | None
) -> tuple[Principal, bool] | None:
    """Who the token is and whether they may do ``needed`` (one trip to a worker thread)."""
    header = request.headers.get("authorization")
    if header is None:
        if needed == "read" and request.app.state.options.anonymous_read:
            return None
        raise AuthenticationError(
            "this request needs a token: send 'Authorization: Bearer <token>'"
        )
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    authenticator: Authenticator | None = request.app.state.authenticator
    if authenticator is None:
        raise AuthenticationError("this server has no token service; it serves anonymous reads")

    def check() -> tuple[Principal, bool]:
        principal = authenticator.authenticate(secret)
        return principal, authenticator.can(principal, needed, model)

    return await run_in_threadpool(check)
