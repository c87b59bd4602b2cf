"""The fusion reactors' tables: each reactor (members, strategy, interaction graph, learned
combiner) and the log of its fusion operations.

Rows only; :mod:`weightbase.serving.fusion` owns the rules (which strategies exist, which
graphs are acyclic, how members' answers combine).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from weightbase.catalog.base import Base, BigId, utcnow

__all__ = ["FUSION_STRATEGIES", "ReactorOperationRow", "ReactorRow"]

#: How a reactor combines its members' answers.
FUSION_STRATEGIES = ("weighted_average", "majority_vote", "stacking", "parallel", "cascade")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class ReactorRow(Base):
    """A fusion reactor: its members, strategy, interaction graph and learned combiner."""

    __tablename__ = "reactors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    strategy: Mapped[str] = mapped_column(String(32))
    # [{"ref", "role", "weight", "priority"}, ...], in the order they were given.
    members: Mapped[list[Any]]
    # [{"source", "target", "relation"}, ...]: the interaction graph, acyclic.
    edges: Mapped[list[Any]]
    # A cascade's confidence threshold (max softmax probability) to answer without escalating.
    threshold: Mapped[float | None] = mapped_column(Double)
    # The stacking combiner: the snapshot holding its coefficients and intercepts ...
    stacker_snapshot_id: Mapped[str | None] = mapped_column(String(128))
    # ... and what reads them: {"classes", "members", "samples", "train_accuracy"}.
    stacker: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint(_in("strategy", FUSION_STRATEGIES), name="strategy"),
        CheckConstraint(
            "threshold IS NULL OR (threshold >= 0 AND threshold <= 1)", name="threshold"
        ),
    )


class ReactorOperationRow(Base):
    """One fusion operation (one batch through a reactor): which members answered, a summary
    of their outputs, latency per member and in all, and how many inputs escalated."""

    __tablename__ = "reactor_operations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reactor_id: Mapped[str] = mapped_column(ForeignKey("reactors.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    batch_size: Mapped[int] = mapped_column(Integer)
    # {member: {"rows", "argmax", "confidence", "latency_ms"}, ...} for the members that answered.
    members: Mapped[dict[str, Any]]
    # The fused answer per input: {"argmax": [...], "confidence": [...]} (empty for parallel).
    result: Mapped[dict[str, Any]]
    escalated: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        CheckConstraint("batch_size >= 0", name="batch_size"),
        CheckConstraint("escalated >= 0", name="escalated"),
        Index("ix_reactor_operations_reactor_at", "reactor_id", "at"),
    )
