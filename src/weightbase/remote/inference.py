"""``wb.inference`` of a remote workspace: inference records on a weightbase server.

Every public method of :class:`~weightbase.serving.inference_log.InferenceLog` is
overridden (a test checks that none is inherited) and answers from ``/api/v1/inference``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from weightbase.serving.inference_log import InferenceLog
from weightbase.serving.inference_records import InferenceSession, InferenceWindow

if TYPE_CHECKING:
    from weightbase.remote.http import Connection

__all__ = ["RemoteInference"]

_INFERENCE = "/api/v1/inference"


class RemoteInference(InferenceLog):
    """Inference windows and sessions kept by the server: the same records, over HTTP."""

    def __init__(self, connection: Connection) -> None:  # no catalog: the server has it
        self._http = connection

    def record(
        self,
        windows: Sequence[InferenceWindow] = (),
        sessions: Sequence[InferenceSession] = (),
    ) -> None:
        body = {
            "windows": [window.to_dict() for window in windows],
            "sessions": [session.to_dict() for session in sessions],
        }
        self._http.post(f"{_INFERENCE}/records", body)

    def metrics(
        self,
        model: str,
        *,
        version: str | None = None,
        environment: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> builtins.list[InferenceWindow]:
        found = self._http.get(
            f"{_INFERENCE}/metrics",
            model=model,
            version=version,
            environment=environment,
            since=None if since is None else since.isoformat(),
            limit=limit,
        )
        return [InferenceWindow.from_dict(item) for item in found["items"]]

    def sessions(
        self, model: str, *, version: str | None = None, limit: int = 100
    ) -> builtins.list[InferenceSession]:
        found = self._http.get(f"{_INFERENCE}/sessions", model=model, version=version, limit=limit)
        return [InferenceSession.from_dict(item) for item in found["items"]]
