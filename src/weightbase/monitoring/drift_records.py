"""The records a drift check returns: one per column, one per report, one per embedding check."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from weightbase.errors import NotFound

__all__ = ["ColumnDrift", "DriftReport", "EmbeddingDrift"]


def _number(value: float | None) -> float | str | None:
    """JSON has no infinity: an infinite statistic is written as the string ``"inf"``."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """Drift of one column between the reference and the current window.

    ``method`` is the statistic used (``ks``, ``wasserstein``, ``chisquare``, ``z``,
    ``jensenshannon``, ``psi``); ``score`` is what is compared with ``threshold``: the
    p-value of a test (drift when below; ``ks`` when at or below) or the distance
    (drift when at or above), as Evidently decides it. ``statistic`` is the test's own
    statistic (KS D, χ², z) or the distance; ``p_value`` is None for distances.
    """

    column: str
    kind: Literal["numeric", "categorical"]
    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    reference_count: int
    current_count: int

    @property
    def score(self) -> float:
        """Evidently's drift score: the p-value of a test, else the distance."""
        return self.statistic if self.p_value is None else self.p_value

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "method": self.method,
            "statistic": _number(self.statistic),
            "p_value": self.p_value,
            "score": _number(self.score),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnDrift:
        return cls(
            column=str(data["column"]),
            kind=data["kind"],
            method=str(data["method"]),
            statistic=float(data["statistic"]),  # "inf" and "-inf" read back as floats
            p_value=None if data.get("p_value") is None else float(data["p_value"]),
            threshold=float(data["threshold"]),
            drifted=bool(data["drifted"]),
            reference_count=int(data["reference_count"]),
            current_count=int(data["current_count"]),
        )


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Per-feature drift, the share of drifted features and the dataset-drift verdict.

    ``dataset_drift`` holds when ``drifted_share`` ≥ ``drift_share`` (Evidently's rule,
    0.5 by default). ``prediction`` is the prediction column's drift, kept apart: it
    does not count among the features. ``ignored`` names columns only one window had.
    """

    columns: tuple[ColumnDrift, ...]
    prediction: ColumnDrift | None
    drift_share: float
    reference_rows: int
    current_rows: int
    ignored: tuple[str, ...] = ()

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """The names of the features that drifted, in report order."""
        return tuple(item.column for item in self.columns if item.drifted)

    @property
    def drifted_share(self) -> float:
        """The share of features that drifted."""
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Whether the dataset as a whole drifted: at least ``drift_share`` of its features."""
        return bool(self.columns) and self.drifted_share >= self.drift_share

    def column(self, name: str) -> ColumnDrift:
        """The drift of feature ``name`` (or of the prediction column)."""
        for item in self.columns:
            if item.column == name:
                return item
        if self.prediction is not None and self.prediction.column == name:
            return self.prediction
        raise NotFound(f"no drift was measured for column {name!r}", column=name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [item.to_dict() for item in self.columns],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "drifted_columns": list(self.drifted_columns),
            "drifted_share": self.drifted_share,
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "ignored": list(self.ignored),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        prediction = data.get("prediction")
        return cls(
            columns=tuple(ColumnDrift.from_dict(item) for item in data["columns"]),
            prediction=None if prediction is None else ColumnDrift.from_dict(prediction),
            drift_share=float(data["drift_share"]),
            reference_rows=int(data["reference_rows"]),
            current_rows=int(data["current_rows"]),
            ignored=tuple(str(name) for name in data.get("ignored", ())),
        )


@dataclass(frozen=True, slots=True)
class EmbeddingDrift:
    """Drift of embeddings: how far the mean moved, and how well a classifier tells them apart.

    ``auc`` is the ROC AUC of a domain classifier (reference vs current); 0.5 means the
    windows look alike. ``drifted`` when ``auc`` > ``threshold`` (Evidently's 0.55).
    ``method`` says which classifier: ``logistic_cv`` or ``evidently`` (see
    :func:`weightbase.monitoring.drift_embeddings.embedding_drift`).
    """

    euclidean: float
    cosine: float
    auc: float
    threshold: float
    drifted: bool
    method: str
    reference_rows: int
    current_rows: int
    dimensions: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "euclidean": self.euclidean,
            "cosine": self.cosine,
            "auc": self.auc,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "method": self.method,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "dimensions": self.dimensions,
        }
