"""What training needs of a workspace, as small protocols: ``Training``, the callbacks and
``CheckpointManager`` take any object that has these members, embedded or remote.

``weightbase.open()``'s ``Workspace`` satisfies :class:`TrainingWorkspace` (mypy checks
it), and so will a remote workspace with the same Python API. Each member lists only
the calls training makes; records (``Run``, ``ModelVersion``, ``DatasetVersion``,
``Snapshot``, ``Node``) are the ones every workspace returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import torch

    from weightbase.datasets import DatasetVersion
    from weightbase.lineage import Node
    from weightbase.registry.records import ModelVersion
    from weightbase.tensors import FileSource, Snapshot, WriteStats
    from weightbase.tracking.records import Run
    from weightbase.training.checkpoint import Checkpoint

__all__ = [
    "CheckpointLog",
    "RunT_co",
    "TrainingDatasets",
    "TrainingModels",
    "TrainingRun",
    "TrainingRuns",
    "TrainingStore",
    "TrainingWorkspace",
]


class TrainingRun(Protocol):
    """A live run that training logs into and ends (``wb.runs.start(...)``'s handle)."""

    @property
    def id(self) -> int: ...

    def log(
        self, metrics: Mapping[str, Any], step: int | None = None, epoch: float | None = None
    ) -> None: ...

    def link(self, target: Node, relation: str) -> None: ...

    def complete(self) -> object: ...

    def fail(self, reason: str | None = None) -> object: ...

    def cancel(self, reason: str | None = None) -> object: ...


#: The workspace's own run handle (``ActiveRun`` embedded), so ``Training.run`` keeps its
#: whole API for the caller, not only what training itself calls.
RunT_co = TypeVar("RunT_co", bound=TrainingRun, covariant=True)


class TrainingRuns(Protocol[RunT_co]):
    """``wb.runs``: start a run, take one back, find the unfinished one to resume."""

    def start(
        self,
        experiment: str,
        *,
        name: str | None,
        params: Mapping[str, Any],
        system_metrics: bool | float,
    ) -> RunT_co: ...

    def resume(
        self, run_id: int, *, system_metrics: bool | float, from_step: int | None = None
    ) -> RunT_co: ...

    def search_all(self, *, experiment: str) -> Sequence[Run]: ...


class TrainingModels(Protocol):
    """``wb.models``: push a checkpoint's weights as a version and record its lineage."""

    # ``register`` passes ``metrics``, ``config`` and whatever else its caller gives on to
    # push; ``*args, **options`` (mypy's "any signature") keeps the protocol from fixing them
    def push(self, name: str, source: Any, *args: Any, **options: Any) -> ModelVersion: ...

    def link(self, source: ModelVersion, relation: str, target: Node) -> None: ...


class TrainingDatasets(Protocol):
    """``wb.datasets``: the dataset version trained on and its lineage node."""

    def version(self, ref: DatasetVersion | str) -> DatasetVersion: ...

    def node(self, ref: DatasetVersion) -> Node: ...


class TrainingStore(Protocol):
    """``wb.store``: write, list, drop and read back checkpoints (snapshots under refs)."""

    def write(
        self,
        tensors: Mapping[str, Any],
        *,
        ref: str,
        parent: str | None,
        files: Iterable[FileSource],
        metadata: Mapping[str, str],
        codec: str | None,
        stats: WriteStats | None,
    ) -> Snapshot: ...

    def derive(
        self,
        snapshot: Snapshot | str,
        tensors: Mapping[str, str],
        *,
        files: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        ref: str | None = None,
    ) -> Snapshot: ...

    def refs(self, prefix: str) -> Mapping[str, str]: ...

    def delete_ref(self, name: str) -> None: ...

    def snapshot(self, snapshot: str) -> Snapshot: ...

    def read_torch(
        self, snapshot: Snapshot, names: Iterable[str] | None = None
    ) -> Mapping[str, torch.Tensor]: ...

    def file_bytes(self, snapshot: Snapshot, name: str) -> bytes: ...


class CheckpointLog(Protocol):
    """Where one run's checkpoints become catalog facts (:mod:`weightbase.training.records`)."""

    def saved(self, checkpoint: Checkpoint, *, stored_bytes: int) -> None: ...

    def pruned(self, refs: Sequence[str]) -> None: ...


class TrainingWorkspace(Protocol[RunT_co]):
    """The four services training uses: ``runs``, ``models``, ``datasets`` and ``store``."""

    @property
    def runs(self) -> TrainingRuns[RunT_co]: ...

    @property
    def models(self) -> TrainingModels: ...

    @property
    def datasets(self) -> TrainingDatasets: ...

    @property
    def store(self) -> TrainingStore: ...
