"""The digits cascade measurement at small scale: the served cascade calls the large model
on a measured share of inputs and stays near its accuracy; the threshold is the smallest
that keeps validation accuracy within a point of the large model's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from benchmarks.monitoring_cascade import TOLERANCE_POINTS, choose_threshold, measure


def test_the_quick_measurement_reports_the_cascade_and_the_ensembles() -> None:
    found = measure(quick=True)
    details = found["details"]
    accuracy = details["test_accuracy"]
    assert set(accuracy) == {
        "small", "medium", "large", "cascade", "weighted_average", "majority_vote"
    }  # fmt: skip
    assert 0 < found["cascade_large_model_fraction"] < 1
    gap = (accuracy["large"] - accuracy["cascade"]) * 100
    assert found["cascade_accuracy_gap"] == pytest.approx(gap)
    # the threshold kept validation accuracy within the tolerance of the large model's
    limit = details["validation_large_accuracy"] - TOLERANCE_POINTS / 100
    assert details["validation_cascade_accuracy"] >= limit - 1e-12
    # trained models, not chance: the small one is weaker than the large one
    assert accuracy["small"] < accuracy["large"]
    assert min(accuracy.values()) > 0.8


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(
    st.lists(st.floats(0.1, 1.0), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n),
)))  # fmt: skip
def test_the_threshold_is_the_smallest_that_keeps_accuracy(
    drawn: tuple[list[float], list[bool], list[bool]],
) -> None:
    confidence, small, large = (np.asarray(part) for part in drawn)
    threshold, share, accuracy = choose_threshold(confidence, small, large)
    target = large.mean() - TOLERANCE_POINTS / 100
    escalate = confidence < threshold
    assert share == pytest.approx(escalate.mean())
    assert accuracy == pytest.approx(np.where(escalate, large, small).mean())
    if threshold < 1.0 or not (confidence >= 1.0).any():  # else no threshold of 1 at most can
        assert accuracy >= target - 1e-12
    # any lower threshold seen escalates fewer inputs and falls short
    for lower in np.unique(confidence[confidence < threshold]):
        fewer = confidence < lower
        assert np.where(fewer, large, small).mean() < target - 1e-12
