"""Simulated A/B tests: peeking after every 100 units inflates naive t-tests' false positives
but not the sequential test's, and a planned size detects the planned effect at its power.

Each rate comes from 1,000 simulated tests. The sequential test's must be at most alpha
itself (it is about 0.01-0.02: alpha lies some five binomial standard errors above). The
naive test's must exceed ``BOUND``, the 99.9% one-sided binomial quantile of 1,000 tests at
rate alpha (0.073): more than binomial noise alone would give a valid test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from weightbase.serving.ab_power import minimum_detectable_effect, power
from weightbase.serving.ab_records import AnalysisSettings, VariantSummary
from weightbase.serving.ab_sequential import always_valid, sequential_p_values
from weightbase.serving.ab_stats import compare

ALPHA = 0.05
TESTS = 1_000
LOOKS = 100  # a look after every 100 units, 10,000 units in all
PER_ARM_PER_LOOK = 50
BOUND = stats.binom.ppf(0.999, TESTS, ALPHA) / TESTS


def cumulative_sums(
    outcomes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per test, arm and look: units, sum and sum of squares so far (outcomes are
    tests x arms x looks x units per look)."""
    sums = np.cumsum(outcomes.sum(axis=-1), axis=-1)
    squares = np.cumsum((outcomes**2).sum(axis=-1), axis=-1)
    units = PER_ARM_PER_LOOK * np.arange(1, LOOKS + 1, dtype=np.float64)
    return np.broadcast_to(units, sums.shape), sums, squares


def peeking_rejections(outcomes: np.ndarray, binary: bool) -> tuple[float, float]:
    """The share of tests that the naive t-test and the sequential test reject at some look."""
    units, sums, squares = cumulative_sums(outcomes)
    means = sums / units
    sample_variances = (squares - sums**2 / units) / (units - 1)
    variances = means * (1 - means) if binary else sample_variances
    control, treatment = 0, 1
    naive = stats.ttest_ind_from_stats(
        means[:, treatment],
        np.sqrt(variances[:, treatment]),
        units[:, treatment],
        means[:, control],
        np.sqrt(variances[:, control]),
        units[:, control],
        equal_var=False,
    ).pvalue
    effect_variance = variances[:, treatment] / units[:, treatment] + (
        variances[:, control] / units[:, control]
    )
    sequential = always_valid(
        sequential_p_values(
            means[:, treatment] - means[:, control],
            effect_variance,
            units[:, treatment] + units[:, control],
            ALPHA,
        )
    )
    naive_rejected = np.nanmin(naive, axis=-1) < ALPHA
    sequential_rejected = sequential[:, -1] < ALPHA
    return float(naive_rejected.mean()), float(sequential_rejected.mean())


@pytest.mark.parametrize("binary", [False, True])
def test_peeking_inflates_naive_t_tests_but_not_the_sequential_test(binary: bool) -> None:
    rng = np.random.default_rng(2026 + binary)
    shape = (TESTS, 2, LOOKS, PER_ARM_PER_LOOK)
    if binary:
        outcomes = (rng.random(shape, dtype=np.float32) < 0.1).astype(np.float64)
    else:
        outcomes = rng.normal(10.0, 3.0, size=shape)
    naive, sequential = peeking_rejections(outcomes, binary)
    assert sequential <= ALPHA
    assert naive > BOUND
    assert naive > 4 * ALPHA  # about a quarter or more with 100 looks


@pytest.mark.parametrize(
    ("kind", "target_power"), [("continuous", 0.8), ("continuous", 0.5), ("binary", 0.8)]
)
def test_a_planned_effect_is_detected_at_its_power(kind: str, target_power: float) -> None:
    rng = np.random.default_rng(7)
    units = 600
    rate, std_dev = 0.2, 2.0
    spread = np.sqrt(rate * (1 - rate)) if kind == "binary" else std_dev
    effect = minimum_detectable_effect(spread, units, units, ALPHA, target_power)
    assert power(effect, spread, units, units, ALPHA) == pytest.approx(target_power)
    if kind == "binary":
        # The planned effect assumed control's spread in both arms; the treatment's rate
        # spreads more, so the power expected of the simulated data is a little lower.
        treated = np.sqrt((rate + effect) * (1 - rate - effect))
        target_power = power(effect, spread, units, units, ALPHA, treatment_std_dev=treated)
    settings = AnalysisSettings(kind="binary" if kind == "binary" else "continuous", alpha=ALPHA)
    detected = 0
    for _ in range(TESTS):
        if kind == "binary":
            control = (rng.random(units) < rate).astype(float)
            treatment = (rng.random(units) < rate + effect).astype(float)
        else:
            control = rng.normal(5.0, std_dev, units)
            treatment = rng.normal(5.0 + effect, std_dev, units)
        result = compare(
            VariantSummary("control", units, control.sum(), (control**2).sum()),
            VariantSummary("treatment", units, treatment.sum(), (treatment**2).sum()),
            settings,
        )
        assert result.absolute.p_value is not None
        detected += result.absolute.p_value < ALPHA
    noise = 3.5 * np.sqrt(target_power * (1 - target_power) / TESTS)
    assert abs(detected / TESTS - target_power) < noise
