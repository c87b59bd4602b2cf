"""``wb.reactors`` of a remote workspace: fusion reactors on a weightbase server.

Every public method of :class:`~weightbase.serving.fusion.service.Reactors` is overridden
(a test checks that none is inherited) and answers from ``/api/v1/reactors``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from weightbase.errors import ValidationError
from weightbase.serving.fusion.records import Edge, FusionOperation, Member, Reactor
from weightbase.serving.fusion.rows import EdgeLike, MemberLike, edge_of, member_of
from weightbase.serving.fusion.service import Reactors

if TYPE_CHECKING:
    from weightbase.remote.http import Connection

__all__ = ["RemoteReactors"]

_REACTORS = "/api/v1/reactors"


def _member(value: MemberLike) -> dict[str, Any]:
    found = member_of(value)
    if isinstance(found, Member):
        return {key: item for key, item in found.to_dict().items() if key != "deployment_id"}
    given = dict(value) if not isinstance(value, str | Member) else {}
    return {**given, "ref": found}  # a deployment id: the server resolves it


def _edge(value: EdgeLike) -> dict[str, Any]:
    found: Edge = edge_of(value)
    return found.to_dict()


class RemoteReactors(Reactors):
    """Reactors kept by the server: the same records, over HTTP."""

    def __init__(self, connection: Connection) -> None:  # no catalog: the server has it
        self._http = connection

    def _path(self, reactor: str, tail: str = "") -> str:
        if not isinstance(reactor, str) or not reactor:
            raise ValidationError(f"a reactor is named by its name or id, not {reactor!r}")
        return f"{_REACTORS}/{quote(reactor, safe='')}{tail}"

    def create(
        self,
        name: str,
        *,
        members: Sequence[MemberLike],
        strategy: str = "weighted_average",
        edges: Sequence[EdgeLike] = (),
        threshold: float | None = None,
        description: str | None = None,
    ) -> Reactor:
        if isinstance(members, str | bytes):
            raise ValidationError("members are a list", field="members")
        body = {
            "name": name,
            "members": [_member(item) for item in members],
            "strategy": strategy,
            "edges": [_edge(item) for item in edges],
            "threshold": threshold,
            "description": description,
        }
        return Reactor.from_dict(self._http.post(_REACTORS, body))

    def fit_stacker(self, reactor: str, inputs: Sequence[Any], labels: Sequence[int]) -> Reactor:
        try:
            rows = np.asarray(inputs, dtype=np.float64).tolist()
            targets = np.asarray(labels).tolist()
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"inputs are rows of numbers ({exc})", field="inputs") from None
        body = {"inputs": rows, "labels": targets}
        return Reactor.from_dict(self._http.post(self._path(reactor, "/stacker"), body))

    def record_operations(self, reactor: str, operations: Sequence[FusionOperation]) -> int:
        body = {"operations": [item.to_dict() for item in operations]}
        return int(self._http.post(self._path(reactor, "/operations"), body)["recorded"])

    def get(self, reactor: str) -> Reactor:
        return Reactor.from_dict(self._http.get(self._path(reactor)))

    def list(self) -> builtins.list[Reactor]:
        return [Reactor.from_dict(item) for item in self._http.get(_REACTORS)["items"]]

    def operations(
        self, reactor: str, *, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[FusionOperation]:
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise ValidationError("since is a timezone-aware datetime", field="since")
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since.isoformat()
        found = self._http.get(self._path(reactor, "/operations"), **params)
        return [FusionOperation.from_dict(item) for item in found["items"]]
