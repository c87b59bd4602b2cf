"""Final metrics from predictions: accuracy, precision, recall, F1, ROC AUC, and your own.

    result = evaluate(y_true, y_score=probabilities)          # y_pred from the scores
    result.metrics["f1"], result.metrics["auc"]

Classification only; scikit-learn computes them (``pip install 'weightbase[tracking]'``).
Binary when the labels have at most two values, multi-class otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from weightbase.errors import ValidationError
from weightbase.tracking._extras import require

__all__ = ["STANDARD_METRICS", "Evaluation", "evaluate"]

#: What ``evaluate`` computes unless told otherwise (``auc`` only with ``y_score``).
STANDARD_METRICS = ("accuracy", "precision", "recall", "f1", "auc")

Average = Literal["binary", "micro", "macro", "weighted"] | None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Metrics computed from one set of predictions.

    ``metrics`` maps names to values (``precision/<class>`` per class when
    ``average=None``); ``task`` is ``binary`` or ``multiclass``; ``classes``
    the labels seen, sorted.
    """

    metrics: Mapping[str, float]
    task: Literal["binary", "multiclass"]
    classes: tuple[Any, ...]
    samples: int
    average: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {k: v if math.isfinite(v) else str(v) for k, v in self.metrics.items()},
            "task": self.task,
            "classes": [c.item() if isinstance(c, np.generic) else c for c in self.classes],
            "samples": self.samples,
            "average": self.average,
        }


def _sklearn_metrics() -> Any:
    return require(
        "sklearn.metrics",
        purpose="computing evaluation metrics",
        extra="tracking",
        package="scikit-learn",
    )[0]


def evaluate(
    y_true: Any,
    y_pred: Any = None,
    *,
    y_score: Any = None,
    metrics: Iterable[str] = STANDARD_METRICS,
    average: Average | Literal["auto"] = "auto",
    pos_label: Any = 1,
    threshold: float = 0.5,
    custom: Mapping[str, Callable[[Any, Any], float]] | None = None,
) -> Evaluation:
    """Classification metrics for labels ``y_true`` against ``y_pred`` and/or scores ``y_score``.

    - ``y_score``: for binary tasks the positive class's score (1-D) or a
      ``(n, 2)`` probability array; for multi-class ``(n, classes)``
      probabilities, columns in sorted label order. It gives ``auc`` and, if
      ``y_pred`` is missing, the predictions (score ≥ ``threshold``, or argmax).
    - ``average``: ``"binary"`` (for binary tasks), ``"macro"``, ``"micro"``,
      ``"weighted"``, or ``None`` for one value per class; ``"auto"`` picks
      ``binary`` or ``macro``. Multi-class AUC is one-vs-rest, macro-averaged.
    - ``custom``: ``{name: fn(y_true, y_pred) -> float}``, computed and added.

    A metric that is undefined (AUC when ``y_true`` holds one class) is NaN.
    """
    sk = _sklearn_metrics()
    truth = np.asarray(y_true)
    if truth.ndim != 1 or truth.shape[0] == 0:
        raise ValidationError(f"y_true must be a non-empty 1-D array, not shape {truth.shape}")
    scores = None if y_score is None else np.asarray(y_score, dtype=np.float64)
    if scores is not None and (scores.shape[0] != truth.shape[0] or scores.ndim > 2):
        raise ValidationError(
            f"y_score has shape {scores.shape}; expected ({truth.shape[0]},) or "
            f"({truth.shape[0]}, classes)"
        )
    wanted = list(metrics)
    unknown = sorted(set(wanted) - set(STANDARD_METRICS))
    if unknown:
        raise ValidationError(
            f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(STANDARD_METRICS)} "
            "(use custom= for others)"
        )
    labels_seen = np.unique(truth)
    if y_pred is None:
        if scores is None:
            raise ValidationError("evaluate needs y_pred or y_score")
        predictions = _predict(scores, labels_seen, threshold, pos_label)
    else:
        predictions = np.asarray(y_pred)
        if predictions.shape != truth.shape:
            raise ValidationError(
                f"y_pred has shape {predictions.shape}, y_true {truth.shape}; they must match"
            )
    classes = np.unique(np.concatenate([labels_seen, np.unique(predictions)]))
    multiclass = len(classes) > 2 or (
        scores is not None and scores.ndim == 2 and scores.shape[1] > 2
    )
    task: Literal["binary", "multiclass"] = "multiclass" if multiclass else "binary"
    chosen: Average = ("macro" if multiclass else "binary") if average == "auto" else average
    if chosen == "binary" and multiclass:
        raise ValidationError("average='binary' needs a binary task; use macro, micro or weighted")
    if chosen == "binary" and pos_label not in classes.tolist():
        raise ValidationError(
            f"pos_label {pos_label!r} is not among the labels {classes.tolist()}; pass pos_label="
        )
    found: dict[str, float] = {}
    label_options: dict[str, Any] = {"average": chosen, "zero_division": 0}
    if chosen == "binary":
        label_options["pos_label"] = pos_label
    else:
        label_options["labels"] = classes
    for name in wanted:
        if name == "accuracy":
            found["accuracy"] = float(sk.accuracy_score(truth, predictions))
        elif name in ("precision", "recall", "f1"):
            function = {
                "precision": sk.precision_score,
                "recall": sk.recall_score,
                "f1": sk.f1_score,
            }[name]
            value = function(truth, predictions, **label_options)
            if chosen is None:
                for label, per_class in zip(classes.tolist(), np.atleast_1d(value), strict=True):
                    found[f"{name}/{label}"] = float(per_class)
            else:
                found[name] = float(value)
        elif name == "auc" and scores is not None:
            found["auc"] = _auc(sk, truth, scores, classes, multiclass, pos_label)
    for name, function in (custom or {}).items():
        if not callable(function):
            raise ValidationError(f"custom metric {name!r} is not callable")
        try:
            found[name] = float(function(truth, predictions))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"custom metric {name!r} did not give a number: {exc}") from exc
    return Evaluation(
        metrics=found,
        task=task,
        classes=tuple(classes.tolist()),
        samples=int(truth.shape[0]),
        average=chosen,
    )


def _predict(scores: Any, labels: Any, threshold: float, pos_label: Any) -> Any:
    if scores.ndim == 2 and scores.shape[1] > 1:
        if scores.shape[1] != len(labels):
            raise ValidationError(
                f"y_score has {scores.shape[1]} columns but y_true has {len(labels)} classes; "
                "pass y_pred"
            )
        return labels[np.argmax(scores, axis=1)]
    positive = scores.reshape(-1) >= threshold
    others = [label for label in labels.tolist() if label != pos_label]
    negative = others[0] if others else (0 if pos_label == 1 else None)
    if negative is None:
        raise ValidationError("cannot tell the negative label from y_true; pass y_pred")
    return np.where(positive, pos_label, negative)


def _auc(sk: Any, truth: Any, scores: Any, classes: Any, multiclass: bool, pos_label: Any) -> float:
    if len(np.unique(truth)) < 2:
        return float("nan")  # undefined with one class present
    if multiclass:
        if scores.ndim != 2:
            raise ValidationError("multi-class AUC needs (n, classes) probabilities in y_score")
        labels = classes if len(classes) == scores.shape[1] else np.unique(truth)
        return float(
            sk.roc_auc_score(truth, scores, multi_class="ovr", average="macro", labels=labels)
        )
    positive = scores[:, -1] if scores.ndim == 2 else scores
    return float(sk.roc_auc_score(truth == pos_label, positive))
