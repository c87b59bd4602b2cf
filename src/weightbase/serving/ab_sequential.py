"""Always-valid inference for A/B tests: the mixture sequential probability ratio test (mSPRT).

With a normal mixture over the effect, the p-value and interval stay valid however often the
results are looked at (Johari et al. 2017); parameterised as GrowthBook's sequential testing
(Waudby-Smith et al. 2023, eqs. 9, 155 and 161), so the same tuning gives the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from weightbase.errors import ValidationError

__all__ = ["always_valid", "mixture_rho", "sequential_interval", "sequential_p_values"]

FloatArray = npt.NDArray[np.float64]


def mixture_rho(alpha: float, tuning: float) -> float:
    """The mixture's scale rho that makes the interval tightest at ``tuning`` total units."""
    if not 0 < alpha < 1 or tuning <= 0:
        raise ValidationError("alpha must be in (0, 1) and the tuning positive", alpha=alpha)
    log_alpha = -2 * math.log(alpha)
    return math.sqrt((log_alpha + math.log(log_alpha + 1)) / tuning)


def sequential_p_values(
    estimate: npt.ArrayLike,
    variance: npt.ArrayLike,
    units: npt.ArrayLike,
    alpha: float = 0.05,
    tuning: float = 5_000.0,
) -> FloatArray:
    """The mSPRT p-value ``min(1, 1 / Λ)`` of each look, element-wise.

    ``estimate`` is the effect, ``variance`` its estimator's variance and ``units`` the total
    units behind it. The mixture is normal with variance ``τ² = ρ² · units · variance`` (the
    per-unit variance times ρ²), so
    ``Λ = exp(ρ² N z² / (2 (N ρ² + 1))) / sqrt(N ρ² + 1)`` with ``z² = estimate² / variance``.
    """
    rho_squared = mixture_rho(alpha, tuning) ** 2
    estimate_array = np.asarray(estimate, dtype=np.float64)
    variance_array = np.asarray(variance, dtype=np.float64)
    total = np.asarray(units, dtype=np.float64)
    spread = total * rho_squared + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        z_squared = np.where(variance_array > 0, estimate_array**2 / variance_array, 0.0)
    log_evidence = rho_squared * total * z_squared / (2 * spread) - 0.5 * np.log(spread)
    return np.minimum(1.0, np.exp(-log_evidence))


def sequential_interval(
    estimate: float, variance: float, units: float, alpha: float = 0.05, tuning: float = 5_000.0
) -> tuple[float, float]:
    """The always-valid (1 - alpha) interval: the effects the mSPRT does not reject at this look."""
    rho = mixture_rho(alpha, tuning)
    spread = units * rho**2 + 1
    per_unit_variance = variance * units
    half_width = math.sqrt(
        per_unit_variance * 2 * spread * math.log(math.sqrt(spread) / alpha) / (units * rho) ** 2
    )
    return estimate - half_width, estimate + half_width


def always_valid(p_values: npt.ArrayLike) -> FloatArray:
    """The always-valid p-value after each look: the running minimum over the looks so far
    (along the last axis), which may be compared with alpha at any look."""
    return np.minimum.accumulate(np.asarray(p_values, dtype=np.float64), axis=-1)
