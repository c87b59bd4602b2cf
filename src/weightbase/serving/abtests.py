"""``wb.abtests``: A/B tests between model versions (or deployments) on live traffic.

    test = wb.abtests.create("ranker-v2", variants=["ranker@1.0.0", "ranker@1.1.0"],
                             metric="click", kind="binary", planned_units=20_000)
    wb.abtests.assign(test.id, "user-42")                  # "ranker@1.1.0", always
    wb.abtests.record(test.id, [("user-42", "click", 1)])  # unit ids assigned here
    wb.abtests.results(test.id).recommendation
    wb.abtests.promote(test.id)                            # production alias → the winner

Assignment is the sticky bucket hash of :mod:`~weightbase.serving.ab_assign`; a reweight
moves only the buckets it must. Outcomes are not stored one by one: each batch adds to the
count, sum and sum of squares per variant and metric in the transaction that takes it, so
results read a few rows however many outcomes came in, and each batch is a look of the
sequential test whose always-valid p-value (the running minimum) is kept beside the sums.
Every change is audited on the test and emitted as an event; ``promote`` moves the model's
``production`` alias through the registry, so governance's production guard applies.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from weightbase.catalog.schema import ABTestRow, ABTestStatRow, utcnow
from weightbase.errors import Conflict, ValidationError
from weightbase.serving.ab_assign import Allocation, allocate, assign, reweight
from weightbase.serving.ab_records import VariantSummary
from weightbase.serving.ab_stats import analyze, compare
from weightbase.serving.abtest_records import (
    ABMetric,
    ABTest,
    ABTestResults,
    ABVariant,
    GuardrailResult,
)
from weightbase.serving.abtest_report import recommend
from weightbase.serving.abtest_rows import (
    MetricLike,
    Outcome,
    deployment_variant,
    expected_shares,
    find_row,
    metric_of,
    outcome_indices,
    settings_of,
    stat_rows,
    summaries,
    test_record,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.registry import ModelRegistry

__all__ = ["ABTests"]

_MAX_TEXT = 255


def _text(value: str, field: str, longest: int = _MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > longest:
        raise ValidationError(f"{field} must be 1 to {longest} characters", field=field)
    return value


class ABTests:
    """A/B tests: sticky assignment, outcomes as running sums, results, stop and promote."""

    def __init__(
        self, catalog: Catalog, *, recorder: ChangeRecorder, models: ModelRegistry
    ) -> None:
        self._catalog = catalog
        self._recorder = recorder
        self._models = models

    # -- changes ---------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        variants: Sequence[str],
        weights: Sequence[float] | None = None,
        metric: str = "conversion",
        kind: str = "binary",
        higher_is_better: bool = True,
        guardrails: Sequence[MetricLike] = (),
        planned_units: int | None = None,
        salt: str | None = None,
        description: str | None = None,
    ) -> ABTest:
        """Start a test of ``variants`` (``name@version`` or ``name@alias`` refs, or deployment
        ids; the first is control) split by ``weights`` (equal if not given).

        ``metric`` is the primary metric (``binary`` or ``continuous``), ``guardrails`` other
        metrics that must not get worse; ``salt`` defaults to the test's id. A name names one
        running test at a time (``Conflict``).
        """
        _text(name, "name")
        if isinstance(variants, str) or len(variants) < 2:
            raise ValidationError("an A/B test needs at least 2 variants", field="variants")
        weights = [1.0] * len(variants) if weights is None else list(weights)
        if len(weights) != len(variants):
            raise ValidationError("one weight per variant", field="weights")
        allocation = allocate(weights)
        primary = ABMetric(metric, kind, higher_is_better)  # type: ignore[arg-type]
        guards = tuple(metric_of(item) for item in guardrails)
        metric_names = [item.name for item in (primary, *guards)]
        if len(set(metric_names)) != len(metric_names):
            raise ValidationError("metric names must be distinct", field="guardrails")
        if planned_units is not None and (
            isinstance(planned_units, bool) or not isinstance(planned_units, int)
        ):
            raise ValidationError("planned_units must be a whole number", field="planned_units")
        if planned_units is not None and planned_units <= 0:
            raise ValidationError("planned_units must be positive", field="planned_units")
        if description is not None:
            _text(description, "description", 10_000)
        test_id = uuid.uuid4().hex
        salt = test_id if salt is None else _text(salt, "salt")
        resolved = [self._model_variant(ref) for ref in variants]

        def work(session: Session) -> ABTest:
            chosen = [
                item or deployment_variant(session, ref)
                for ref, item in zip(variants, resolved, strict=True)
            ]
            if len({item.name for item in chosen}) != len(chosen):
                raise ValidationError("variants must be distinct", field="variants")
            running = session.scalar(
                select(ABTestRow.id).where(ABTestRow.name == name, ABTestRow.status == "running")
            )
            if running is not None:
                raise Conflict(f"an A/B test named {name!r} is running", test=running)
            now = utcnow()
            row = ABTestRow(
                id=test_id,
                name=name,
                description=description,
                status="running",
                variants=[item.to_dict() for item in chosen],
                allocation=allocation.to_dict(),
                weight_periods=[{"weights": list(allocation.weights), "counts": [0] * len(chosen)}],
                salt=salt,
                metric=primary.name,
                metric_kind=primary.kind,
                higher_is_better=primary.higher_is_better,
                guardrails=[item.to_dict() for item in guards],
                planned_units=planned_units,
                started_at=now,
                created_by=self._recorder.actor,
            )
            session.add(row)
            for index in range(len(chosen)):
                for metric_name in metric_names:
                    session.add(_stat_row(test_id, index, metric_name))
            session.flush()
            created = test_record(row)
            self._change(session, created, "create", None, None, created.to_dict(), "created")
            return created

        return self._catalog.write(work)

    def record(self, test: str, outcomes: Sequence[Outcome]) -> int:
        """Add ``outcomes`` to the test's sums, all or none; how many were counted.

        Each is ``(unit id or variant name, metric, value)`` (a key that names a variant is
        that variant; any other is a unit id, assigned as :meth:`assign` does) or a mapping
        with ``unit_id`` or ``variant``, ``metric`` and ``value``. Binary metrics take 0 or 1.
        One outcome per unit and metric is the caller's to keep: each one counts.
        """
        if isinstance(outcomes, str | bytes | Mapping):
            raise ValidationError("outcomes are a list", field="outcomes")

        def work(session: Session) -> int:
            row = find_row(session, test, lock=True)
            found = test_record(row)
            if found.status != "running":
                raise Conflict(f"A/B test {found.name!r} is stopped", test=found.id)
            indices = outcome_indices(found, Allocation.from_dict(row.allocation), outcomes)
            rows = stat_rows(session, found.id)
            now = utcnow()
            counted = 0
            names = [variant.name for variant in found.variants]
            for metric_name, (index, values) in indices.items():
                counted += int(index.size)
                counts = np.bincount(index, minlength=len(names))
                totals = np.bincount(index, weights=values, minlength=len(names))
                squares = np.bincount(index, weights=values * values, minlength=len(names))
                for variant in np.flatnonzero(counts).tolist():
                    stat = rows.get((variant, metric_name))
                    if stat is None:
                        stat = rows[(variant, metric_name)] = _stat_row(
                            found.id, variant, metric_name
                        )
                        session.add(stat)
                    stat.count += int(counts[variant])
                    stat.total += float(totals[variant])
                    stat.total_squares += float(squares[variant])
                    stat.updated_at = now
                self._look(rows, found, metric_name)
            return counted

        return self._catalog.write(work)

    def reweight(self, test: str, weights: Sequence[float], *, reason: str | None = None) -> ABTest:
        """Change the traffic weights of a running test; units keep their variant wherever
        the new weights allow (only the buckets the change forces move)."""

        def work(session: Session) -> ABTest:
            row = find_row(session, test, lock=True)
            before = test_record(row)
            if before.status != "running":
                raise Conflict(f"A/B test {before.name!r} is stopped", test=before.id)
            if len(weights) != len(before.variants):
                raise ValidationError("one weight per variant", field="weights")
            row.allocation = reweight(Allocation.from_dict(row.allocation), weights).to_dict()
            rows = stat_rows(session, before.id)
            counts = [stat.count for stat in summaries(rows, before, before.metric.name)]
            period = {"weights": list(row.allocation["weights"]), "counts": counts}
            row.weight_periods = [*row.weight_periods, period]
            after = test_record(row)
            self._change(
                session,
                after,
                "reweight",
                reason,
                {"weights": list(before.weights)},
                {"weights": list(after.weights)},
                "reweighted",
            )
            return after

        return self._catalog.write(work)

    def stop(
        self,
        test: str,
        *,
        decision: str,
        reason: str | None = None,
        winner: str | None = None,
    ) -> ABTest:
        """End a running test with a recorded ``decision`` (and the ``winner``, if one)."""
        _text(decision, "decision", 64)

        def work(session: Session) -> ABTest:
            row = find_row(session, test, lock=True)
            found = test_record(row)
            if found.status != "running":
                raise Conflict(f"A/B test {found.name!r} is already stopped", test=found.id)
            if winner is not None:
                found.variant(winner)
            row.status, row.stopped_at = "stopped", utcnow()
            row.decision, row.reason, row.winner = decision, reason, winner
            stopped = test_record(row)
            after = {"status": "stopped", "decision": decision, "winner": winner}
            self._change(session, stopped, "stop", reason, {"status": "running"}, after, "stopped")
            return stopped

        return self._catalog.write(work)

    def promote(
        self, test: str, variant: str | None = None, *, reason: str | None = None
    ) -> ABTest:
        """Move the ``production`` alias of the winner's model to its version, through the
        registry (governance's production guard may refuse: ``ApprovalRequired``), and stop
        the test if it runs; the audit entry links the result. ``variant`` defaults to the
        winner the results name (``ValidationError`` when they name none)."""
        found = self.get(test)
        outcome: ABTestResults | None = None
        try:
            outcome = self.results(found.id)
        except ValidationError:
            if variant is None:
                raise
        if variant is None:
            if outcome is None or outcome.winner is None:
                advice = "" if outcome is None else f" ({outcome.recommendation})"
                raise ValidationError(
                    f"A/B test {found.name!r} has no winner yet{advice}; name the variant",
                    field="variant",
                )
            variant = outcome.winner
        chosen = found.variant(variant)

        def work(session: Session) -> ABTest:
            # the alias moves and the test records it in one transaction: both or neither
            self._models.set_alias_in(
                session,
                chosen.model,
                "production",
                chosen.version,
                reason=reason or f"A/B test {found.name}",
            )
            row = find_row(session, found.id, lock=True)
            before = {"status": row.status, "winner": row.winner}
            if row.status == "running":
                row.status, row.stopped_at = "stopped", utcnow()
            row.decision, row.winner = "promoted", chosen.name
            row.reason = reason if reason is not None else row.reason
            promoted = test_record(row)
            after: dict[str, Any] = {
                "status": row.status,
                "decision": "promoted",
                "winner": chosen.name,
                "model": chosen.model,
                "version": chosen.version,
                "alias": "production",
                "results": None if outcome is None else _summary(outcome, chosen.name),
            }
            self._change(session, promoted, "promote", reason, before, after, "promoted")
            return promoted

        return self._catalog.write(work)

    # -- reads -----------------------------------------------------------------------

    def get(self, test: str) -> ABTest:
        """The test with this id, else the running (or latest) test of this name."""
        with self._catalog.session() as session:
            return test_record(find_row(session, test))

    def list(self, *, status: str | None = None) -> builtins.list[ABTest]:
        """Tests, newest first; only ``running`` or ``stopped`` ones where given."""
        if status is not None and status not in ("running", "stopped"):
            raise ValidationError(
                f"status must be running or stopped, not {status!r}", field="status"
            )
        query = select(ABTestRow).order_by(ABTestRow.started_at.desc(), ABTestRow.id)
        if status is not None:
            query = query.where(ABTestRow.status == status)
        with self._catalog.session() as session:
            return [test_record(row) for row in session.scalars(query)]

    def assign(self, test: str, unit_id: str) -> str:
        """The variant (its name) of ``unit_id``: the same on every call, and after a
        reweight wherever the new weights allow."""
        if not isinstance(unit_id, str | int) or isinstance(unit_id, bool) or unit_id == "":
            raise ValidationError("a unit id is a non-empty string", field="unit_id")
        with self._catalog.session() as session:
            row = find_row(session, test)
            found = test_record(row)
            index = assign(Allocation.from_dict(row.allocation), found.salt, unit_id)
        if index < 0:  # pragma: no cover - tests cover every bucket
            raise ValidationError(f"unit {unit_id!r} is outside test {found.name!r}")
        return found.variants[index].name

    def allocation(self, test: str) -> tuple[ABTest, Allocation]:
        """The test and its bucket allocation as they stand: what an inference server
        needs to assign units itself (``weightbase serve abtest:NAME``), read in one go."""
        with self._catalog.session() as session:
            row = find_row(session, test)
            return test_record(row), Allocation.from_dict(row.allocation)

    def results(self, test: str) -> ABTestResults:
        """The primary metric's results (``ValidationError`` until each variant has enough
        outcomes), the guardrails', the always-valid p-values, the winner and the advice."""
        with self._catalog.session() as session:
            row = find_row(session, test)
            found = test_record(row)
            rows = stat_rows(session, found.id)
            stored = {
                key: stat.min_p_value for key, stat in rows.items() if key[1] == found.metric.name
            }
            sums = {metric.name: summaries(rows, found, metric.name) for metric in found.metrics}
            periods = list(row.weight_periods)
        primary_sums = sums[found.metric.name]
        expected = expected_shares(periods, [item.count for item in primary_sums])
        primary = analyze(
            primary_sums,
            settings_of(found.metric),
            weights=expected,
            planned_units=found.planned_units,
        )
        guards = []
        for metric in found.guardrails:
            try:
                guard = analyze(sums[metric.name], settings_of(metric), weights=expected)
            except ValidationError:
                guard = None  # not enough outcomes of this guardrail yet
            guards.append(GuardrailResult(metric, guard))
        always_valid = []
        for index, comparison in enumerate(primary.comparisons, start=1):
            earlier = stored.get((index, found.metric.name))
            now = comparison.sequential.p_value
            always_valid.append(now if earlier is None else min(earlier, now))
        winner, advice = recommend(found.metric, primary, guards, always_valid, found.planned_units)
        return ABTestResults(
            test_id=found.id,
            name=found.name,
            results=primary,
            guardrails=tuple(guards),
            always_valid_p=tuple(always_valid),
            winner=winner,
            recommendation=advice,
        )

    # -- helpers ---------------------------------------------------------------------

    def _model_variant(self, ref: str) -> ABVariant | None:
        """The variant of a model ref (``None``: a deployment id, resolved in the write)."""
        if not isinstance(ref, str) or not ref:
            raise ValidationError(f"a variant is a model ref or deployment id, not {ref!r}")
        if "@" not in ref:
            return None
        found = self._models.version(ref)
        return ABVariant(ref, found.model, found.version)

    def _look(
        self, rows: Mapping[tuple[int, str], ABTestStatRow], test: ABTest, metric_name: str
    ) -> None:
        """One look of the sequential test: keep each treatment's lowest always-valid p."""
        metric = next(item for item in test.metrics if item.name == metric_name)
        sums = summaries(rows, test, metric_name)
        control = sums[0]
        for index, treatment in enumerate(sums[1:], start=1):
            p_value = _sequential_p(control, treatment, metric)
            stat = rows.get((index, metric_name))
            if p_value is None or stat is None:
                continue
            earlier = stat.min_p_value
            stat.min_p_value = p_value if earlier is None else min(earlier, p_value)
            stat.looks += 1

    def _change(
        self,
        session: Session,
        test: ABTest,
        action: str,
        reason: str | None,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any],
        event: str,
    ) -> None:
        payload = {"test": test.id, "name": test.name, **after}
        if reason:
            payload["reason"] = reason
        self._recorder.record(
            session,
            f"abtest.{action}",
            "ab_test",
            test.id,
            before=before,
            after=after,
            reason=reason,
            event=f"abtest_{event}",
            payload=payload,
        )


def _stat_row(test_id: str, variant: int, metric: str) -> ABTestStatRow:
    return ABTestStatRow(
        test_id=test_id,
        variant=variant,
        metric=metric,
        count=0,
        total=0.0,
        total_squares=0.0,
        looks=0,
        updated_at=utcnow(),
    )


def _sequential_p(
    control: VariantSummary, treatment: VariantSummary, metric: ABMetric
) -> float | None:
    try:
        return compare(control, treatment, settings_of(metric)).sequential.p_value
    except ValidationError:
        return None  # too few outcomes, or none that vary yet: no look


def _summary(outcome: ABTestResults, variant: str) -> dict[str, Any]:
    """What the audit entry keeps of the result that chose ``variant``."""
    summary: dict[str, Any] = {
        "recommendation": outcome.recommendation,
        "sample_ratio_p": outcome.results.sample_ratio.p_value,
        "units": [item.count for item in outcome.results.variants],
    }
    for comparison, p_value in zip(
        outcome.results.comparisons, outcome.always_valid_p, strict=True
    ):
        if comparison.variant == variant:
            summary["effect"] = comparison.absolute.estimate
            summary["relative_effect"] = (
                None if comparison.relative is None else comparison.relative.estimate
            )
            summary["always_valid_p"] = p_value
            summary["chance_to_beat_control"] = comparison.bayesian.chance_to_beat_control
    return summary
