"""A/B test statistics against established implementations: GrowthBook's gbstats (the same
methods: its t-test, effect posterior and sequential test) and statsmodels (Welch's t, the
two-proportion z, the Wald interval, normal power); the Bayesian summary by simulation."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from weightbase.errors import ValidationError
from weightbase.serving.ab_power import minimum_detectable_effect, power, sample_ratio_check
from weightbase.serving.ab_records import AnalysisSettings, Scale, VariantSummary
from weightbase.serving.ab_sequential import always_valid, sequential_p_values
from weightbase.serving.ab_stats import analyze, bayesian_summary, compare, summarize

TOLERANCE = 1e-6


def continuous_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    control = rng.lognormal(1.0, 0.8, size=int(rng.integers(200, 3_000)))
    treatment = rng.lognormal(1.0 + rng.normal(0, 0.05), 0.9, size=int(rng.integers(200, 3_000)))
    return control, treatment


def binary_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.02, 0.6)
    control = (rng.random(int(rng.integers(300, 5_000))) < rate).astype(float)
    treatment = (rng.random(int(rng.integers(300, 5_000))) < rate * rng.uniform(0.9, 1.2)).astype(
        float
    )
    return control, treatment


def summaries(control: np.ndarray, treatment: np.ndarray) -> tuple[VariantSummary, ...]:
    index = np.r_[np.zeros(control.size, int), np.ones(treatment.size, int)]
    return summarize(index, np.r_[control, treatment], ["control", "treatment"])


def close(ours: float | None, reference: float) -> bool:
    assert ours is not None
    return abs(ours - float(reference)) <= TOLERANCE * max(1.0, abs(float(reference)))


SEEDS = range(6)


@pytest.mark.parametrize("seed", SEEDS)
def test_summaries_are_the_sample_moments(seed: int) -> None:
    control, treatment = continuous_data(seed)
    first, second = summaries(control, treatment)
    assert first.count == control.size
    assert close(first.mean, control.mean())
    assert close(second.variance("continuous"), treatment.var(ddof=1))
    binary, _ = binary_data(seed)
    (only,) = summarize(np.zeros(binary.size, int), binary, ["control"])
    assert close(only.variance("binary"), binary.var())


@pytest.mark.parametrize("seed", SEEDS)
def test_welch_t_matches_statsmodels(seed: int) -> None:
    weightstats = pytest.importorskip("statsmodels.stats.weightstats")
    control, treatment = continuous_data(seed)
    result = compare(*summaries(control, treatment), AnalysisSettings(kind="continuous"))
    t_stat, p_value, df = weightstats.ttest_ind(treatment, control, usevar="unequal")
    assert close(result.absolute.p_value, p_value)
    assert close(result.absolute.df, df)
    assert close(result.absolute.estimate / result.absolute.std_error, t_stat)
    means = weightstats.CompareMeans(
        weightstats.DescrStatsW(treatment), weightstats.DescrStatsW(control)
    )
    low, high = means.tconfint_diff(alpha=0.05, usevar="unequal")
    assert close(result.absolute.ci_low, low)
    assert close(result.absolute.ci_high, high)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_proportions_match_statsmodels(seed: int) -> None:
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    control, treatment = binary_data(seed)
    result = compare(*summaries(control, treatment), AnalysisSettings(kind="binary", alpha=0.1))
    counts = [treatment.sum(), control.sum()]
    units = [treatment.size, control.size]
    _, p_value = proportion.proportions_ztest(counts, units)
    assert close(result.absolute.p_value, p_value)
    low, high = proportion.confint_proportions_2indep(
        counts[0], units[0], counts[1], units[1], method="wald", compare="diff", alpha=0.1
    )
    assert close(result.absolute.ci_low, low)
    assert close(result.absolute.ci_high, high)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("difference", ["absolute", "relative"])
def test_frequentist_and_sequential_match_gbstats(seed: int, difference: Scale) -> None:
    pytest.importorskip("gbstats")
    from gbstats.frequentist.tests import (
        FrequentistConfig,
        SequentialConfig,
        SequentialTwoSidedTTest,
        TwoSidedTTest,
    )
    from gbstats.models.statistics import SampleMeanStatistic

    control, treatment = continuous_data(seed)
    ours_control, ours_treatment = summaries(control, treatment)
    settings = AnalysisSettings(scale=difference, sequential_tuning=1_000.0 + 2_000 * seed)
    result = compare(ours_control, ours_treatment, settings)
    stat_a, stat_b = (
        SampleMeanStatistic(n=s.count, sum=s.total, sum_squares=s.total_squares)
        for s in (ours_control, ours_treatment)
    )
    reference = TwoSidedTTest(
        stat_a, stat_b, FrequentistConfig(difference_type=difference)
    ).compute_result()
    effect = result.absolute if difference == "absolute" else result.relative
    assert effect is not None
    assert close(effect.estimate, reference.expected)
    assert close(effect.std_error, reference.uplift.stddev)
    assert close(effect.ci_low, reference.ci[0])
    assert close(effect.ci_high, reference.ci[1])
    assert close(effect.p_value, reference.p_value)
    sequential = SequentialTwoSidedTTest(
        stat_a,
        stat_b,
        SequentialConfig(
            difference_type=difference, sequential_tuning_parameter=settings.sequential_tuning
        ),
    ).compute_result()
    assert result.sequential.scale == difference
    assert close(result.sequential.p_value, sequential.p_value)
    assert close(result.sequential.ci_low, sequential.ci[0])
    assert close(result.sequential.ci_high, sequential.ci[1])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("difference", ["absolute", "relative"])
@pytest.mark.parametrize("kind", ["continuous", "binary"])
@pytest.mark.parametrize("higher_is_better", [True, False])
def test_bayesian_matches_gbstats(
    seed: int, difference: Scale, kind: str, higher_is_better: bool
) -> None:
    pytest.importorskip("gbstats")
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

    data = continuous_data(seed) if kind == "continuous" else binary_data(seed)
    ours_control, ours_treatment = summaries(*data)
    settings = AnalysisSettings(
        kind="continuous" if kind == "continuous" else "binary",
        scale=difference,
        higher_is_better=higher_is_better,
    )
    result = compare(ours_control, ours_treatment, settings)
    if kind == "continuous":
        stat_a, stat_b = (
            SampleMeanStatistic(n=s.count, sum=s.total, sum_squares=s.total_squares)
            for s in (ours_control, ours_treatment)
        )
    else:
        stat_a, stat_b = (
            ProportionStatistic(n=s.count, sum=s.total) for s in (ours_control, ours_treatment)
        )
    config = EffectBayesianConfig(difference_type=difference, inverse=not higher_is_better)
    reference = EffectBayesianABTest(stat_a, stat_b, config).compute_result()
    bayesian = result.bayesian
    assert bayesian.scale == difference
    assert close(bayesian.chance_to_beat_control, reference.chance_to_win)
    assert close(bayesian.expected_loss_control, reference.risk[0])
    assert close(bayesian.expected_loss_treatment, reference.risk[1])
    assert close(bayesian.ci_low, reference.ci[0])
    assert close(bayesian.ci_high, reference.ci[1])


@pytest.mark.parametrize(("estimate", "std_error"), [(0.3, 1.0), (-0.05, 0.02), (2.0, 0.5)])
def test_bayesian_summary_is_the_posteriors_expectations(estimate: float, std_error: float) -> None:
    draws = np.random.default_rng(7).normal(estimate, std_error, size=2_000_000)
    summary = bayesian_summary(estimate, std_error, "absolute", AnalysisSettings())
    noise = 5 * std_error / np.sqrt(draws.size)
    assert abs(summary.chance_to_beat_control - np.mean(draws > 0)) < 0.002
    assert abs(summary.expected_loss_treatment - np.mean(np.maximum(0, -draws))) < noise
    assert abs(summary.expected_loss_control - np.mean(np.maximum(0, draws))) < noise
    lower_is_better = AnalysisSettings(higher_is_better=False)
    lower = bayesian_summary(estimate, std_error, "absolute", lower_is_better)
    assert lower.chance_to_beat_control == pytest.approx(1 - summary.chance_to_beat_control)
    assert lower.expected_loss_treatment == summary.expected_loss_control


def test_power_and_mde_match_statsmodels() -> None:
    power_module = pytest.importorskip("statsmodels.stats.power")
    normal = power_module.NormalIndPower()
    for effect, units, ratio in [(0.1, 1_000, 1.0), (0.25, 300, 2.0), (0.05, 5_000, 0.5)]:
        ours = power(effect, 1.0, units, units * ratio)
        assert close(ours, normal.power(effect, nobs1=units, alpha=0.05, ratio=ratio))
        mde = minimum_detectable_effect(2.0, units, units * ratio, target_power=0.9)
        # statsmodels' own solver stops at about 1e-5; its power at our effect is exact.
        assert close(normal.power(mde / 2.0, nobs1=units, alpha=0.05, ratio=ratio), 0.9)
        reference = normal.solve_power(nobs1=units, alpha=0.05, power=0.9, ratio=ratio)
        assert mde / 2.0 == pytest.approx(reference, rel=1e-4)
        assert close(power(mde, 2.0, units, units * ratio), 0.9)


def test_results_of_three_variants() -> None:
    rng = np.random.default_rng(3)
    index = rng.integers(0, 3, size=30_000)
    outcomes = rng.normal(10 + 0.2 * index, 3.0)
    variants = summarize(index, outcomes, ["control", "b", "c"])
    results = analyze(variants, weights=[1, 1, 1], planned_units=60_000)
    assert [c.variant for c in results.comparisons] == ["b", "c"]
    assert all(c.control == "control" for c in results.comparisons)
    assert results.comparisons[1].absolute.p_value < 1e-10
    assert results.comparisons[1].sequential.p_value < 0.05
    assert results.comparisons[1].bayesian.chance_to_beat_control > 0.999
    assert not results.sample_ratio.mismatch
    assert results.power is not None
    mde = results.power.mde_absolute[0]
    assert mde == pytest.approx(minimum_detectable_effect(3.0, 20_000, 20_000), rel=0.02)
    assert results.power.mde_relative[0] == pytest.approx(mde / variants[0].mean)
    encoded = json.loads(json.dumps(results.to_dict()))
    assert encoded["comparisons"][0]["bayesian"]["scale"] == "relative"
    assert encoded["settings"]["kind"] == "continuous"


def test_sample_ratio_mismatch_is_flagged_below_one_in_a_thousand() -> None:
    assert not sample_ratio_check([10_000, 10_150], [1, 1]).mismatch
    flagged = sample_ratio_check([10_000, 10_500], [1, 1])
    assert flagged.mismatch
    assert flagged.p_value < 0.001
    assert flagged.expected == (10_250.0, 10_250.0)
    assert not sample_ratio_check([2_000, 8_000], [0.2, 0.8]).mismatch
    paused = sample_ratio_check([500, 0, 480], [1, 0, 1])
    assert not paused.mismatch
    leaked = sample_ratio_check([500, 3, 480], [1, 0, 1])
    assert leaked.mismatch
    assert leaked.chi_square is None
    assert sample_ratio_check([0, 0], [1, 1]).p_value == 1.0


def test_ten_million_outcomes_summarise_and_analyse_fast() -> None:
    rng = np.random.default_rng(11)
    index = rng.integers(0, 2, size=10_000_000)
    outcomes = rng.random(10_000_000)
    start = time.perf_counter()
    variants = summarize(index, outcomes, ["control", "treatment"])
    analyze(variants, planned_units=10_000_000)
    elapsed = time.perf_counter() - start
    assert sum(v.count for v in variants) == 10_000_000
    # Measured in benchmarks, not asserted tightly: this only guards against a quadratic path.
    assert elapsed < 10


def test_the_always_valid_p_value_is_the_running_minimum() -> None:
    p_values = sequential_p_values([0.5, 2.0, 0.1], [1.0, 1.0, 1.0], [100, 200, 300])
    assert always_valid(p_values).tolist() == np.minimum.accumulate(p_values).tolist()
    assert sequential_p_values(0.0, 0.0, 10) == 1.0


def test_relative_scale_falls_back_when_controls_mean_is_zero() -> None:
    control = VariantSummary("control", 10, 0.0, 4.0)
    treatment = VariantSummary("treatment", 10, 3.0, 9.0)
    result = compare(control, treatment, AnalysisSettings())
    assert result.relative is None
    assert result.bayesian.scale == "absolute"
    zero_treatment = VariantSummary("treatment", 10, 0.0, 0.0)
    shifted = VariantSummary("control", 10, 5.0, 9.0)
    assert compare(shifted, zero_treatment, AnalysisSettings()).sequential.scale == "absolute"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: VariantSummary("a", -1, 0, 0), "negative"),
        (lambda: VariantSummary("a", 2, float("inf"), 0), "finite"),
        (lambda: VariantSummary("a", 2, 1, -1), "negative"),
        (lambda: VariantSummary("a", 2, 10, 1), "too small"),
        (lambda: AnalysisSettings(alpha=1.5), "alpha"),
        (lambda: AnalysisSettings(kind="ordinal"), "kind"),  # type: ignore[arg-type]
        (lambda: AnalysisSettings(scale="log"), "scale"),  # type: ignore[arg-type]
        (lambda: AnalysisSettings(sequential_tuning=0), "tuning"),
        (lambda: analyze([VariantSummary("a", 5, 5, 6)]), "at least 2"),
        (lambda: analyze([VariantSummary("a", 5, 5, 6)] * 2), "distinct"),
        (
            lambda: compare(
                VariantSummary("a", 5, 2, 3),
                VariantSummary("b", 5, 2, 2),
                AnalysisSettings(kind="binary"),
            ),
            "between 0 and the count",
        ),
        (
            lambda: compare(
                VariantSummary("a", 1, 1, 1), VariantSummary("b", 5, 5, 6), AnalysisSettings()
            ),
            "at least 2 units",
        ),
        (
            lambda: compare(
                VariantSummary("a", 5, 5, 5), VariantSummary("b", 5, 5, 5), AnalysisSettings()
            ),
            "do not vary",
        ),
        (lambda: summarize([0, 1], [1.0], ["a", "b"]), "one variant index"),
        (lambda: summarize([0, 2], [1.0, 2.0], ["a", "b"]), "names no variant"),
        (lambda: summarize([0, 1], [1.0, float("nan")], ["a", "b"]), "finite"),
        (lambda: sample_ratio_check([1, 2], [1]), "one weight"),
        (lambda: sample_ratio_check([1], [1]), "at least 2"),
        (lambda: sample_ratio_check([-1, 2], [1, 1]), "negative"),
        (lambda: sample_ratio_check([1, 2], [0, 0]), "sum to more"),
        (lambda: power(0.1, 0.0, 10, 10), "positive standard deviation"),
        (lambda: power(0.1, 1.0, 10, 10, alpha=0), "alpha"),
        (lambda: minimum_detectable_effect(1.0, 10, 10, target_power=0.01), "power"),
        (
            lambda: analyze(
                [VariantSummary("a", 5, 5, 6), VariantSummary("b", 5, 6, 9)], planned_units=0
            ),
            "planned",
        ),
        (
            lambda: analyze(
                [VariantSummary("a", 5, 5, 6), VariantSummary("b", 5, 6, 9)],
                weights=[0, 1],
                planned_units=10,
            ),
            "control needs",
        ),
    ],
)
def test_bad_input_is_refused(build: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()  # type: ignore[operator]


def test_power_plans_skip_what_cannot_be_planned() -> None:
    from weightbase.serving.ab_power import plan_power
    from weightbase.serving.ab_sequential import mixture_rho

    control = VariantSummary("control", 100, 50.0, 40.0)
    plan = plan_power(control, "continuous", [1, 0, 1], 1_000)
    assert plan.mde_absolute[0] is None
    assert plan.mde_relative[0] is None
    assert plan.mde_absolute[1] is not None
    assert VariantSummary("single", 1, 3.0, 9.0).variance("continuous") == 0.0
    with pytest.raises(ValidationError, match="alpha"):
        mixture_rho(0.0, 5_000)
    with pytest.raises(ValidationError, match="standard deviation"):
        power(0.1, 1.0, 10, 10, treatment_std_dev=0.0)
