"""Results of an A/B test from sufficient statistics: Welch's t or the two-proportion z for the
effect, the delta method for the relative effect, a Bayesian chance to beat control with
expected loss, an always-valid sequential p-value, the sample-ratio check and power.

Methods follow GrowthBook's gbstats where it has one (its frequentist t-test, its Gaussian
effect posterior with a flat prior, its sequential test), so the same sums give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from weightbase.errors import MissingExtraError, ValidationError
from weightbase.serving.ab_power import plan_power, sample_ratio_check
from weightbase.serving.ab_records import (
    ABResults,
    AnalysisSettings,
    BayesianSummary,
    Comparison,
    Effect,
    Scale,
    SequentialSummary,
    VariantStats,
    VariantSummary,
)
from weightbase.serving.ab_sequential import (
    mixture_rho,
    sequential_interval,
    sequential_p_values,
)

try:
    from scipy import stats
except ImportError as exc:  # pragma: no cover - scipy comes with the abtests extra
    raise MissingExtraError(
        "A/B test statistics need scipy: pip install 'weightbase[abtests]'"
    ) from exc

__all__ = ["analyze", "bayesian_summary", "compare", "summarize"]


def summarize(
    variant: npt.ArrayLike, outcomes: npt.ArrayLike, names: Sequence[str]
) -> tuple[VariantSummary, ...]:
    """Per-variant sufficient statistics of raw outcomes, vectorised (``variant[i]`` is the
    index into ``names`` of the unit whose outcome is ``outcomes[i]``)."""
    index = np.asarray(variant)
    values = np.asarray(outcomes, dtype=np.float64)
    if index.shape != values.shape or index.ndim != 1:
        raise ValidationError("one variant index per outcome", outcomes=values.shape)
    if index.size and (index.min() < 0 or index.max() >= len(names)):
        raise ValidationError("a variant index names no variant", variants=len(names))
    if not np.isfinite(values).all():
        raise ValidationError("outcomes must be finite numbers")
    counts = np.bincount(index, minlength=len(names))
    totals = np.bincount(index, weights=values, minlength=len(names))
    squares = np.bincount(index, weights=values * values, minlength=len(names))
    return tuple(
        VariantSummary(name, int(count), float(total), float(square))
        for name, count, total, square in zip(names, counts, totals, squares, strict=True)
    )


def _absolute_effect(
    control: VariantSummary, treatment: VariantSummary, settings: AnalysisSettings
) -> Effect:
    kind = settings.kind
    control_share = control.variance(kind) / control.count
    treatment_share = treatment.variance(kind) / treatment.count
    variance = control_share + treatment_share
    difference = treatment.mean - control.mean
    standard_error = math.sqrt(variance)
    if kind == "binary":
        # The z-test's p-value under the null's pooled proportion; the interval is Wald's.
        pooled = (control.total + treatment.total) / (control.count + treatment.count)
        null_error = math.sqrt(pooled * (1 - pooled) * (1 / control.count + 1 / treatment.count))
        p_value = 2 * float(stats.norm.sf(abs(difference) / null_error)) if null_error else 1.0
        critical = float(stats.norm.isf(settings.alpha / 2))
        return Effect(
            difference,
            standard_error,
            difference - critical * standard_error,
            difference + critical * standard_error,
            p_value,
            None,
        )
    df = _welch_df(control, treatment)
    p_value = 2 * float(stats.t.sf(abs(difference) / standard_error, df))
    critical = float(stats.t.isf(settings.alpha / 2, df))
    return Effect(
        difference,
        standard_error,
        difference - critical * standard_error,
        difference + critical * standard_error,
        p_value,
        df,
    )


def _welch_df(control: VariantSummary, treatment: VariantSummary) -> float:
    """Welch-Satterthwaite: ``(a + b)² / (a² / (n_c - 1) + b² / (n_t - 1))``, ``a = s_c²/n_c``."""
    control_share = control.variance("continuous") / control.count
    treatment_share = treatment.variance("continuous") / treatment.count
    return (control_share + treatment_share) ** 2 / (
        control_share**2 / (control.count - 1) + treatment_share**2 / (treatment.count - 1)
    )


def _relative_effect(
    control: VariantSummary, treatment: VariantSummary, settings: AnalysisSettings, df: float | None
) -> Effect | None:
    """``mean_t / mean_c - 1`` with the delta method's variance
    ``s_t² / (n_t m_c²) + m_t² s_c² / (n_c m_c⁴)``; ``None`` when control's mean is 0."""
    if control.mean == 0:
        return None
    kind = settings.kind
    estimate = (treatment.mean - control.mean) / control.mean
    variance = treatment.variance(kind) / (control.mean**2 * treatment.count) + (
        control.variance(kind) * treatment.mean**2 / (control.mean**4 * control.count)
    )
    standard_error = math.sqrt(variance)
    distribution = stats.norm() if df is None else stats.t(df)
    critical = float(distribution.isf(settings.alpha / 2))
    return Effect(
        estimate,
        standard_error,
        estimate - critical * standard_error,
        estimate + critical * standard_error,
        2 * float(distribution.sf(abs(estimate) / standard_error)) if standard_error else 0.0,
        df,
    )


def bayesian_summary(
    estimate: float, std_error: float, scale: Scale, settings: AnalysisSettings
) -> BayesianSummary:
    """The effect's posterior ``N(estimate, std_error²)`` (flat prior): ``P(δ > 0)`` (``δ < 0``
    when lower is better), the expected loss of shipping the treatment ``E[max(0, -δ)]``
    and of keeping control ``E[max(0, δ)]`` (signs flipped when lower is better)."""
    posterior = stats.norm(loc=estimate, scale=std_error)
    chance_higher = float(posterior.sf(0.0))
    standardised = estimate / std_error
    density = std_error * float(stats.norm.pdf(standardised))
    loss_if_higher_wrong = density - estimate * float(stats.norm.cdf(-standardised))
    loss_if_lower_wrong = density + estimate * float(stats.norm.cdf(standardised))
    low, high = (
        float(bound) for bound in posterior.ppf([settings.alpha / 2, 1 - settings.alpha / 2])
    )
    if settings.higher_is_better:
        return BayesianSummary(
            scale, chance_higher, loss_if_higher_wrong, loss_if_lower_wrong, low, high
        )
    return BayesianSummary(
        scale, 1 - chance_higher, loss_if_lower_wrong, loss_if_higher_wrong, low, high
    )


def compare(
    control: VariantSummary, treatment: VariantSummary, settings: AnalysisSettings
) -> Comparison:
    """One treatment against control: the fixed-horizon effects, Bayesian and sequential."""
    _check_comparable(control, treatment, settings)
    absolute = _absolute_effect(control, treatment, settings)
    relative = _relative_effect(control, treatment, settings, absolute.df)
    # The relative scale needs control's mean and some spread (a treatment all at 0 has none).
    wanted_relative = settings.scale == "relative" and relative is not None and relative.std_error
    on_scale = relative if wanted_relative and relative is not None else absolute
    scale: Scale = "relative" if on_scale is relative else "absolute"
    units = control.count + treatment.count
    variance = on_scale.std_error**2
    p_value = float(
        sequential_p_values(
            on_scale.estimate, variance, units, settings.alpha, settings.sequential_tuning
        )
    )
    low, high = sequential_interval(
        on_scale.estimate, variance, units, settings.alpha, settings.sequential_tuning
    )
    rho = mixture_rho(settings.alpha, settings.sequential_tuning)
    sequential = SequentialSummary(scale, p_value, low, high, rho**2 * units * variance)
    return Comparison(
        variant=treatment.name,
        control=control.name,
        absolute=absolute,
        relative=relative,
        bayesian=bayesian_summary(on_scale.estimate, on_scale.std_error, scale, settings),
        sequential=sequential,
    )


def _check_comparable(
    control: VariantSummary, treatment: VariantSummary, settings: AnalysisSettings
) -> None:
    least = 2 if settings.kind == "continuous" else 1
    for summary in (control, treatment):
        if settings.kind == "binary":
            summary.check_binary()
        if summary.count < least:
            raise ValidationError(
                f"a {settings.kind} metric needs at least {least} units per variant",
                variant=summary.name,
                count=summary.count,
            )
    if control.variance(settings.kind) + treatment.variance(settings.kind) == 0:
        raise ValidationError(
            "the outcomes do not vary yet: there is no effect to estimate",
            variants=(control.name, treatment.name),
        )


def analyze(
    variants: Sequence[VariantSummary],
    settings: AnalysisSettings | None = None,
    weights: Sequence[float] | None = None,
    planned_units: int | None = None,
    target_power: float = 0.8,
) -> ABResults:
    """Results of one metric: the first variant is control, every other one is compared with
    it; the units per variant are checked against ``weights`` (equal if not given); with
    ``planned_units``, the minimum detectable effect of that total size."""
    settings = settings or AnalysisSettings()
    if len(variants) < 2:
        raise ValidationError("an A/B test needs at least 2 variants", variants=len(variants))
    names = [variant.name for variant in variants]
    if len(set(names)) != len(names):
        raise ValidationError("variant names must be distinct", variants=tuple(names))
    weights = tuple(weights) if weights is not None else (1.0,) * len(variants)
    control = variants[0]
    return ABResults(
        settings=settings,
        variants=tuple(
            VariantStats(v.name, v.count, v.mean, v.variance(settings.kind)) for v in variants
        ),
        comparisons=tuple(compare(control, treatment, settings) for treatment in variants[1:]),
        sample_ratio=sample_ratio_check([v.count for v in variants], weights),
        power=None
        if planned_units is None
        else plan_power(
            control, settings.kind, weights, planned_units, settings.alpha, target_power
        ),
    )
