"""The review tables: ethics reviews signed off on model versions, and their explanations.

Rows only, owned by ``weightbase.governance``: ``governance.ethics`` rules the
reviews (questionnaire, answers, decision, sign-off digest), ``governance.explain``
the feature attributions computed for tabular models (migration ``0008``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from weightbase.catalog.base import Base, BigId, utcnow

__all__ = ["ETHICS_DECISIONS", "EthicsReviewRow", "ExplanationRow"]

#: What a reviewer can conclude: fit to use, usable with stated concerns, or not.
ETHICS_DECISIONS = ("approved", "concerns", "rejected")


class EthicsReviewRow(Base):
    """A reviewer's answers to an ethics questionnaire on a model version, signed off.

    ``signoff_digest`` is the SHA-256 of everything else that was signed (the
    version, reviewer, time, questionnaire and its digest, answers, decision,
    notes), so an edit to any of them after the fact is detectable.
    """

    __tablename__ = "ethics_reviews"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(255))
    decision: Mapped[str] = mapped_column(String(16))
    questionnaire: Mapped[str] = mapped_column(String(255))
    questionnaire_digest: Mapped[str] = mapped_column(String(64))
    # Question id → answer text, for the questions answered.
    answers: Mapped[dict[str, Any]]
    notes: Mapped[str | None] = mapped_column(Text)
    signoff_digest: Mapped[str] = mapped_column(String(64))
    reviewed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            f"decision IN ({', '.join(repr(value) for value in ETHICS_DECISIONS)})",
            name="decision",
        ),
        Index("ix_ethics_reviews_version", "version_id", "id"),
    )


class ExplanationRow(Base):
    """Feature attributions of a model version: mean |attribution| per feature, and how."""

    __tablename__ = "explanations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    # The explainer (``shap.PermutationExplainer``) and the library version that ran it.
    method: Mapped[str] = mapped_column(String(128))
    library_version: Mapped[str] = mapped_column(String(64))
    # ``[{"feature": name, "importance": mean |attribution|}, …]`` in the input's order.
    attributions: Mapped[list[Any]]
    sample_size: Mapped[int] = mapped_column(Integer)
    background_size: Mapped[int] = mapped_column(Integer)
    # The dataset version the explained rows came from, when the caller named one.
    dataset: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("ix_explanations_version", "version_id", "id"),)
