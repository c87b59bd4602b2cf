"""The records of A/B test statistics: what goes in (per-variant sums, settings) and what
comes out (effects, Bayesian and sequential summaries, the sample-ratio check, power).

Every record is frozen and checked when built; ``to_dict`` gives plain JSON-ready values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from weightbase.errors import ValidationError

__all__ = [
    "METRIC_KINDS",
    "SCALES",
    "ABResults",
    "AnalysisSettings",
    "BayesianSummary",
    "Comparison",
    "Effect",
    "PowerPlan",
    "SampleRatioCheck",
    "SequentialSummary",
    "VariantStats",
    "VariantSummary",
]

MetricKind = Literal["binary", "continuous"]
Scale = Literal["absolute", "relative"]
METRIC_KINDS: tuple[MetricKind, ...] = ("binary", "continuous")
SCALES: tuple[Scale, ...] = ("absolute", "relative")


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class VariantSummary(_Record):
    """A variant's sufficient statistics: units, the sum of their outcomes and of the squares.

    For a binary metric ``total`` is the number of successes (``total_squares`` equals it).
    """

    name: str
    count: int
    total: float
    total_squares: float

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValidationError("a variant's count cannot be negative", variant=self.name)
        if not (math.isfinite(self.total) and math.isfinite(self.total_squares)):
            raise ValidationError("a variant's sums must be finite", variant=self.name)
        if self.total_squares < 0:
            raise ValidationError("a sum of squares cannot be negative", variant=self.name)
        # Cauchy-Schwarz: total**2 <= count * total_squares, up to rounding of the sums.
        if self.total**2 > self.count * self.total_squares * (1 + 1e-9) + 1e-9:
            raise ValidationError(
                "a variant's sum of squares is too small for its sum and count",
                variant=self.name,
            )

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def variance(self, kind: MetricKind) -> float:
        """``p(1 - p)`` for a binary metric; the sample variance (n - 1) for a continuous one."""
        if kind == "binary":
            return self.mean * (1 - self.mean)
        if self.count < 2:
            return 0.0
        return max(0.0, (self.total_squares - self.total**2 / self.count) / (self.count - 1))

    def check_binary(self) -> None:
        """Refuse sums that 0/1 outcomes cannot give."""
        if not 0 <= self.total <= self.count or self.total_squares != self.total:
            raise ValidationError(
                "a binary metric's successes must be between 0 and the count "
                "(and equal their sum of squares)",
                variant=self.name,
            )


@dataclass(frozen=True)
class AnalysisSettings(_Record):
    """How to analyse: the metric kind, the level alpha, which direction is better, the scale of
    the Bayesian and sequential summaries, and the sequential method's tuning (GrowthBook's
    ``sequential_tuning_parameter``: the total units at which its interval is tightest)."""

    kind: MetricKind = "continuous"
    alpha: float = 0.05
    higher_is_better: bool = True
    scale: Scale = "relative"
    sequential_tuning: float = 5_000.0

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS:
            raise ValidationError(f"the metric kind must be one of {METRIC_KINDS}", kind=self.kind)
        if not 0 < self.alpha < 1:
            raise ValidationError("alpha must be between 0 and 1", alpha=self.alpha)
        if self.scale not in SCALES:
            raise ValidationError(f"the scale must be one of {SCALES}", scale=self.scale)
        if not (math.isfinite(self.sequential_tuning) and self.sequential_tuning > 0):
            raise ValidationError(
                "the sequential tuning must be a positive number of units",
                sequential_tuning=self.sequential_tuning,
            )


@dataclass(frozen=True)
class VariantStats(_Record):
    """What results show per variant."""

    name: str
    count: int
    mean: float
    variance: float


@dataclass(frozen=True)
class Effect(_Record):
    """A treatment's effect against control with its standard error and (1 - alpha) interval.

    ``p_value`` is the fixed-horizon test's: Welch's t (``df`` its degrees of freedom) for a
    continuous metric, the two-proportion z (pooled under the null; ``df`` is ``None``) for a
    binary one; a relative effect's is the delta method's, with the same distribution.
    """

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float | None
    df: float | None


@dataclass(frozen=True)
class BayesianSummary(_Record):
    """The posterior of the effect (flat prior, Gaussian): the chance the treatment beats
    control, each choice's expected loss, and the (1 - alpha) credible interval."""

    scale: Scale
    chance_to_beat_control: float
    expected_loss_treatment: float
    expected_loss_control: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class SequentialSummary(_Record):
    """The always-valid p-value (mSPRT, normal mixture) and confidence interval of the effect."""

    scale: Scale
    p_value: float
    ci_low: float
    ci_high: float
    mixture_variance: float


@dataclass(frozen=True)
class Comparison(_Record):
    """One treatment against control."""

    variant: str
    control: str
    absolute: Effect
    relative: Effect | None
    bayesian: BayesianSummary
    sequential: SequentialSummary


@dataclass(frozen=True)
class SampleRatioCheck(_Record):
    """The χ² goodness-of-fit test of the units per variant against the traffic weights
    (``chi_square`` is ``None`` when a variant of weight 0 has units: a mismatch outright)."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi_square: float | None
    p_value: float
    mismatch: bool


@dataclass(frozen=True)
class PowerPlan(_Record):
    """The smallest effect the planned sample detects with the given power at level alpha, per
    treatment (two-sided, normal approximation), absolute and relative to control's mean
    (``None`` where it cannot be computed: a weight or a standard deviation of 0, a mean of 0)."""

    planned_units: int
    alpha: float
    power: float
    std_dev: float
    mde_absolute: tuple[float | None, ...]
    mde_relative: tuple[float | None, ...]


@dataclass(frozen=True)
class ABResults(_Record):
    """Results of one metric: per-variant statistics, each treatment against the first variant
    (control), the sample-ratio check and, given a planned size, the power plan."""

    settings: AnalysisSettings
    variants: tuple[VariantStats, ...]
    comparisons: tuple[Comparison, ...]
    sample_ratio: SampleRatioCheck
    power: PowerPlan | None
