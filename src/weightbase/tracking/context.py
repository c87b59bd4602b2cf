"""What the parts of the run tracker share (:class:`TrackingContext`) and what a handle needs.

Each part of :class:`~weightbase.tracking.service.RunTracker` holds the one
context the tracker builds instead of reaching into the tracker; a run's handle
reaches the tracker only through :class:`RunHost`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.lineage import LineageService
    from weightbase.tensors import Snapshot, TensorStore
    from weightbase.tracking.metrics import MetricStore
    from weightbase.tracking.records import Artifact, Run, RunStatus
    from weightbase.tracking.system import ResourceSample

__all__ = ["RUN_KIND", "ArtifactSource", "RunHost", "TrackingContext"]

#: The entity kind of a run in audit entries, tags and lineage nodes.
RUN_KIND = "run"

#: What can be logged as an artifact: a file or folder, named arrays, or a snapshot in the store.
ArtifactSource: TypeAlias = "str | os.PathLike[str] | Mapping[str, Any] | Snapshot"


@dataclass(frozen=True, slots=True)
class TrackingContext:
    """The state every part of one run tracker works on.

    ``recorder`` records every change but metric points (an audit entry, and an
    event where one is named); ``lineage`` links runs to what they used;
    ``batch_points`` and ``flush_interval`` tune every run's metric writer.
    """

    catalog: Catalog
    store: TensorStore
    metric_store: MetricStore
    recorder: ChangeRecorder
    lineage: LineageService
    batch_points: int
    flush_interval: float

    @property
    def actor(self) -> str:
        """Who new experiments and runs are created by."""
        return self.recorder.actor


class RunHost(Protocol):
    """What a run's handle (:class:`~weightbase.tracking.run.ActiveRun`) asks of its tracker.

    :class:`~weightbase.tracking.service.RunTracker` is one; the handle reaches
    nothing else of it.
    """

    def get(self, run_id: int) -> Run: ...

    def set_status(
        self, run_id: int, status: RunStatus, *, reason: str | None, usage: ResourceSample | None
    ) -> Run: ...

    def add_usage(self, run_id: int, usage: ResourceSample) -> None: ...

    def log_params(self, run_id: int, params: Mapping[str, Any]) -> None: ...

    def record_seeds(self, run_id: int, seeds: Mapping[str, int]) -> None: ...

    def set_tags(self, run_id: int, tags: Iterable[str]) -> None: ...

    def remove_tags(self, run_id: int, tags: Iterable[str]) -> None: ...

    def log_artifact(
        self, run_id: int, source: ArtifactSource, *, name: str | None, overwrite: bool
    ) -> Artifact: ...
