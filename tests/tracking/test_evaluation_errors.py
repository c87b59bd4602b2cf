"""``evaluate`` on what it cannot score: mismatched scores, one-class labels, bad custom metrics."""

from __future__ import annotations

import numpy as np
import pytest

from weightbase.errors import ValidationError
from weightbase.tracking import evaluate

pytest.importorskip("sklearn", reason="evaluation needs the [tracking] extra")


def test_a_custom_metric_must_give_a_number() -> None:
    with pytest.raises(
        ValidationError, match="custom metric 'verdict' did not give a number: "
    ) as caught:
        evaluate([0, 1, 1], [0, 1, 0], custom={"verdict": lambda truth, pred: "good"})
    assert isinstance(caught.value.__cause__, ValueError)
    with pytest.raises(ValidationError, match="custom metric 'nothing' did not give a number"):
        evaluate([0, 1, 1], [0, 1, 0], custom={"nothing": lambda truth, pred: None})


def test_a_custom_metric_is_added_to_the_standard_ones() -> None:
    result = evaluate([0, 1, 1, 0], [0, 1, 0, 0], custom={"errors": lambda t, p: np.sum(t != p)})
    assert result.metrics["errors"] == 1.0
    assert result.metrics["accuracy"] == 0.75


def test_scores_with_a_column_per_class_must_match_the_classes() -> None:
    scores = np.full((4, 3), 1 / 3)
    with pytest.raises(
        ValidationError, match="y_score has 3 columns but y_true has 2 classes; pass y_pred"
    ):
        evaluate(["a", "b", "a", "b"], y_score=scores)


def test_the_negative_label_must_be_known_to_threshold_scores() -> None:
    # every label is the positive one, and it is not 1: nothing says what "negative" is
    with pytest.raises(ValidationError, match="cannot tell the negative label from y_true"):
        evaluate(["yes", "yes"], y_score=[0.9, 0.2], pos_label="yes")


def test_one_class_of_ones_thresholds_against_zero() -> None:
    result = evaluate([1, 1, 1], y_score=[0.9, 0.2, 0.7], metrics=["accuracy", "auc"])
    assert result.classes == (0, 1)
    assert result.metrics["accuracy"] == pytest.approx(2 / 3)
    assert np.isnan(result.metrics["auc"])  # undefined with one class present


def test_multiclass_auc_needs_a_probability_per_class() -> None:
    with pytest.raises(
        ValidationError, match=r"multi-class AUC needs \(n, classes\) probabilities in y_score"
    ):
        evaluate([0, 1, 2, 1], [0, 1, 2, 2], y_score=[0.1, 0.5, 0.9, 0.4])
