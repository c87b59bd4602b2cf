"""Convergence analysis of training curves: converged, plateau, overfitting risk, when to stop.

:func:`analyze` reads a training curve (and optionally a validation curve) and
applies the rules below, every threshold a keyword argument. Curves are
loss-like by default (lower is better); ``mode="max"`` is for accuracy-like
ones. NaN and ±inf points are dropped (and counted) first.

Let ``n`` be the number of finite training points, ``w = window`` (default
``max(3, n // 10)``, at most ``n // 2``) and ``s`` the training curve smoothed
by a moving average of ``w`` points. ``noise`` is the curve's point-to-point
noise (a robust spread of its second differences); a difference counts only
if it is larger than ``3·√2·noise/√w`` (three standard errors of a difference
of two smoothed points).

The curve's *start* is ``s``'s first value (the mean of its first ``w``
points), the *distance come* its start minus its best, and its *scale* the
larger of that distance and the start's magnitude.

1. **converged**: the last window (``s`` now against ``s`` ``w`` points
   earlier) changed ``s`` by at most ``tolerance`` (1 %) of the distance come,
   *and* the curve improved overall by more than ``min_improvement`` (1 %) of
   its start's magnitude.
2. **plateau detected**: converged, or over the last ``patience`` smoothed
   points (default ``max(w, n // 5)``) the best value improved on the earlier
   best by at most ``min_delta`` (0.1 %) of the curve's scale. So a converged
   curve is always on a plateau; a flat curve is on a plateau without having
   converged.
3. **overfitting risk** (needs a validation curve): the gap (validation minus
   training, training interpolated at the validation's steps, positive when
   validation is worse) is judged by its growth and by its size. Growth, over
   the last third of the validation curve (at least 3 points): ``high`` if the
   gap grew by more than ``gap_increase`` (5 %) of the best validation value
   *and* validation rose more than ``min_rise`` (2 %) above its best; ``low``
   if only the gap grew. Size: the *relative gap*, the final smoothed gap
   divided by the final smoothed validation value's magnitude, is ``low`` from
   ``gap_ratio_low`` (0.5: training loss under half the validation loss) and
   ``high`` from ``gap_ratio_high`` (0.8: under a fifth). The risk is the
   higher of the two; ``none`` if neither.
4. **suggested stop**: with validation, the step (or epoch) of the smoothed
   validation minimum, unless validation is still improving at its last point
   (then ``None``); without validation, once converged or on a plateau, the
   first step where ``s`` came within ``tolerance`` of its final value.

Fewer than ``MIN_POINTS`` (8) finite training points give a report with every
finding false and a reason saying why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from weightbase.errors import ValidationError
from weightbase.tracking.records import plain_fields

__all__ = ["MIN_POINTS", "RULES", "ConvergenceReport", "analyze"]

#: The fewest finite training points the analysis needs.
MIN_POINTS = 8
#: The thresholds :func:`analyze` takes as keyword arguments.
RULES = (
    "window",
    "tolerance",
    "min_improvement",
    "patience",
    "min_delta",
    "gap_increase",
    "min_rise",
    "gap_ratio_low",
    "gap_ratio_high",
)
_MIN_VALIDATION_POINTS = 4

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ConvergenceReport:
    """What :func:`analyze` found; ``reasons`` explains each finding in words.

    ``suggested_stop`` is in the units of the x values given (steps or
    epochs), ``None`` when there is nothing to suggest. ``best_validation`` and
    ``final_gap`` are in the curve's own units; ``gap_trend`` is the gap's
    least-squares slope per x unit over the trend window; ``relative_gap`` the
    final gap over the final validation value (negative: validation better).
    """

    converged: bool
    plateau_detected: bool
    overfitting_risk: Literal["none", "low", "high"]
    suggested_stop: float | None
    best_validation: float | None
    best_validation_at: float | None
    final_gap: float | None
    gap_trend: float | None
    points: int
    dropped_nonfinite: int
    window: int
    reasons: tuple[str, ...]
    relative_gap: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


def analyze(
    train: Any,
    validation: Any = None,
    *,
    train_x: Any = None,
    validation_x: Any = None,
    mode: Literal["min", "max"] = "min",
    window: int | None = None,
    tolerance: float = 0.01,
    min_improvement: float = 0.01,
    patience: int | None = None,
    min_delta: float = 0.001,
    gap_increase: float = 0.05,
    min_rise: float = 0.02,
    gap_ratio_low: float = 0.5,
    gap_ratio_high: float = 0.8,
) -> ConvergenceReport:
    """Apply the module's rules to a training curve and, optionally, a validation curve.

    ``train_x``/``validation_x`` are the curves' steps or epochs (default
    0, 1, 2…); with a validation curve of another length they are needed to
    line the two up.
    """
    if mode not in ("min", "max"):
        raise ValidationError(f"mode must be 'min' or 'max', not {mode!r}")
    for label, value in (
        ("tolerance", tolerance),
        ("min_improvement", min_improvement),
        ("min_delta", min_delta),
        ("gap_increase", gap_increase),
        ("min_rise", min_rise),
        ("gap_ratio_low", gap_ratio_low),
        ("gap_ratio_high", gap_ratio_high),
    ):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValidationError(f"{label} must be a finite number ≥ 0, not {value!r}")
    if gap_ratio_high < gap_ratio_low:
        raise ValidationError(
            f"gap_ratio_high ({gap_ratio_high}) must be at least gap_ratio_low ({gap_ratio_low})"
        )
    sign = 1.0 if mode == "min" else -1.0
    x, y, dropped = _clean("train", train, train_x)
    y = sign * y
    n = y.shape[0]
    reasons: list[str] = []
    if n < MIN_POINTS:
        reasons.append(f"only {n} finite training points; the analysis needs {MIN_POINTS}")
        return ConvergenceReport(
            False, False, "none", None, None, None, None, None, n, dropped, 0, tuple(reasons)
        )
    if window is not None and window < 1:
        raise ValidationError(f"window must be at least 1, not {window}")
    w = max(1, min(window or max(3, n // 10), n // 2))
    smooth, smooth_x = _smooth(y, x, w)
    noise = _noise(y)
    significant = 3.0 * math.sqrt(2.0) * noise / math.sqrt(w)
    head, tail, best = float(smooth[0]), float(smooth[-1]), float(smooth.min())
    travelled = head - best
    scale = max(abs(travelled), abs(head) * 1e-9, 1e-12)

    # 1. converged
    previous = float(smooth[-1 - w]) if smooth.shape[0] > w else head
    recent_change = previous - tail
    improvement = head - tail
    settled = abs(recent_change) <= max(tolerance * scale, significant)
    improved = improvement > max(min_improvement * max(abs(head), 1e-12), significant)
    converged = settled and improved
    reasons.append(
        f"converged: {'yes' if converged else 'no'} (last window changed by "
        f"{recent_change:.4g}, allowed {max(tolerance * scale, significant):.4g}; overall "
        f"improvement {improvement:.4g}, needed > "
        f"{max(min_improvement * abs(head), significant):.4g})"
    )

    # 2. plateau
    wait = max(1, min(patience or max(w, smooth.shape[0] // 5), smooth.shape[0] - 1))
    earlier_best = float(smooth[:-wait].min())
    recent_best = float(smooth[-wait:].min())
    plateau_limit = max(min_delta * max(abs(head), scale), significant)
    # A converged curve has settled, which is what a plateau means too.
    plateau = converged or earlier_best - recent_best <= plateau_limit
    reasons.append(
        f"plateau: {'yes' if plateau else 'no'} (best of the last {wait} smoothed points "
        f"improved by {earlier_best - recent_best:.4g}, plateau below {plateau_limit:.4g}"
        f"{'; converged' if converged else ''})"
    )

    risk: Literal["none", "low", "high"] = "none"
    suggested: float | None = None
    best_validation = best_validation_at = final_gap = gap_trend = relative_gap = None
    if validation is not None:
        vx, vy, vdropped = _clean("validation", validation, validation_x)
        if validation_x is None and train_x is None and vy.shape[0] != n + dropped:
            raise ValidationError(
                "train and validation curves differ in length; pass train_x and validation_x"
            )
        dropped += vdropped
        vy = sign * vy
        if vy.shape[0] < _MIN_VALIDATION_POINTS:
            reasons.append(
                f"overfitting: not assessed ({vy.shape[0]} finite validation points, "
                f"needs {_MIN_VALIDATION_POINTS})"
            )
        else:
            vw = max(1, min(vy.shape[0] // 10, 5))
            vsmooth, vsmooth_x = _smooth(vy, vx, vw)
            best_index = int(np.argmin(vsmooth))
            best_value = float(vsmooth[best_index])
            best_validation = sign * best_value
            best_validation_at = float(vsmooth_x[best_index])
            train_at = np.interp(vsmooth_x, smooth_x, smooth)
            gap = vsmooth - train_at
            final_gap = sign * float(gap[-1])
            span = max(3, vsmooth.shape[0] // 3)
            span = min(span, vsmooth.shape[0])
            trend_x, trend_gap = vsmooth_x[-span:], gap[-span:]
            slope = float(np.polyfit(trend_x, trend_gap, 1)[0]) if np.ptp(trend_x) > 0 else 0.0
            gap_trend = sign * slope
            growth = float(trend_gap[-1] - trend_gap[0])
            reference = max(abs(best_value), 1e-12)
            rise = float(vsmooth[-1]) - best_value
            gap_grows = growth > gap_increase * reference
            rising = rise > min_rise * reference
            if gap_grows and rising:
                risk = "high"
            elif gap_grows:
                risk = "low"
            # A gap that stopped growing can still be huge (a memorised training set).
            relative_gap = float(gap[-1]) / max(abs(float(vsmooth[-1])), 1e-12)
            if relative_gap >= gap_ratio_high:
                risk = "high"
            elif relative_gap >= gap_ratio_low and risk == "none":
                risk = "low"
            reasons.append(
                f"overfitting risk: {risk} (gap grew by {growth:.4g} over the last {span} "
                f"validation points, threshold {gap_increase * reference:.4g}; validation is "
                f"{rise:.4g} above its best, threshold {min_rise * reference:.4g}; the gap is "
                f"{relative_gap:.1%} of the validation value, low from {gap_ratio_low:.0%}, "
                f"high from {gap_ratio_high:.0%})"
            )
            if best_index < vsmooth.shape[0] - 1:
                suggested = best_validation_at
                reasons.append(f"suggested stop: at the validation minimum, x = {suggested:g}")
            else:
                reasons.append("suggested stop: none (validation still improving at the end)")
    else:
        reasons.append("overfitting risk: not assessed (no validation curve)")
        if converged or plateau:
            near = np.nonzero(smooth <= tail + tolerance * scale)[0]
            index = int(near[0]) if near.shape[0] else smooth.shape[0] - 1
            suggested = float(smooth_x[index])
            reasons.append(f"suggested stop: where the curve settled, x = {suggested:g}")
        else:
            reasons.append("suggested stop: none (still improving)")

    return ConvergenceReport(
        converged=converged,
        plateau_detected=plateau,
        overfitting_risk=risk,
        suggested_stop=suggested,
        best_validation=best_validation,
        best_validation_at=best_validation_at,
        final_gap=final_gap,
        gap_trend=gap_trend,
        points=n,
        dropped_nonfinite=dropped,
        window=w,
        reasons=tuple(reasons),
        relative_gap=relative_gap,
    )


def _clean(label: str, values: Any, x: Any) -> tuple[FloatArray, FloatArray, int]:
    """Finite points of a curve and their x values (default: their positions)."""
    try:
        y = np.asarray(values, dtype=np.float64).reshape(-1)
        xs = (
            np.arange(y.shape[0], dtype=np.float64)
            if x is None
            else np.asarray(x, dtype=np.float64).reshape(-1)
        )
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"the {label} curve is not numbers: {exc}") from exc
    if xs.shape != y.shape:
        raise ValidationError(
            f"the {label} curve has {y.shape[0]} values but {xs.shape[0]} x values"
        )
    keep = np.isfinite(y) & np.isfinite(xs)
    y, xs = y[keep], xs[keep]
    if xs.shape[0] > 1 and bool((np.diff(xs) < 0).any()):
        order = np.argsort(xs, kind="stable")
        y, xs = y[order], xs[order]
    return xs, y, int(keep.shape[0] - np.count_nonzero(keep))


def _noise(y: FloatArray) -> float:
    """The point-to-point noise of a curve: a robust spread of its second differences.

    A smooth trend has near-zero second differences, so what spread they have
    is noise: for white noise of deviation sigma they have deviation sigma·√6.
    The median absolute deviation keeps a few steep points from counting.
    Callers pass at least ``MIN_POINTS`` points.
    """
    second = np.diff(y, n=2)
    spread = float(np.median(np.abs(second - np.median(second))))
    return 1.4826 * spread / math.sqrt(6.0)


def _smooth(y: FloatArray, x: FloatArray, w: int) -> tuple[FloatArray, FloatArray]:
    """Moving average of ``w`` points, each placed at its window's centre."""
    if w <= 1:
        return y, x
    kernel = np.ones(w) / w
    smooth = np.convolve(y, kernel, mode="valid")
    centre = np.convolve(x, kernel, mode="valid")
    return smooth, centre
