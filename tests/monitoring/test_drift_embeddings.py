"""Embedding drift: mean-embedding distances, the domain classifier's AUC, and Evidently's
own model-based method reproduced to 1e-6."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from benchmarks.monitoring_evidently import load
from scipy.spatial import distance

from weightbase.errors import ValidationError
from weightbase.monitoring.drift_embeddings import embedding_drift


def _embeddings(seed: int, rows: int, shift: float, dims: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(rows, dims))
    base[:, :4] += shift
    return base


def test_shifted_embeddings_drift_and_like_ones_do_not() -> None:
    reference = _embeddings(0, 1000, 0.0)
    shifted = embedding_drift(reference, _embeddings(1, 800, 0.8))
    assert shifted.auc > 0.8
    assert shifted.drifted
    same = embedding_drift(reference, _embeddings(2, 800, 0.0))
    # Out-of-fold AUC of a classifier fitting noise scatters around 0.5 (a little below,
    # as cross-validation's held-out folds lean against what was fitted): 0.55 clears it.
    assert abs(same.auc - 0.5) < 0.05
    assert not same.drifted
    assert shifted.euclidean > same.euclidean
    assert shifted.euclidean == pytest.approx(
        distance.euclidean(reference.mean(axis=0), _embeddings(1, 800, 0.8).mean(axis=0))
    )
    assert 0 <= same.cosine <= 2
    assert shifted.to_dict()["method"] == "logistic_cv"
    assert shifted.dimensions == 16


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_the_evidently_method_gives_evidentlys_auc(shift: float) -> None:
    load()
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import model

    reference = _embeddings(3, 250, 0.0, dims=8)
    current = _embeddings(4, 200, shift, dims=8)
    ours = embedding_drift(reference, current, method="evidently")
    auc, drifted, name = model()(pd.DataFrame(current), pd.DataFrame(reference))
    assert name == "model"
    assert ours.auc == pytest.approx(auc, abs=1e-6)
    assert ours.drifted == drifted
    assert ours.threshold == 0.55


def test_bad_embeddings_are_refused() -> None:
    good = _embeddings(5, 10, 0.0, dims=4)
    with pytest.raises(ValidationError, match="dimensions"):
        embedding_drift(good, _embeddings(5, 10, 0.0, dims=3))
    with pytest.raises(ValidationError, match="2-D"):
        embedding_drift(good[0], good)
    with pytest.raises(ValidationError, match="NaN"):
        embedding_drift(good, np.full((4, 4), np.nan))
    with pytest.raises(ValidationError, match="unknown embedding drift method"):
        embedding_drift(good, good, method="knn")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="threshold"):
        embedding_drift(good, good, threshold=1.5)
