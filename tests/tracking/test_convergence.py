"""Convergence rules on constructed curves: decay, flat, overfitting, noise, too short."""

from __future__ import annotations

import numpy as np
import pytest

from weightbase.errors import ValidationError
from weightbase.tracking import ConvergenceReport, analyze

STEPS = np.arange(300)


def _noise(scale: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, scale, STEPS.shape[0])


def test_exponential_decay_has_converged() -> None:
    report = analyze(2.0 * np.exp(-STEPS / 25) + 0.3)
    assert isinstance(report, ConvergenceReport)
    assert report.converged
    assert report.plateau_detected  # converged curves sit on their plateau
    assert report.overfitting_risk == "none"
    assert report.suggested_stop is not None
    assert 60 <= report.suggested_stop <= 200  # the knee, well before the end
    assert report.points == 300
    assert len(report.reasons) == 4


def test_a_curve_still_falling_has_not_converged() -> None:
    report = analyze(2.0 * np.exp(-STEPS / 400))
    assert not report.converged
    assert not report.plateau_detected
    assert report.suggested_stop is None


def test_a_flat_curve_is_a_plateau_without_convergence() -> None:
    for curve in (np.full(300, 0.7), 0.7 + _noise(0.05)):
        report = analyze(curve)
        assert report.plateau_detected
        assert not report.converged


def test_a_noisy_decay_still_converges() -> None:
    curve = 2.0 * np.exp(-STEPS / 25) + 0.3 + _noise(0.05, seed=1)
    report = analyze(curve)
    assert report.converged
    assert report.plateau_detected


def test_rising_validation_with_falling_training_is_overfitting() -> None:
    epochs = np.arange(60)
    train = 2.0 * np.exp(-epochs / 8) + 0.05
    validation = 2.0 * np.exp(-epochs / 8) + 0.3 + np.maximum(0, epochs - 25) * 0.02
    report = analyze(train, validation)
    assert report.overfitting_risk == "high"
    assert report.suggested_stop is not None
    assert 18 <= report.suggested_stop <= 30  # near the validation minimum
    assert report.best_validation_at == report.suggested_stop
    assert report.gap_trend is not None
    assert report.gap_trend > 0
    assert report.final_gap is not None
    assert report.final_gap > 0.25


def test_noisy_overfitting_is_still_seen() -> None:
    epochs = np.arange(80)
    rng = np.random.default_rng(3)
    train = 2.0 * np.exp(-epochs / 8) + 0.05 + rng.normal(0, 0.01, 80)
    validation = (
        2.0 * np.exp(-epochs / 8)
        + 0.3
        + np.maximum(0, epochs - 30) * 0.02
        + rng.normal(0, 0.02, 80)
    )
    report = analyze(train, validation)
    assert report.overfitting_risk == "high"
    assert report.suggested_stop is not None
    assert 20 <= report.suggested_stop <= 40


def test_a_healthy_validation_curve_has_no_risk_and_no_stop() -> None:
    epochs = np.arange(60)
    train = 2.0 * np.exp(-epochs / 30)
    validation = 2.0 * np.exp(-epochs / 30) + 0.1
    report = analyze(train, validation)
    assert report.overfitting_risk == "none"
    assert report.suggested_stop is None  # still improving


def test_a_widening_gap_alone_is_a_low_risk() -> None:
    epochs = np.arange(60)
    train = 2.0 * np.exp(-epochs / 8)
    validation = 2.0 * np.exp(-epochs / 8) * 0.5 + 0.6  # flattens while training keeps falling
    report = analyze(train, validation, gap_increase=0.01)
    assert report.overfitting_risk in ("low", "high")


def test_curves_at_different_steps_are_lined_up() -> None:
    train_steps = np.arange(0, 1000)
    train = 2.0 * np.exp(-train_steps / 80) + 0.05
    val_steps = np.arange(0, 1000, 25)
    validation = 2.0 * np.exp(-val_steps / 80) + 0.3 + np.maximum(0, val_steps - 400) * 0.002
    report = analyze(train, validation, train_x=train_steps, validation_x=val_steps)
    assert report.overfitting_risk == "high"
    assert report.suggested_stop is not None
    assert 300 <= report.suggested_stop <= 450
    with pytest.raises(ValidationError, match="differ in length"):
        analyze(train, validation)


def test_accuracy_curves_use_max_mode() -> None:
    accuracy = 0.95 - 0.6 * np.exp(-STEPS / 25)
    assert analyze(accuracy, mode="max").converged
    assert not analyze(accuracy, mode="min").converged


def test_nan_points_are_dropped_and_short_curves_refused_politely() -> None:
    curve = 2.0 * np.exp(-STEPS / 25) + 0.3
    curve[[5, 50, 100]] = [np.nan, np.inf, -np.inf]
    report = analyze(curve)
    assert report.dropped_nonfinite == 3
    assert report.converged
    short = analyze([1.0, 0.5, 0.4])
    assert not short.converged
    assert not short.plateau_detected
    assert "needs 8" in short.reasons[0]
    assert short.to_dict()["points"] == 3


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValidationError):
        analyze(STEPS, mode="median")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        analyze(STEPS, tolerance=-1)
    with pytest.raises(ValidationError):
        analyze(STEPS, window=0)
    with pytest.raises(ValidationError):
        analyze(["a", "b"])
    with pytest.raises(ValidationError):
        analyze(STEPS, train_x=STEPS[:-1])
