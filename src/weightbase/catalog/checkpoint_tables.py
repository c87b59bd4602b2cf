"""The training checkpoints' table: each checkpoint a run stored, kept or pruned.

Rows only; :mod:`weightbase.training` owns the rules (when a checkpoint is taken,
which ones retention keeps). The tensor store's ref ``checkpoints/<namespace>/<step>``
keeps a kept checkpoint's content alive; a pruned one keeps its row as history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from weightbase.catalog.base import Base, BigId, utcnow

__all__ = ["CHECKPOINT_STATUSES", "CheckpointRow"]

#: ``kept``: its store ref holds it; ``pruned``: retention dropped the ref.
CHECKPOINT_STATUSES = ("kept", "pruned")


class CheckpointRow(Base):
    """One checkpoint of a run: step, epoch, metrics then, snapshot, stored bytes, status."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(String(255))
    step: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[int | None] = mapped_column(Integer)
    # name -> value; non-finite values as their repr ("nan", "inf"), as JSON has none
    metrics: Mapped[dict[str, Any]]
    snapshot_id: Mapped[str] = mapped_column(String(64))
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="kept")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    pruned_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("status IN ('kept', 'pruned')", name="status"),
        CheckConstraint("step >= 0", name="step"),
        Index("uq_checkpoints_ref", "ref", unique=True),
        Index("ix_checkpoints_run_step", "run_id", "step"),
    )
