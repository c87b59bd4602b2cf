"""What an A/B test's results say to do: the winner, if the evidence names one, and why.

The rule reads the always-valid p-value (the running minimum over every look), so checking
results every day does not make a winner out of noise; a sample-ratio mismatch vetoes all.
"""

from __future__ import annotations

from collections.abc import Sequence

from weightbase.serving.ab_records import ABResults, Comparison
from weightbase.serving.abtest_records import ABMetric, GuardrailResult

__all__ = ["recommend"]


def _better(comparison: Comparison, metric: ABMetric) -> bool:
    estimate = comparison.absolute.estimate
    return estimate > 0 if metric.higher_is_better else estimate < 0


def _effect_text(comparison: Comparison) -> str:
    if comparison.relative is not None:
        return f"{comparison.relative.estimate:+.2%}"
    return f"{comparison.absolute.estimate:+.4g}"


def _harmed(variant: str, guardrails: Sequence[GuardrailResult], alpha: float) -> list[str]:
    harmed = []
    for guardrail in guardrails:
        if guardrail.results is None:
            continue
        for comparison in guardrail.results.comparisons:
            if (
                comparison.variant == variant
                and comparison.sequential.p_value < alpha
                and not _better(comparison, guardrail.metric)
            ):
                harmed.append(guardrail.metric.name)
    return harmed


def recommend(
    metric: ABMetric,
    results: ABResults,
    guardrails: Sequence[GuardrailResult],
    always_valid_p: Sequence[float],
    planned_units: int | None,
) -> tuple[str | None, str]:
    """The winning treatment (``None``: keep control or keep going) and the advice, in words."""
    alpha = results.settings.alpha
    ratio = results.sample_ratio
    if ratio.mismatch:
        return None, (
            f"Sample ratio mismatch (χ² p = {ratio.p_value:.2g}; units {list(ratio.observed)} "
            f"against expected {[round(e) for e in ratio.expected]}): assignment or logging "
            "is broken somewhere; find why before trusting any effect."
        )
    units = sum(variant.count for variant in results.variants)
    winners = [
        (comparison, p)
        for comparison, p in zip(results.comparisons, always_valid_p, strict=True)
        if p < alpha and _better(comparison, metric)
    ]
    if winners:
        best, p_value = max(winners, key=lambda item: item[0].bayesian.chance_to_beat_control)
        harmed = _harmed(best.variant, guardrails, alpha)
        detail = (
            f"{best.variant} beats {best.control} on {metric.name} ({_effect_text(best)}, "
            f"always-valid p = {p_value:.2g}, chance to beat control "
            f"{best.bayesian.chance_to_beat_control:.1%})"
        )
        if harmed:
            return None, f"Review before promoting: {detail}, but harms {', '.join(harmed)}."
        return best.variant, f"Promote {best.variant}: {detail}."
    losers = [
        comparison.variant
        for comparison, p in zip(results.comparisons, always_valid_p, strict=True)
        if p < alpha
    ]
    if losers and len(losers) == len(results.comparisons):
        return None, (
            f"Keep {results.variants[0].name}: every treatment does worse on {metric.name}; "
            "stop the test."
        )
    if planned_units is not None and units >= planned_units:
        return None, (
            f"Keep {results.variants[0].name}: no treatment differs on {metric.name} after "
            f"{units} of the {planned_units} planned units."
        )
    planned = f" of {planned_units} planned" if planned_units is not None else ""
    return None, (
        f"Keep running: no treatment differs on {metric.name} yet ({units}{planned} units)."
    )
