"""The documented convergence rules (docs/tracking.md) on constructed curves, and the gap's size."""

from __future__ import annotations

import numpy as np
import pytest

from weightbase.errors import ValidationError
from weightbase.tracking import analyze
from weightbase.workspace import Workspace

STEPS = np.arange(200.0)
EPOCHS = np.arange(40.0)


@pytest.mark.parametrize("tau", [20, 30, 40, 44])
def test_a_converged_curve_is_on_a_plateau_too(tau: int) -> None:
    # the last window (20 points) changes the curve by under 1 % of the distance it came
    report = analyze(np.exp(-STEPS / tau) + 0.1)
    assert report.converged
    assert report.plateau_detected  # "converged curves are on a plateau too"


def test_converged_needs_the_last_window_within_tolerance_of_the_distance_come() -> None:
    curve = np.exp(-STEPS / 44) + 0.1  # last window: 0.98 % of the distance come
    assert analyze(curve).converged
    assert not analyze(curve, tolerance=0.009).converged
    assert not analyze(np.exp(-STEPS / 60) + 0.1).converged  # 2 % in the last window


def test_converged_needs_an_overall_improvement_of_min_improvement_of_the_start() -> None:
    # falls 0.8 % of its start (the mean of its first 20 points), then stays:
    # settled, but not improved enough
    small = 1.0 - 0.008 * (1 - np.exp(-STEPS / 40))
    report = analyze(small)
    assert not report.converged
    assert report.plateau_detected  # a flat end is a plateau that never converged
    assert analyze(small, min_improvement=0.005).converged


def test_a_plateau_is_an_end_that_no_longer_beats_the_earlier_best() -> None:
    falling = 1.0 - 0.004 * STEPS
    assert not analyze(falling).plateau_detected
    stalled = np.minimum(1.0, 1.6 - 0.004 * STEPS)  # flat until step 150, then falling
    assert not analyze(stalled).plateau_detected
    stopped = np.maximum(0.4, 1.0 - 0.004 * STEPS)  # falling until step 150, then flat
    report = analyze(stopped)
    assert report.plateau_detected
    assert report.converged


def test_memorising_a_tiny_training_set_is_a_high_risk() -> None:
    # train loss sinks to 0.0017 while validation settles at 0.26: the case
    train = 2.3 * np.exp(-EPOCHS / 4) + 0.0017
    validation = 2.3 * np.exp(-EPOCHS / 4) * 0.9 + 0.26
    report = analyze(train, validation)
    assert report.overfitting_risk == "high"
    assert report.relative_gap is not None
    assert report.relative_gap > 0.99
    assert any("gap is" in reason for reason in report.reasons)


def test_the_gap_s_size_relative_to_validation_sets_the_risk() -> None:
    decay = np.exp(-EPOCHS / 4)
    for train_end, risk in ((0.28, "none"), (0.12, "low"), (0.04, "high")):
        train = decay + train_end
        validation = decay + 0.3  # both flat at the end: the gap does not grow
        report = analyze(train, validation)
        assert report.overfitting_risk == risk, (train_end, report.reasons)
        assert report.relative_gap == pytest.approx((0.3 - train_end) / 0.3, rel=1e-3)
    stricter = analyze(decay + 0.28, decay + 0.3, gap_ratio_low=0.05)
    assert stricter.overfitting_risk == "low"


def test_a_validation_better_than_training_is_no_gap() -> None:
    decay = np.exp(-EPOCHS / 4)
    report = analyze(decay + 0.3, decay + 0.1)  # dropout: validation below training
    assert report.overfitting_risk == "none"
    assert report.relative_gap is not None
    assert report.relative_gap < 0


def test_accuracy_gaps_count_the_other_way() -> None:
    rise = 1 - np.exp(-EPOCHS / 4)
    report = analyze(rise, rise * 0.4, mode="max")  # train 1.0, validation 0.4
    assert report.overfitting_risk == "high"
    assert analyze(rise, rise * 0.95, mode="max").overfitting_risk == "none"


def test_bad_gap_ratios_are_refused() -> None:
    decay = np.exp(-EPOCHS / 4)
    with pytest.raises(ValidationError, match="gap_ratio_low"):
        analyze(decay, decay, gap_ratio_low=-1)
    with pytest.raises(ValidationError, match="gap_ratio_high"):
        analyze(decay, decay, gap_ratio_low=0.6, gap_ratio_high=0.5)


def test_a_run_s_report_has_the_gap_s_size_embedded_and_remote(
    remote_or_embedded: Workspace,
) -> None:
    wb = remote_or_embedded
    with wb.runs.start("tiny", name="memorise") as run:
        run.log_series("train/loss", 2.3 * np.exp(-EPOCHS / 4) + 0.0017, steps=EPOCHS)
        run.log_series("val/loss", 2.07 * np.exp(-EPOCHS / 4) + 0.26, steps=EPOCHS)
    report = wb.runs.convergence(run.id)
    assert report.overfitting_risk == "high"
    assert report.relative_gap is not None
    assert report.relative_gap > 0.99
    assert report.converged
    assert report.plateau_detected
    lenient = wb.runs.convergence(run.id, gap_ratio_low=0.995, gap_ratio_high=0.999)
    assert lenient.overfitting_risk == "none"
