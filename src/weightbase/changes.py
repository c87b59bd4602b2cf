"""The change recorder: how every domain writes down what it changed.

A change is recorded in the caller's transaction as one audit entry, at most
one event and any lineage edges it makes, so the change and its record commit
(or vanish) together:

    with catalog.transaction() as session:
        ...                                                     # the change itself
        recorder.record(session, "alias.set", "model", model_id,
                        before={"alias": "production", "version": "1.0.0"},
                        after={"alias": "production", "version": "1.1.0"},
                        event="model_alias_set")
        recorder.link(session, Node("model_version", "7"), Node("model_version", "3"),
                      "fine_tuned_from")

Every service takes one recorder; the workspace builds it once on its audit
log and event bus. The catalog below keeps rows and sessions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from weightbase.governance.audit import AuditLog
from weightbase.lineage.edges import Relations, delete_edge, insert_edge

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.events import Event, EventBus
    from weightbase.governance.audit import AuditEntry
    from weightbase.lineage.records import LineageEdge, Node

__all__ = ["ChangeRecorder"]


class ChangeRecorder:
    """Writes audit entries, events and lineage edges in the transaction of the change."""

    def __init__(self, audit: AuditLog, events: EventBus, *, relations: Iterable[str] = ()) -> None:
        self.audit = audit
        self.events = events
        self.relations = Relations(relations)

    @classmethod
    def on(cls, catalog: Catalog, *, actor: str | None = None) -> ChangeRecorder:
        """A recorder with an audit log and event bus of its own on ``catalog``."""
        from weightbase.events import EventBus

        return cls(AuditLog(catalog, actor=actor), EventBus(catalog))

    @property
    def actor(self) -> str:
        """Who the audit log records as acting when a call names no one."""
        return self.audit.actor

    def record(
        self,
        session: Session,
        action: str,
        entity_kind: str,
        entity_id: int | str,
        *,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        reason: str | None = None,
        event: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Record one change: an audit entry, and the event ``event`` when one is named.

        The event's payload is ``payload`` when given; otherwise the entity's id
        (as ``<entity_kind>_id``), the ``after`` fields, the ``before`` fields as
        ``previous_<field>`` and the ``reason``.
        """
        entry = self.audit.record(
            session,
            action=action,
            entity_kind=entity_kind,
            entity_id=entity_id,
            before=before,
            after=after,
            reason=reason,
        )
        if event is not None:
            if payload is None:
                payload = _default_payload(entity_kind, entity_id, before, after, reason)
            self.events.emit(event, payload, session=session)
        return entry

    def emit(self, session: Session, event: str, payload: Mapping[str, Any]) -> Event:
        """An event with no audit entry of its own (the entry is recorded beside it)."""
        return self.events.emit(event, payload, session=session)

    def link(self, session: Session, source: Node, target: Node, relation: str) -> LineageEdge:
        """Record the lineage edge ``source <relation> target``; an existing edge is kept as is.

        A new edge is audited (``lineage.add_edge``) and emitted (``lineage_edge_added``).
        """
        self.relations.check(relation)
        edge, added = insert_edge(session, source, target, relation)
        if added is not None:
            data = edge.to_dict()
            self.record(
                session,
                "lineage.add_edge",
                "lineage_edge",
                added,
                after=data,
                event="lineage_edge_added",
                payload=data,
            )
        return edge

    def unlink(self, session: Session, source: Node, target: Node, relation: str) -> LineageEdge:
        """Delete the lineage edge ``source <relation> target``; ``NotFound`` if there is none."""
        edge, removed = delete_edge(session, source, target, relation)
        data = edge.to_dict()
        self.record(
            session,
            "lineage.remove_edge",
            "lineage_edge",
            removed,
            before=data,
            event="lineage_edge_removed",
            payload=data,
        )
        return edge


def _default_payload(
    entity_kind: str,
    entity_id: int | str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str | None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {f"{entity_kind}_id": entity_id}
    if after is not None:
        payload.update(after)
    if before is not None:
        payload.update({f"previous_{key}": value for key, value in before.items()})
    if reason is not None:
        payload["reason"] = reason
    return payload
