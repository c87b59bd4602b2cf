"""The stacking combiner: a scikit-learn logistic regression over the members' class
probabilities, fitted on validation outputs, kept as plain tensors (never a pickle).

``fit_combiner`` fits and returns the arrays to store; ``apply_combiner`` reads them back
into probabilities exactly as ``LogisticRegression.predict_proba`` would give them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, softmax

from weightbase.errors import MissingExtraError, ValidationError
from weightbase.serving.fusion.strategies import Array

__all__ = ["Combiner", "apply_combiner", "fit_combiner", "stack_features"]


@dataclass(frozen=True)
class Combiner:
    """A fitted combiner: ``coef`` ``(K or 1, F)``, ``intercept`` and the class labels."""

    coef: Array
    intercept: Array
    classes: Array
    train_accuracy: float

    def tensors(self) -> dict[str, Array]:
        """What goes into the tensor store."""
        return {
            "coef": np.ascontiguousarray(self.coef, dtype=np.float64),
            "intercept": np.ascontiguousarray(self.intercept, dtype=np.float64),
            "classes": np.ascontiguousarray(self.classes, dtype=np.int64),
        }

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Any]) -> Combiner:
        return cls(
            coef=np.asarray(tensors["coef"], dtype=np.float64),
            intercept=np.asarray(tensors["intercept"], dtype=np.float64),
            classes=np.asarray(tensors["classes"], dtype=np.int64),
            train_accuracy=float("nan"),
        )


def stack_features(probs: Sequence[Array]) -> Array:
    """The combiner's input: the members' probabilities side by side, ``(N, M*C)``."""
    return np.hstack(list(probs))


def fit_combiner(features: Array, labels: Sequence[int], width: int) -> Combiner:
    """Fit a logistic regression of ``labels`` (class indices below ``width``) on ``features``."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:  # pragma: no cover - the demo/data extras bring it
        raise MissingExtraError(
            "stacking needs scikit-learn: pip install 'weightbase[demo]'",
            module="sklearn",
            extra="demo",
        ) from exc
    target = np.asarray(labels)
    if target.ndim != 1 or target.shape[0] != features.shape[0]:
        raise ValidationError(
            f"one label per input: {features.shape[0]} inputs, labels of shape {target.shape}",
            field="labels",
        )
    if not np.issubdtype(target.dtype, np.integer) or target.min() < 0 or target.max() >= width:
        raise ValidationError(
            f"labels are class indices 0..{width - 1} of the members' outputs", field="labels"
        )
    if np.unique(target).size < 2:
        raise ValidationError("stacking needs labels of at least 2 classes", field="labels")
    model = LogisticRegression(max_iter=2000)
    model.fit(features, target)
    accuracy = float(np.mean(model.predict(features) == target))
    return Combiner(model.coef_, model.intercept_, model.classes_, accuracy)


def apply_combiner(combiner: Combiner, features: Array, width: int) -> Array:
    """Class probabilities ``(N, width)``: the regression's, placed at its classes' columns
    (classes it never saw get 0)."""
    if features.shape[1] != combiner.coef.shape[1]:
        raise ValidationError(
            f"the combiner was fitted on {combiner.coef.shape[1]} features, not "
            f"{features.shape[1]}: refit it after changing members"
        )
    scores = features @ combiner.coef.T + combiner.intercept
    if combiner.coef.shape[0] == 1:  # two classes: one score, as scikit-learn keeps it
        positive = expit(scores[:, 0])
        fitted = np.stack([1.0 - positive, positive], axis=1)
    else:
        fitted = softmax(scores, axis=1)
    out = np.zeros((features.shape[0], width), dtype=np.float64)
    out[:, combiner.classes] = fitted
    return out
