"""A deployment's health score and recommendation, from what a check measures.

The score starts at 100; each signal takes off up to its weight, in proportion to the
square of its value over its threshold (so a signal well under its threshold costs little
and one at or above it costs its whole weight)::

    score = 100 - Σ weight · min(1, value / threshold)²  -  min(10, 5 · unresolved alerts)

with weights error rate 30, latency 20, accuracy drop 25, drift share 15 (a signal not
measured takes nothing off). The recommendation is ``rollback`` when the deployment is
degraded (accuracy drop or error rate above its threshold) and an earlier version is known
to roll back to, ``retrain`` on drift (or degradation with nothing to roll back to), and
``none`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from weightbase.monitoring.alerts import DEFAULT_THRESHOLDS
from weightbase.monitoring.records import Health, Recommendation

if TYPE_CHECKING:
    from weightbase.governance.audit import AuditEntry
    from weightbase.serving.records import Deployment, DeploymentEvent

__all__ = ["LATENCY_RULES", "WEIGHTS", "previous_version", "score_health"]

#: The most points each signal takes off.
WEIGHTS = {"error_rate": 30.0, "latency": 20.0, "accuracy_drop": 25.0, "drift_share": 15.0}
#: Points per unresolved alert, and the most they take off together.
ALERT_POINTS, ALERT_MOST = 5.0, 10.0
#: The latency rules, in the order health prefers one the deployment configures.
LATENCY_RULES = ("p95_latency_ms", "p99_latency_ms", "p50_latency_ms")


def _threshold(thresholds: Mapping[str, float], rule: str) -> float:
    return float(thresholds.get(rule, DEFAULT_THRESHOLDS.get(rule, 0.0)))


def _penalty(weight: float, value: float | None, threshold: float) -> float:
    if value is None:
        return 0.0
    if threshold <= 0:
        return weight if value > 0 else 0.0
    return weight * min(1.0, max(0.0, value) / threshold) ** 2


def previous_version(
    deployment: Deployment,
    history: Sequence[DeploymentEvent],
    alias_history: Sequence[AuditEntry],
) -> str | None:
    """The version to roll back to: the last other version this deployment's environment
    served, else the version the ``production`` alias pointed at before it moved last."""
    for event in reversed(history):
        if event.version != deployment.version:
            return event.version
    for entry in reversed(alias_history):
        before, after = entry.before or {}, entry.after or {}
        if not entry.action.startswith("alias.") or before.get("alias") != "production":
            continue
        earlier = before.get("version")
        if isinstance(earlier, str) and earlier != deployment.version:
            return earlier
        if after.get("version") not in (None, deployment.version):
            return str(after["version"])
    return None


def score_health(
    deployment: Deployment,
    measured: Mapping[str, float | None],
    thresholds: Mapping[str, float],
    unresolved_alerts: int,
    rollback_to: str | None,
) -> Health:
    """The health of ``deployment`` from what was ``measured`` against ``thresholds``
    (the deployment's, over :data:`DEFAULT_THRESHOLDS`)."""
    latency_rule = next((rule for rule in LATENCY_RULES if rule in thresholds), LATENCY_RULES[0])
    penalties = {
        "error_rate": _penalty(
            WEIGHTS["error_rate"], measured.get("error_rate"), _threshold(thresholds, "error_rate")
        ),
        "latency": _penalty(
            WEIGHTS["latency"], measured.get(latency_rule), _threshold(thresholds, latency_rule)
        ),
        "accuracy_drop": _penalty(
            WEIGHTS["accuracy_drop"],
            measured.get("accuracy_drop"),
            _threshold(thresholds, "accuracy_drop"),
        ),
        "drift_share": _penalty(
            WEIGHTS["drift_share"],
            measured.get("drift_share"),
            _threshold(thresholds, "drift_share"),
        ),
        "alerts": min(ALERT_MOST, ALERT_POINTS * unresolved_alerts),
    }
    score = max(0.0, round(100.0 - sum(penalties.values()), 2))

    def above(rule: str) -> bool:
        value = measured.get(rule)
        return value is not None and value > _threshold(thresholds, rule)

    reasons = [
        f"{rule} {measured[rule]:.4g} is above {_threshold(thresholds, rule):.4g}"
        for rule in ("error_rate", "accuracy_drop", "drift_share", latency_rule)
        if above(rule)
    ]
    degraded = above("accuracy_drop") or above("error_rate")
    recommendation: Recommendation = "none"
    target = None
    if degraded and rollback_to is not None:
        recommendation, target = "rollback", rollback_to
        reasons.append(f"roll back to {deployment.model}@{rollback_to}")
    elif degraded or above("drift_share"):
        recommendation = "retrain"
        if degraded:
            reasons.append("no earlier version to roll back to")
    return Health(
        deployment_id=deployment.id,
        model=deployment.model,
        version=deployment.version,
        environment=deployment.environment,
        score=score,
        penalties={name: round(value, 4) for name, value in penalties.items()},
        measured=dict(measured),
        recommendation=recommendation,
        rollback_to=target,
        reasons=tuple(reasons),
    )
