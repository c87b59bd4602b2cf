"""Design checks of an A/B test: the sample-ratio-mismatch test, power and the minimum
detectable effect of a planned sample (two-sided, normal approximation)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from weightbase.errors import MissingExtraError, ValidationError
from weightbase.serving.ab_records import MetricKind, PowerPlan, SampleRatioCheck, VariantSummary

try:
    from scipy import optimize, stats
except ImportError as exc:  # pragma: no cover - scipy comes with the abtests extra
    raise MissingExtraError(
        "A/B test statistics need scipy: pip install 'weightbase[abtests]'"
    ) from exc

__all__ = [
    "SRM_THRESHOLD",
    "minimum_detectable_effect",
    "plan_power",
    "power",
    "sample_ratio_check",
]

#: A sample ratio mismatch is flagged below this χ² p-value.
SRM_THRESHOLD = 0.001


def sample_ratio_check(
    counts: Sequence[int], weights: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SampleRatioCheck:
    """Pearson's χ² test of the units per variant against the shares the weights promise.

    A variant of weight 0 is left out of the test, unless it has units: then the ratio is
    mismatched outright (p = 0).
    """
    if len(counts) != len(weights):
        raise ValidationError("one weight per variant", counts=len(counts), weights=len(weights))
    if len(counts) < 2:
        raise ValidationError("an A/B test needs at least 2 variants", variants=len(counts))
    if any(count < 0 for count in counts):
        raise ValidationError("unit counts cannot be negative", counts=tuple(counts))
    if any(not math.isfinite(weight) or weight < 0 for weight in weights) or sum(weights) <= 0:
        raise ValidationError("weights must be >= 0 and sum to more than 0", weights=tuple(weights))
    total = sum(counts)
    weight_sum = math.fsum(weights)
    expected = tuple(total * weight / weight_sum for weight in weights)
    if any(weight == 0 and count > 0 for weight, count in zip(weights, counts, strict=True)):
        chi_square: float | None = None  # a unit where none may be: no statistic needed
        p_value = 0.0
    else:
        kept = [i for i, weight in enumerate(weights) if weight > 0]
        if total == 0 or len(kept) < 2:
            chi_square, p_value = 0.0, 1.0
        else:
            result = stats.chisquare([counts[i] for i in kept], [expected[i] for i in kept])
            chi_square, p_value = float(result.statistic), float(result.pvalue)
    return SampleRatioCheck(
        observed=tuple(int(count) for count in counts),
        expected=expected,
        chi_square=chi_square,
        p_value=p_value,
        mismatch=p_value < threshold,
    )


def _check_design(std_dev: float, control_units: float, treatment_units: float) -> None:
    if not (std_dev > 0 and control_units > 0 and treatment_units > 0):
        raise ValidationError(
            "power needs a positive standard deviation and units in both variants",
            std_dev=std_dev,
            control_units=control_units,
            treatment_units=treatment_units,
        )


def power(
    effect: float,
    std_dev: float,
    control_units: float,
    treatment_units: float,
    alpha: float = 0.05,
    treatment_std_dev: float | None = None,
) -> float:
    """The chance a two-sided test at level alpha finds an absolute ``effect`` δ:
    ``Φ(|δ|/se - z) + Φ(-|δ|/se - z)``, ``se = sqrt(sd_c²/n_c + sd_t²/n_t)``,
    ``z = z(1 - alpha/2)``; the treatment's standard deviation is control's unless given
    (a binary metric's is ``sqrt(p_t (1 - p_t))``)."""
    _check_design(std_dev, control_units, treatment_units)
    if not 0 < alpha < 1:
        raise ValidationError("alpha must be between 0 and 1", alpha=alpha)
    other = std_dev if treatment_std_dev is None else treatment_std_dev
    _check_design(other, control_units, treatment_units)
    standard_error = math.sqrt(std_dev**2 / control_units + other**2 / treatment_units)
    critical = float(stats.norm.isf(alpha / 2))
    shift = abs(effect) / standard_error
    return float(stats.norm.sf(critical - shift) + stats.norm.cdf(-critical - shift))


def minimum_detectable_effect(
    std_dev: float,
    control_units: float,
    treatment_units: float,
    alpha: float = 0.05,
    target_power: float = 0.8,
) -> float:
    """The smallest absolute effect that :func:`power` gives ``target_power`` (solved exactly,
    both tails counted; about ``(z(1 - alpha/2) + z(power)) · se``)."""
    _check_design(std_dev, control_units, treatment_units)
    if not alpha < target_power < 1:
        raise ValidationError("the power must be between alpha and 1", power=target_power)
    standard_error = std_dev * math.sqrt(1 / control_units + 1 / treatment_units)
    upper = (float(stats.norm.isf(alpha / 2)) + float(stats.norm.ppf(target_power)) + 1) * (
        standard_error
    )

    def shortfall(effect: float) -> float:
        return power(effect, std_dev, control_units, treatment_units, alpha) - target_power

    return float(optimize.brentq(shortfall, 0.0, upper, xtol=1e-12 * standard_error))


def plan_power(
    control: VariantSummary,
    kind: MetricKind,
    weights: Sequence[float],
    planned_units: int,
    alpha: float = 0.05,
    target_power: float = 0.8,
) -> PowerPlan:
    """The minimum detectable effect of each treatment at the planned total size, split by the
    weights, with control's observed standard deviation (``sqrt(p(1-p))`` for a binary metric)."""
    if planned_units <= 0:
        raise ValidationError("the planned sample size must be positive", planned=planned_units)
    weight_sum = math.fsum(weights)
    if weight_sum <= 0 or weights[0] <= 0:
        raise ValidationError("control needs a positive weight", weights=tuple(weights))
    std_dev = math.sqrt(control.variance(kind))
    control_units = planned_units * weights[0] / weight_sum
    absolute: list[float | None] = []
    relative: list[float | None] = []
    for weight in weights[1:]:
        if weight <= 0 or std_dev == 0:
            absolute.append(None)
            relative.append(None)
            continue
        mde = minimum_detectable_effect(
            std_dev, control_units, planned_units * weight / weight_sum, alpha, target_power
        )
        absolute.append(mde)
        relative.append(mde / abs(control.mean) if control.mean else None)
    return PowerPlan(
        planned_units=planned_units,
        alpha=alpha,
        power=target_power,
        std_dev=std_dev,
        mde_absolute=tuple(absolute),
        mde_relative=tuple(relative),
    )
