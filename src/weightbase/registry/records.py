"""The registry's records: what ``wb.models`` hands out (frozen, JSON-ready)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from weightbase.versioning.pages import Page

__all__ = ["Model", "ModelVersion", "Page"]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class Model:
    """A named model. ``aliases`` maps each alias to the version it points at."""

    id: int
    name: str
    description: str | None
    licence: str | None
    model_card: str | None
    framework: str | None
    owner: str | None
    created_at: datetime
    updated_at: datetime
    tags: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    latest_version: str | None = None
    version_count: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "aliases", _frozen(self.aliases))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "licence": self.licence,
            "model_card": self.model_card,
            "framework": self.framework,
            "owner": self.owner,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "tags": list(self.tags),
            "aliases": dict(self.aliases),
            "latest_version": self.latest_version,
            "version_count": self.version_count,
        }


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a model: a snapshot in the tensor store and what is known of it.

    ``created`` is false when a push found this version already holding the
    same content and returned it instead of making a duplicate. ``metrics``
    holds each metric's latest value; ``dataset_metrics`` those measured on a
    dataset, one value (the latest) per (dataset, metric):
    ``{"iris-test": {"accuracy": 0.91}}``.
    """

    id: int
    model: str
    model_id: int
    version: str
    snapshot_id: str
    content_digest: str | None
    stage: str
    description: str | None
    framework: str | None
    model_type: str | None
    num_layers: int | None
    hidden_size: int | None
    num_attention_heads: int | None
    head_dim: int | None
    total_params: int
    trainable_params: int
    logical_bytes: int
    stored_bytes: int
    dtypes: Mapping[str, int]
    created_at: datetime
    created_by: str | None
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    created: bool = True
    dataset_metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtypes", _frozen(self.dtypes))
        object.__setattr__(self, "metrics", _frozen(self.metrics))
        object.__setattr__(
            self,
            "dataset_metrics",
            MappingProxyType(
                {dataset: _frozen(values) for dataset, values in self.dataset_metrics.items()}
            ),
        )

    @property
    def ref(self) -> str:
        """``name@version``, the form every registry call and CLI command accepts."""
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "model_id": self.model_id,
            "version": self.version,
            "snapshot_id": self.snapshot_id,
            "content_digest": self.content_digest,
            "stage": self.stage,
            "description": self.description,
            "framework": self.framework,
            "model_type": self.model_type,
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "num_attention_heads": self.num_attention_heads,
            "head_dim": self.head_dim,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "dtypes": dict(self.dtypes),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "aliases": list(self.aliases),
            "tags": list(self.tags),
            "metrics": dict(self.metrics),
            "dataset_metrics": {
                dataset: dict(values) for dataset, values in self.dataset_metrics.items()
            },
            "created": self.created,
        }
