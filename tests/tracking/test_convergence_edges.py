"""Convergence analysis on short validation curves, unordered points, and no smoothing."""

from __future__ import annotations

import json

import numpy as np

from weightbase.tracking import analyze


def _decaying(n: int = 40) -> np.ndarray:
    return 2.0 * np.exp(-np.arange(n) / 4.0) + 0.1


def test_a_validation_curve_too_short_is_not_assessed() -> None:
    report = analyze(
        _decaying(),
        [0.9, np.nan, 0.5, np.inf, 0.4],
        train_x=np.arange(40),
        validation_x=[0, 10, 20, 30, 39],
    )
    assert report.overfitting_risk == "none"
    assert report.best_validation is None
    assert report.dropped_nonfinite == 2
    assert "overfitting: not assessed (3 finite validation points, needs 4)" in report.reasons


def test_points_given_out_of_order_are_sorted_by_x() -> None:
    x = np.arange(40)
    y = _decaying()
    shuffled = np.random.default_rng(1).permutation(40)
    ordered = analyze(y, train_x=x)
    unordered = analyze(y[shuffled], train_x=x[shuffled])
    assert unordered == ordered
    assert unordered.converged


def test_a_window_of_one_uses_the_raw_curve() -> None:
    y = _decaying()
    report = analyze(y, window=1)
    assert report.window == 1
    assert report.converged
    # without smoothing the curve settles where its raw values come within tolerance of the end
    scale = y[0] - y.min()
    expected = int(np.nonzero(y <= y[-1] + 0.01 * scale)[0][0])
    assert report.suggested_stop == float(expected)


def test_a_short_validation_curve_is_not_smoothed() -> None:
    train = _decaying()
    validation = np.array([1.5, 0.8, 0.5, 0.45, 0.5, 0.7, 0.9])
    report = analyze(train, validation, train_x=np.arange(40), validation_x=np.arange(7) * 6)
    assert report.best_validation == 0.45
    assert report.best_validation_at == 18.0
    assert report.suggested_stop == 18.0
    assert report.overfitting_risk == "high"


def test_the_report_is_json() -> None:
    report = analyze(_decaying())
    doc = report.to_dict()
    assert doc["reasons"] == list(report.reasons)
    assert json.loads(json.dumps(doc)) == doc
