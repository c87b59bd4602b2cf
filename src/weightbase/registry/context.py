"""What the registry's parts share: one context, and the names a version goes by.

Each part (push, queries, aliases, tags, metrics, models) is a set of functions
taking a :class:`RegistryContext`; :class:`~weightbase.registry.service.ModelRegistry`
builds one and hands it to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from weightbase.lineage import Node

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.catalog.schema import ModelRow, ModelVersionRow
    from weightbase.changes import ChangeRecorder
    from weightbase.lineage import LineageService
    from weightbase.tensors import TensorStore
    from weightbase.versioning.named import NamedEntities

__all__ = [
    "PRODUCTION",
    "VERSION_NODE",
    "ProductionGuard",
    "RegistryContext",
    "version_node",
    "version_ref",
]

#: The lineage node kind of a model version.
VERSION_NODE = "model_version"

#: The stage, and the alias, that a governance policy may guard.
PRODUCTION = "production"

#: Called with ``(session, model_id, version_row)`` in the transaction that would move a
#: version into the ``production`` stage or alias; raises to refuse the move.
ProductionGuard = Callable[["Session", int, "ModelVersionRow"], None]


@dataclass(frozen=True, slots=True)
class RegistryContext:
    """The catalog, the store, the change recorder, lineage, and the live models by name."""

    catalog: Catalog
    store: TensorStore
    recorder: ChangeRecorder
    lineage: LineageService
    models: NamedEntities[ModelRow]
    guard: ProductionGuard | None = None

    def check_production(self, session: Session, model_id: int, row: ModelVersionRow) -> None:
        """Let the guard refuse ``row``'s move into production (no guard: always allowed)."""
        if self.guard is not None:
            self.guard(session, model_id, row)


def version_ref(version_id: int) -> str:
    """The tensor-store ref that pins a model version's weights."""
    return f"registry/model-versions/{version_id}"


def version_node(version_id: int) -> Node:
    """The lineage node of the model version ``version_id``."""
    return Node(VERSION_NODE, str(version_id))
