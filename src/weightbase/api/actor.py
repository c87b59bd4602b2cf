"""Who the audit log records as acting: the caller of the request being served.

The workspace's services are built once and share one change recorder; the
recorder's audit log asks ``actor`` and ``origin`` for every entry that names
no one. Here that log is a :class:`RequestAuditLog`, whose actor is the
authenticated caller of the current request and whose origin is that
request's token and client address (a context variable set by the auth
dependency, which each request's task and its worker thread see apart); outside
a request, the process's default actor and no origin. So services are not
rebuilt per request.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from weightbase.governance.audit import AuditLog, AuditOrigin

if TYPE_CHECKING:
    from weightbase.workspace import Workspace

__all__ = ["REQUEST_CALLER", "RequestAuditLog", "RequestCaller", "record_request_actors"]


@dataclass(frozen=True, slots=True)
class RequestCaller:
    """The authenticated caller of a request: the user, their token's id, the client's address."""

    user: str
    token_id: str | None = None
    remote_address: str | None = None


#: The caller of the request being served; None outside a request (or anonymous).
REQUEST_CALLER: ContextVar[RequestCaller | None] = ContextVar(
    "weightbase_request_caller", default=None
)


class RequestAuditLog(AuditLog):
    """An audit log whose default actor and origin are the current request's caller."""

    @property
    def actor(self) -> str:
        caller = REQUEST_CALLER.get()
        return caller.user if caller is not None else super().actor

    @property
    def origin(self) -> AuditOrigin:
        caller = REQUEST_CALLER.get()
        if caller is None:
            return super().origin
        return AuditOrigin(token_id=caller.token_id, remote_address=caller.remote_address)


def record_request_actors(workspace: Workspace) -> None:
    """Make every change ``workspace``'s services record name the current request's caller.

    Swaps the audit log of the workspace's one recorder, before or after its
    services are built (they hold the recorder, not the log).
    """
    audit = RequestAuditLog(workspace.catalog)
    workspace.audit = audit
    workspace.recorder.audit = audit
