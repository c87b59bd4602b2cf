"""Checkpoints as catalog facts: one row per checkpoint of a run, kept or pruned, with lineage.

    log = checkpoint_log(wb, run_id)        # what Training records through
    log.saved(checkpoint, stored_bytes=n)   # a row, and (checkpoint) produced_by (run)
    log.pruned(["checkpoints/runs/3/…"])    # retention dropped their refs: rows say so
    checkpoint_history(wb, run_id)          # every checkpoint the run took, oldest first

The store's ref ``checkpoints/<namespace>/<step>`` keeps a checkpoint's content alive;
its ``checkpoints`` row is the fact the catalog, lineage and API see, and outlives
pruning as history. A checkpoint is recorded once its snapshot and ref are durable.

A remote workspace cannot record rows yet (its server has no route for them): there
``checkpoint_log`` returns :data:`UNRECORDED`, which records nothing, on purpose, and
``checkpoint_history`` raises ``NotSupported``; checkpoints stay store refs alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select, update

from weightbase.catalog.schema import CheckpointRow, utcnow
from weightbase.errors import NotSupported
from weightbase.lineage import Node
from weightbase.lineage.address import CHECKPOINT_KIND

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.training.checkpoint import Checkpoint
    from weightbase.training.ports import CheckpointLog

__all__ = [
    "UNRECORDED",
    "CatalogCheckpointLog",
    "CheckpointRecord",
    "checkpoint_history",
    "checkpoint_log",
]

#: The lineage relation of a checkpoint to the run that took it.
PRODUCED_BY = "produced_by"


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A checkpoint as the catalog keeps it: the run's, with what it cost and whether it is kept."""

    run_id: int
    ref: str
    step: int
    epoch: int | None
    metrics: Mapping[str, float]
    snapshot_id: str
    stored_bytes: int
    status: Literal["kept", "pruned"]
    created_at: datetime
    pruned_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ref": self.ref,
            "step": self.step,
            "epoch": self.epoch,
            "metrics": {k: (v if math.isfinite(v) else repr(v)) for k, v in self.metrics.items()},
            "snapshot_id": self.snapshot_id,
            "stored_bytes": self.stored_bytes,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "pruned_at": self.pruned_at.isoformat() if self.pruned_at else None,
        }


class CatalogCheckpointLog:
    """Records one run's checkpoints in an embedded workspace's catalog, with their lineage."""

    def __init__(self, catalog: Catalog, recorder: ChangeRecorder, run_id: int) -> None:
        self._catalog = catalog
        self._recorder = recorder
        self.run_id = run_id

    def saved(self, checkpoint: Checkpoint, *, stored_bytes: int) -> None:
        """A row for ``checkpoint`` (kept), and the edge ``(checkpoint) produced_by (run)``.

        A ref saved again (a resumed run that reaches the same step) updates its row.
        """
        metrics = {k: (v if math.isfinite(v) else repr(v)) for k, v in checkpoint.metrics.items()}

        def work(session: Session) -> None:
            row = session.scalars(
                select(CheckpointRow).where(CheckpointRow.ref == checkpoint.ref)
            ).one_or_none()
            if row is None:
                row = CheckpointRow(ref=checkpoint.ref, run_id=self.run_id)
                session.add(row)
            row.run_id = self.run_id
            row.step = checkpoint.step
            row.epoch = checkpoint.epoch
            row.metrics = metrics
            row.snapshot_id = checkpoint.snapshot_id
            row.stored_bytes = stored_bytes
            row.status = "kept"
            row.created_at = utcnow()
            row.pruned_at = None
            self._recorder.link(
                session,
                Node(CHECKPOINT_KIND, checkpoint.ref),
                Node("run", str(self.run_id)),
                PRODUCED_BY,
            )

        self._catalog.write(work)

    def pruned(self, refs: Sequence[str]) -> None:
        """Mark the rows of ``refs`` pruned (their store refs are gone)."""
        if not refs:
            return

        def work(session: Session) -> None:
            session.execute(
                update(CheckpointRow)
                .where(CheckpointRow.ref.in_(list(refs)), CheckpointRow.status == "kept")
                .values(status="pruned", pruned_at=utcnow())
            )

        self._catalog.write(work)

    def history(self) -> list[CheckpointRecord]:
        """Every checkpoint of the run, kept and pruned, oldest step first."""
        with self._catalog.session() as session:
            rows = session.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.run_id == self.run_id)
                .order_by(CheckpointRow.step, CheckpointRow.id)
            ).all()
            return [_record(row) for row in rows]


class _Unrecorded:
    """Records nothing: a workspace whose catalog training cannot write (a remote one)."""

    def saved(self, checkpoint: Checkpoint, *, stored_bytes: int) -> None:
        """Nothing: the checkpoint is kept by its store ref alone."""

    def pruned(self, refs: Sequence[str]) -> None:
        """Nothing: no rows to mark."""


#: The log of a workspace that cannot record checkpoint rows: a deliberate no-op.
UNRECORDED: CheckpointLog = _Unrecorded()


def checkpoint_log(wb: object, run_id: int) -> CheckpointLog:
    """Where ``run_id``'s checkpoints are recorded: the catalog of an embedded workspace,
    else (a remote one) :data:`UNRECORDED`."""
    from weightbase.catalog import Catalog

    try:
        catalog = getattr(wb, "catalog", None)
        recorder = getattr(wb, "recorder", None)
    except NotSupported:  # a remote workspace: its catalog is the server's
        return UNRECORDED
    if isinstance(catalog, Catalog) and recorder is not None:
        return CatalogCheckpointLog(catalog, recorder, run_id)
    return UNRECORDED


def checkpoint_history(wb: object, run_id: int) -> list[CheckpointRecord]:
    """Every checkpoint ``run_id`` took, kept and pruned, oldest step first."""
    log = checkpoint_log(wb, run_id)
    if not isinstance(log, CatalogCheckpointLog):
        raise NotSupported("checkpoint rows are kept in an embedded workspace's catalog only")
    return log.history()


def _record(row: CheckpointRow) -> CheckpointRecord:
    metrics = {k: float(v) for k, v in (row.metrics or {}).items()}
    return CheckpointRecord(
        run_id=row.run_id,
        ref=row.ref,
        step=row.step,
        epoch=row.epoch,
        metrics=metrics,
        snapshot_id=row.snapshot_id,
        stored_bytes=row.stored_bytes,
        status="pruned" if row.status == "pruned" else "kept",
        created_at=row.created_at,
        pruned_at=row.pruned_at,
    )
