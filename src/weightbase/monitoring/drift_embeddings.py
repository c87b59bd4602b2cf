"""Embedding drift for text models: how far the mean embedding moved, and whether a
classifier can tell the current window's embeddings from the reference's.

The verdict is the domain classifier's ROC AUC against Evidently's default threshold
for its model-based embeddings drift (0.55): at 0.5 the classifier cannot tell the
windows apart; the further above, the more they differ.

Two classifiers:

* ``logistic_cv`` (default): scikit-learn's logistic regression on standardised
  embeddings, its probabilities out of stratified k-fold cross-validation, so every
  row is scored once by a model that did not see it; steadier than one split.
* ``evidently``: Evidently's own definition (``ModelDriftMethod``): one 50/50 split
  (``random_state=42``), ``SGDClassifier(loss="log_loss", random_state=42)``, AUC on
  the held-out half; the same number Evidently reports on the same data.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from weightbase.errors import MissingExtraError, ValidationError
from weightbase.monitoring.drift_records import EmbeddingDrift

__all__ = ["EVIDENTLY_AUC_THRESHOLD", "embedding_drift"]

#: Evidently's default threshold of its model-based embeddings drift method.
EVIDENTLY_AUC_THRESHOLD = 0.55


def _matrix(values: Any, what: str) -> npt.NDArray[np.float64]:
    try:
        matrix = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"the {what} embeddings must be numbers: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 1:
        raise ValidationError(
            f"the {what} embeddings must be a 2-D array of at least 2 rows, not shape "
            f"{matrix.shape}",
            shape=matrix.shape,
        )
    if not np.isfinite(matrix).all():
        raise ValidationError(f"the {what} embeddings hold NaN or infinite values")
    return matrix


def embedding_drift(
    reference: Any,
    current: Any,
    *,
    threshold: float = EVIDENTLY_AUC_THRESHOLD,
    method: Literal["logistic_cv", "evidently"] = "logistic_cv",
    folds: int = 5,
    random_state: int = 42,
) -> EmbeddingDrift:
    """Drift between two sets of embeddings (rows x dimensions, same dimensions).

    Returns the Euclidean and cosine distances between the mean embeddings and the
    domain classifier's ROC AUC; ``drifted`` when the AUC exceeds ``threshold``.
    """
    try:
        from scipy.spatial import distance
        from sklearn.linear_model import LogisticRegression, SGDClassifier
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:  # pragma: no cover - both come with the monitoring extra
        raise MissingExtraError(
            "embedding drift needs scikit-learn and scipy: pip install 'weightbase[monitoring]'"
        ) from exc
    ref, cur = _matrix(reference, "reference"), _matrix(current, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValidationError(
            f"reference embeddings have {ref.shape[1]} dimensions, current {cur.shape[1]}"
        )
    if not 0 < threshold < 1:
        raise ValidationError("the AUC threshold must be in (0, 1)", threshold=threshold)
    ref_mean, cur_mean = ref.mean(axis=0), cur.mean(axis=0)
    euclidean = float(distance.euclidean(ref_mean, cur_mean))
    cosine = (
        float(distance.cosine(ref_mean, cur_mean))
        if np.any(ref_mean) and np.any(cur_mean)
        else 0.0  # a zero mean has no direction
    )
    data = np.concatenate([ref, cur])
    # Evidently labels the reference 1 and the current 0; the AUC is the same either way.
    labels = np.concatenate([np.ones(len(ref), dtype=np.int64), np.zeros(len(cur), dtype=np.int64)])
    if method == "evidently":
        x_train, x_test, y_train, y_test = train_test_split(
            data, labels, test_size=0.5, random_state=42, shuffle=True
        )
        classifier = SGDClassifier(loss="log_loss", random_state=42).fit(x_train, y_train)
        auc = float(roc_auc_score(y_test, classifier.predict_proba(x_test)[:, 1]))
    elif method == "logistic_cv":
        splits = min(folds, len(ref), len(cur))
        if splits < 2:
            raise ValidationError("cross-validation needs at least 2 rows in each window")
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        folding = StratifiedKFold(n_splits=splits, shuffle=True, random_state=random_state)
        scores = cross_val_predict(model, data, labels, cv=folding, method="predict_proba")
        auc = float(roc_auc_score(labels, scores[:, 1]))
    else:
        raise ValidationError(
            f"unknown embedding drift method {method!r}: logistic_cv or evidently", method=method
        )
    return EmbeddingDrift(
        euclidean=euclidean,
        cosine=cosine,
        auc=auc,
        threshold=float(threshold),
        drifted=auc > threshold,
        method=method,
        reference_rows=len(ref),
        current_rows=len(cur),
        dimensions=ref.shape[1],
    )
