"""Rows of ``wb.abtests``: finding a test, its record, its outcomes' sums, and the parsing
of what callers hand in (variants, metrics, outcomes), in the caller's transaction."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from weightbase.catalog.schema import (
    ABTestRow,
    ABTestStatRow,
    DeploymentRow,
    ModelRow,
    ModelVersionRow,
)
from weightbase.errors import NotFound, ValidationError
from weightbase.serving.ab_assign import EXCLUDED, Allocation, assign_many
from weightbase.serving.ab_records import AnalysisSettings, VariantSummary
from weightbase.serving.abtest_records import ABMetric, ABTest, ABVariant

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "MetricLike",
    "Outcome",
    "deployment_variant",
    "expected_shares",
    "find_row",
    "metric_of",
    "outcome_indices",
    "stat_rows",
    "settings_of",
    "summaries",
    "test_record",
]

#: A metric as callers give it: the record, or its ``to_dict`` form.
MetricLike = ABMetric | Mapping[str, Any]
#: An outcome: ``(unit id or variant name, metric, value)``, or a mapping with ``unit_id`` or
#: ``variant`` (or ``key``, read as the tuple's first item), ``metric`` and ``value``.
Outcome = tuple[Any, str, float] | Mapping[str, Any]

_TEST_ID = re.compile(r"[0-9a-f]{32}")
#: The most outcomes one batch carries.
MAX_OUTCOMES = 1_000_000


def metric_of(value: MetricLike) -> ABMetric:
    if isinstance(value, ABMetric):
        return value
    if isinstance(value, Mapping):
        return ABMetric.from_dict(value)
    raise ValidationError(f"a metric is an ABMetric or a mapping, not {value!r}", field="metric")


def settings_of(metric: ABMetric) -> AnalysisSettings:
    return AnalysisSettings(kind=metric.kind, higher_is_better=metric.higher_is_better)


def find_row(session: Session, test: str, *, lock: bool = False) -> ABTestRow:
    """The test with id ``test``, else the running test named ``test``, else the latest
    stopped one of that name; ``NotFound`` otherwise."""
    if not isinstance(test, str) or not test:
        raise ValidationError(f"a test is named by its id or name, not {test!r}", field="test")
    row: ABTestRow | None = None
    if _TEST_ID.fullmatch(test):
        row = session.get(ABTestRow, test, with_for_update=lock)
    if row is None:
        query = (
            select(ABTestRow)
            .where(ABTestRow.name == test)
            .order_by((ABTestRow.status == "running").desc(), ABTestRow.started_at.desc())
            .limit(1)
        )
        row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no A/B test {test!r}", test=test)
    return row


def test_record(row: ABTestRow) -> ABTest:
    return ABTest(
        id=row.id,
        name=row.name,
        status=row.status,
        variants=tuple(ABVariant.from_dict(item) for item in row.variants),
        weights=tuple(float(weight) for weight in row.allocation["weights"]),
        salt=row.salt,
        metric=ABMetric(row.metric, row.metric_kind, row.higher_is_better),  # type: ignore[arg-type]
        guardrails=tuple(ABMetric.from_dict(item) for item in row.guardrails),
        planned_units=row.planned_units,
        started=row.started_at,
        description=row.description,
        stopped=row.stopped_at,
        decision=row.decision,
        reason=row.reason,
        winner=row.winner,
        created_by=row.created_by,
    )


def deployment_variant(session: Session, deployment_id: str) -> ABVariant:
    """The variant of a deployment: the model version it deploys."""
    found = session.execute(
        select(ModelRow.name, ModelVersionRow.version)
        .join(DeploymentRow, DeploymentRow.model_id == ModelRow.id)
        .join(ModelVersionRow, ModelVersionRow.id == DeploymentRow.version_id)
        .where(DeploymentRow.id == deployment_id)
    ).first()
    if found is None:
        raise NotFound(f"no deployment {deployment_id}", deployment_id=deployment_id)
    return ABVariant(deployment_id, found[0], found[1], deployment_id)


def stat_rows(session: Session, test_id: str) -> dict[tuple[int, str], ABTestStatRow]:
    query = select(ABTestStatRow).where(ABTestStatRow.test_id == test_id)
    return {(row.variant, row.metric): row for row in session.scalars(query)}


def summaries(
    rows: Mapping[tuple[int, str], ABTestStatRow], test: ABTest, metric: str
) -> list[VariantSummary]:
    """Each variant's sums of ``metric``, in variant order."""
    found = []
    for index, variant in enumerate(test.variants):
        row = rows.get((index, metric))
        if row is None:
            found.append(VariantSummary(variant.name, 0, 0.0, 0.0))
        else:
            found.append(VariantSummary(variant.name, row.count, row.total, row.total_squares))
    return found


def _value(value: Any, metric: ABMetric) -> float:
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"an outcome must be a finite number, not {value!r}", field="value")
    if metric.kind == "binary" and value not in (0, 1):
        raise ValidationError(
            f"{metric.name} is binary: an outcome is 0 or 1, not {value!r}", field="value"
        )
    return float(value)


def _parts(outcome: Outcome) -> tuple[str | None, str | None, Any, Any]:
    """``(unit id, variant, metric, value)``; a bare key is a variant where one has its name."""
    if isinstance(outcome, Mapping):
        unit, variant = outcome.get("unit_id"), outcome.get("variant")
        if (unit is None) == (variant is None) and "key" not in outcome:
            raise ValidationError("an outcome names a unit_id or a variant", field="outcomes")
        if "key" in outcome:
            unit = outcome["key"]
        return (
            None if unit is None else str(unit),
            variant,
            outcome.get("metric"),
            outcome.get("value"),
        )
    if not isinstance(outcome, tuple | list) or len(outcome) != 3:
        raise ValidationError(
            f"an outcome is (unit id or variant, metric, value), not {outcome!r}",
            field="outcomes",
        )
    return str(outcome[0]), None, outcome[1], outcome[2]


def outcome_indices(
    test: ABTest, allocation: Allocation, outcomes: Sequence[Outcome]
) -> dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Per metric, the variant index and value of each outcome; unit ids are assigned to
    their variant here (those outside the test's buckets are left out)."""
    if len(outcomes) > MAX_OUTCOMES:
        raise ValidationError(f"at most {MAX_OUTCOMES} outcomes a batch", field="outcomes")
    metrics = {metric.name: metric for metric in test.metrics}
    names = {variant.name: index for index, variant in enumerate(test.variants)}
    by_metric: dict[str, tuple[list[int], list[str], list[float], list[float]]] = {}
    for outcome in outcomes:
        unit, variant, metric_name, raw = _parts(outcome)
        metric = metrics.get(metric_name) if isinstance(metric_name, str) else None
        if metric is None:
            raise ValidationError(
                f"{metric_name!r} is not a metric of test {test.name!r} ({', '.join(metrics)})",
                field="metric",
            )
        value = _value(raw, metric)
        fixed, units, fixed_values, unit_values = by_metric.setdefault(
            metric.name, ([], [], [], [])
        )
        if variant is None and unit is not None and unit in names:
            variant, unit = unit, None
        if variant is not None:
            if variant not in names:
                raise ValidationError(
                    f"test {test.name!r} has no variant {variant!r}", field="variant"
                )
            fixed.append(names[variant])
            fixed_values.append(value)
        else:
            units.append(str(unit))
            unit_values.append(value)
    found = {}
    for metric_name, (fixed, units, fixed_values, unit_values) in by_metric.items():
        assigned = assign_many(allocation, test.salt, units) if units else np.empty(0, np.int16)
        index = np.concatenate([np.asarray(fixed, dtype=np.int64), assigned.astype(np.int64)])
        values = np.asarray([*fixed_values, *unit_values], dtype=np.float64)
        kept = index != EXCLUDED
        found[metric_name] = (index[kept], values[kept])
    return found


def expected_shares(periods: Sequence[Mapping[str, Any]], counts: Sequence[int]) -> list[float]:
    """The units each variant should have by now: each stretch of traffic's outcomes split by
    the weights of that stretch (``counts`` are the primary metric's per variant now).

    Used as the sample-ratio check's weights, so a reweight mid-test is not a mismatch; with
    no outcomes yet, the latest weights.
    """
    expected = [0.0] * len(counts)
    ends = [list(period["counts"]) for period in periods[1:]] + [list(counts)]
    for period, end in zip(periods, ends, strict=True):
        start = list(period["counts"]) + [0] * (len(counts) - len(period["counts"]))
        units = sum(end) - sum(start)
        weights = [float(weight) for weight in period["weights"]]
        for index, weight in enumerate(weights):
            expected[index] += units * weight / math.fsum(weights)
    if sum(expected) <= 0:
        return [float(weight) for weight in periods[-1]["weights"]]
    return expected
