"""Who the audit log records as acting: the caller of the request being served.

The workspace's services are built once and share one change recorder; the
recorder's audit log asks ``actor`` for every entry that names no one. Here
that log is a :class:`RequestAuditLog`, whose ``actor`` is the authenticated
caller of the current request (a context variable set by the auth dependency,
which each request's task and its worker thread see apart), and the process's
default actor outside a request. So services are not rebuilt per request.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from weightbase.governance.audit import AuditLog

if TYPE_CHECKING:
    from weightbase.workspace import Workspace

__all__ = ["REQUEST_ACTOR", "RequestAuditLog", "record_request_actors"]

#: The audit actor of the request being served; None outside a request (or anonymous).
REQUEST_ACTOR: ContextVar[str | None] = ContextVar("weightbase_request_actor", default=None)


class RequestAuditLog(AuditLog):
    """An audit log whose default actor is the current request's caller."""

    @property
    def actor(self) -> str:
        return REQUEST_ACTOR.get() or super().actor


def record_request_actors(workspace: Workspace) -> None:
    """Make every change ``workspace``'s services record name the current request's caller.

    Swaps the audit log of the workspace's one recorder, before or after its
    services are built (they hold the recorder, not the log).
    """
    audit = RequestAuditLog(workspace.catalog)
    workspace.audit = audit
    workspace.recorder.audit = audit
