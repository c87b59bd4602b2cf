"""Statistics of unusual labels and features: complex, many-valued, missing, damaged on read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from weightbase.datasets import DatasetStatistics, FeatureSummary, compute_statistics, from_numpy
from weightbase.datasets.stats import MAX_CLASSES, categorical_labels, numeric_summary


def test_asking_for_an_unknown_feature_is_a_key_error() -> None:
    stats = compute_statistics(from_numpy(np.eye(2), features=["a", "b"]))
    assert stats.feature("b").name == "b"
    with pytest.raises(KeyError):
        stats.feature("c")


def test_a_stored_summary_with_an_unknown_kind_is_refused() -> None:
    doc = FeatureSummary("a", "numeric", "int64", 3, 0).to_dict()
    assert FeatureSummary.from_dict(doc) == FeatureSummary("a", "numeric", "int64", 3, 0)
    doc["kind"] = "ordinal"
    with pytest.raises(ValueError, match="unknown feature kind 'ordinal'"):
        FeatureSummary.from_dict(doc)
    stats = compute_statistics(from_numpy(np.eye(2))).to_dict()
    stats["features"][0]["kind"] = "ordinal"  # type: ignore[index]
    with pytest.raises(ValueError, match="unknown feature kind"):
        DatasetStatistics.from_dict(stats)


def test_complex_values_count_but_have_no_moments() -> None:
    summary = numeric_summary("z", np.array([1 + 1j, np.nan, 1 + 1j, 2j]))
    assert (summary.count, summary.missing, summary.unique) == (3, 1, 2)
    assert (summary.mean, summary.std, summary.minimum, summary.maximum) == (None,) * 4
    assert summary.kind == "numeric"


def test_too_many_distinct_labels_are_not_classes() -> None:
    assert categorical_labels(np.arange(MAX_CLASSES)) is not None
    assert categorical_labels(np.arange(MAX_CLASSES + 1)) is None
    stats = compute_statistics(
        from_numpy(np.zeros((MAX_CLASSES + 1, 1)), np.arange(MAX_CLASSES + 1))
    )
    assert stats.label_distribution is None
    assert stats.target is not None
    assert stats.target.kind == "numeric"


def test_none_and_pandas_na_labels_are_missing() -> None:
    labels = np.array(["cat", None, pd.NA, float("nan"), "dog", "cat"], dtype=object)
    assert categorical_labels(labels).tolist() == ["cat", None, None, None, "dog", "cat"]  # type: ignore[union-attr]
