"""Final metrics from predictions, checked against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weightbase.errors import ValidationError
from weightbase.tracking import Evaluation, evaluate

pytest.importorskip("sklearn", reason="evaluation needs the [tracking] extra")


def test_binary_metrics_from_labels() -> None:
    # tp=2 fp=1 fn=1 tn=2
    result = evaluate([1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 0])
    assert isinstance(result, Evaluation)
    assert result.task == "binary"
    assert result.average == "binary"
    assert result.samples == 6
    assert result.metrics["accuracy"] == pytest.approx(4 / 6)
    assert result.metrics["precision"] == pytest.approx(2 / 3)
    assert result.metrics["recall"] == pytest.approx(2 / 3)
    assert result.metrics["f1"] == pytest.approx(2 / 3)
    assert "auc" not in result.metrics  # no scores given


def test_binary_auc_and_predictions_from_scores() -> None:
    truth = [0, 0, 1, 1]
    scores = [0.1, 0.6, 0.4, 0.9]
    result = evaluate(truth, y_score=scores)
    assert result.metrics["auc"] == pytest.approx(0.75)
    assert result.metrics["accuracy"] == pytest.approx(0.5)  # 0.6 and 0.4 fall on the wrong side
    two_columns = np.stack([1 - np.array(scores), scores], axis=1)
    assert evaluate(truth, y_score=two_columns).metrics["auc"] == pytest.approx(0.75)
    assert evaluate(truth, y_score=scores, threshold=0.35).metrics["recall"] == 1.0


def test_string_labels_and_pos_label() -> None:
    result = evaluate(["cat", "dog", "dog"], ["cat", "dog", "cat"], pos_label="dog")
    assert result.metrics["precision"] == 1.0
    assert result.metrics["recall"] == 0.5
    with pytest.raises(ValidationError, match="pos_label"):
        evaluate(["cat", "dog"], ["cat", "dog"])


def test_multiclass_averages_and_per_class_values() -> None:
    truth = [0, 1, 2, 2, 1, 0]
    predicted = [0, 2, 2, 2, 1, 0]
    macro = evaluate(truth, predicted)
    assert macro.task == "multiclass"
    assert macro.average == "macro"
    # class precisions 1, 1, 2/3; recalls 1, 1/2, 1
    assert macro.metrics["precision"] == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert macro.metrics["recall"] == pytest.approx((1 + 0.5 + 1) / 3)
    micro = evaluate(truth, predicted, average="micro")
    assert micro.metrics["f1"] == pytest.approx(5 / 6)
    per_class = evaluate(truth, predicted, average=None, metrics=["recall"])
    assert per_class.metrics == {"recall/0": 1.0, "recall/1": 0.5, "recall/2": 1.0}
    with pytest.raises(ValidationError, match="binary"):
        evaluate(truth, predicted, average="binary")


def test_multiclass_auc_from_probabilities() -> None:
    truth = np.array([0, 1, 2, 0, 1, 2])
    probabilities = np.eye(3)[truth] * 0.7 + 0.1
    result = evaluate(truth, y_score=probabilities)
    assert result.metrics["auc"] == pytest.approx(1.0)
    assert result.metrics["accuracy"] == 1.0


def test_auc_is_nan_when_undefined_and_custom_metrics_are_added() -> None:
    result = evaluate(
        [1, 1, 1],
        y_score=[0.9, 0.8, 0.7],
        custom={"errors": lambda t, p: float(np.sum(t != p))},
    )
    assert math.isnan(result.metrics["auc"])
    assert result.metrics["errors"] == 0.0
    assert result.to_dict()["metrics"]["auc"] == "nan"


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValidationError):
        evaluate([], [])
    with pytest.raises(ValidationError, match="shape"):
        evaluate([0, 1], [0, 1, 1])
    with pytest.raises(ValidationError, match="y_pred or y_score"):
        evaluate([0, 1])
    with pytest.raises(ValidationError, match="unknown metric"):
        evaluate([0, 1], [0, 1], metrics=["accuracy", "bleu"])
    with pytest.raises(ValidationError, match="not callable"):
        evaluate([0, 1], [0, 1], custom={"x": 3})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="y_score"):
        evaluate([0, 1], y_score=[0.5])
