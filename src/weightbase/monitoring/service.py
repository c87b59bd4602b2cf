"""``wb.monitoring``: deployed models watched in production.

    recorder = wb.monitoring.recorder(rate=0.1)         # the server calls observe() per request
    wb.monitoring.samples("digits@1.0.0", since=an_hour_ago)
    wb.monitoring.label("req-42", 7)                     # the truth, arrived late
    wb.monitoring.performance(deployment.id).degraded    # accuracy per window vs registered
    wb.monitoring.check(deployment.id)                   # opens / auto-resolves alerts
    wb.monitoring.health(deployment.id).recommendation   # "rollback", "retrain" or "none"

Request rate, latency percentiles and error rate are the inference server's windows
(``wb.inference``); samples of requests, late labels and alerts are this module's tables.
A check reads the deployment's ``monitoring.alert_thresholds`` (:data:`RULES`): an alert
opens (a row, an audit entry and a ``monitoring_alert_opened`` event, which webhooks
deliver) when a value is above its threshold and no alert of that rule is unresolved, and
resolves on its own once a later check finds the value back under it.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weightbase.catalog.schema import (
    DeploymentRow,
    ModelRow,
    MonitoringAlertRow,
    MonitoringSampleRow,
    utcnow,
)
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.monitoring.alerts import (
    DEFAULT_THRESHOLDS,
    RULES,
    alert_record,
    drift_share_of,
    find_alert,
    open_alert,
    unresolved,
)
from weightbase.monitoring.health import previous_version, score_health
from weightbase.monitoring.performance import KINDS, Kind, kind_of, prediction_of, score_windows
from weightbase.monitoring.recorder import SampleRecorder
from weightbase.monitoring.records import (
    Alert,
    CheckResult,
    Health,
    LabelReceipt,
    ObservedRequest,
    Performance,
    SamplePage,
)
from weightbase.monitoring.samples import (
    MAX_LIMIT,
    MAX_SAMPLES,
    LabelLike,
    Target,
    deployment_of,
    find_target,
    input_columns,
    parse_labels,
    prune_samples,
    read_samples,
    store_labels,
    write_samples,
)
from weightbase.monitoring.values import moment, positional, positive, whole

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder
    from weightbase.monitoring.drift_records import DriftReport
    from weightbase.monitoring.reference import DriftAnalyzer
    from weightbase.registry import ModelRegistry
    from weightbase.serving.inference_log import InferenceLog
    from weightbase.serving.records import Deployment
    from weightbase.serving.service import Deployments

__all__ = ["RULES", "Monitoring"]

#: The most labeled samples one performance read scores.
MAX_SCORED = 100_000
_STATUSES = ("open", "acknowledged", "resolved")


class Monitoring:
    """Samples of requests, late labels and performance, alerts, and health per deployment."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        recorder: ChangeRecorder,
        models: ModelRegistry,
        deployments: Deployments,
        inference: InferenceLog,
        drift: DriftAnalyzer | None = None,
    ) -> None:
        self._catalog = catalog
        self._drift = drift
        self._recorder = recorder
        self._models = models
        self._deployments = deployments
        self._inference = inference

    # -- samples ---------------------------------------------------------------------

    def recorder(
        self,
        *,
        rate: float = 0.1,
        max_bytes: int = 64 * 1024,
        max_per_window: int = 1000,
        flush_interval_s: float = 5.0,
    ) -> SampleRecorder:
        """A :class:`SampleRecorder` writing here (start it, or call ``flush`` yourself)."""
        return SampleRecorder(
            self,
            rate=rate,
            max_bytes=max_bytes,
            max_per_window=max_per_window,
            flush_interval_s=flush_interval_s,
        )

    def record_samples(self, samples: Sequence[ObservedRequest]) -> int:
        """Store sampled requests, all or none; each names a ``model@version`` or a
        deployment id that exists (``NotFound`` otherwise). How many were stored."""
        if isinstance(samples, str | bytes) or not isinstance(samples, Sequence):
            raise ValidationError("samples are a list", field="samples")
        if len(samples) > MAX_SAMPLES:
            raise ValidationError(f"at most {MAX_SAMPLES} samples a batch", field="samples")
        for sample in samples:
            if not isinstance(sample, ObservedRequest):
                raise ValidationError("each sample is an ObservedRequest", field="samples")
        if not samples:
            return 0

        def work(session: Session) -> int:
            targets = {item.target for item in samples}
            resolve = {target: find_target(session, target) for target in targets}
            return write_samples(session, samples, resolve)

        return self._catalog.write(work)

    def samples(
        self,
        target: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> SamplePage:
        """Sampled requests of ``target`` (a model, ``model@version`` or a deployment id) in
        ``[since, until)``, oldest first, with their labels; ``cursor`` is a page's ``next``."""
        limit = whole(limit, "limit", 1, MAX_LIMIT)
        since, until = moment(since, "since"), moment(until, "until")
        after = None
        if cursor is not None:
            if not isinstance(cursor, str) or not cursor.isdigit():
                raise ValidationError(f"not a samples cursor: {cursor!r}", field="cursor")
            after = int(cursor)
        with self._catalog.session() as session:
            found = find_target(session, target)
            items = read_samples(
                session, found, since=since, until=until, after_id=after, limit=limit
            )
        following = str(items[-1].id) if len(items) == limit else None
        return SamplePage(tuple(items), following)

    def inputs(
        self,
        target: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = MAX_LIMIT,
    ) -> dict[str, builtins.list[Any]]:
        """The sampled inputs of ``target`` in ``[since, until)`` as columns, the current
        window of a drift report (``DriftAnalyzer.report(ref, wb.monitoring.inputs(…))``).

        See :func:`~weightbase.monitoring.samples.input_columns` for how inputs become
        columns; the predictions are a ``prediction`` column where every sample has one."""
        limit = whole(limit, "limit", 1, MAX_LIMIT)
        since, until = moment(since, "since"), moment(until, "until")
        with self._catalog.session() as session:
            found = find_target(session, target)
            items = read_samples(
                session, found, since=since, until=until, after_id=None, limit=limit
            )
        return input_columns(items)

    def drift(
        self,
        target: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        reference: Any = None,
        limit: int = MAX_LIMIT,
        **options: Any,
    ) -> DriftReport:
        """Drift of ``target``'s sampled inputs in ``[since, until)`` (and of its predictions)
        against ``reference``; by default, against the training split of the dataset
        lineage says its version was ``trained_on`` (:class:`DriftAnalyzer`). ``options``
        go to :func:`~weightbase.monitoring.drift.drift_report`."""
        if self._drift is None:
            raise ValidationError("this workspace measures no drift: it has no lineage")
        current = self.inputs(target, since=since, until=until, limit=limit)
        if not current:
            raise NotFound(f"no samples of {target} in that window: nothing to compare")
        with self._catalog.session() as session:
            found = self._version_target(session, find_target(session, target))
        if reference is None:
            current = positional(current)  # a tensor dataset's features are named by position
            if "prediction" in current:  # against the training targets
                options.setdefault("prediction", "prediction")
        return self._drift.report(f"{found.model}@{found.version}", current, reference, **options)

    def prune(self, before: datetime, *, target: str | None = None) -> int:
        """Delete the samples taken before ``before`` (of ``target`` only, where given) and,
        without a target, the labels that arrived before it; how many samples went.

        Samples are kept until pruned: run this on a schedule to bound the table."""
        cutoff = moment(before, "before")
        if cutoff is None:
            raise ValidationError("prune needs a time before which to delete", field="before")

        def work(session: Session) -> int:
            found = None if target is None else find_target(session, target)
            return prune_samples(session, cutoff, found)

        return self._catalog.write(work)

    # -- labels and performance ------------------------------------------------------

    def label(self, request_id: str, label: Any) -> LabelReceipt:
        """The true outcome of request ``request_id``; a later label replaces it."""
        return self.labels([(request_id, label)])

    def labels(self, labels: Sequence[LabelLike]) -> LabelReceipt:
        """Store ``(request id, label)`` pairs (or ``{"request_id", "label"}``), all or
        none; the receipt counts those stored and those that met a sampled request."""
        parsed = parse_labels(labels)
        if not parsed:
            return LabelReceipt(0, 0)

        def work(session: Session) -> LabelReceipt:
            return LabelReceipt(len(parsed), store_labels(session, parsed))

        return self._catalog.write(work)

    def performance(
        self,
        target: str,
        *,
        window_s: float = 3600.0,
        kind: str = "auto",
        threshold: float | None = None,
        min_labels: int = 10,
        since: datetime | None = None,
    ) -> Performance:
        """Accuracy (or MAE and RMSE) of ``target``'s version on its labeled samples, per
        ``window_s`` window, against the version's registered metric; a window with at
        least ``min_labels`` whose drop passes ``threshold`` (the deployment's
        ``accuracy_drop``, else 0.05) is ``degraded``. A bare model name means the version
        of its latest sample."""
        window_s = positive(window_s, "window_s")
        if kind not in KINDS:
            raise ValidationError(f"kind must be one of {', '.join(KINDS)}", field="kind")
        min_labels = whole(min_labels, "min_labels", 1, 1_000_000)
        since = moment(since, "since")
        with self._catalog.session() as session:
            found = self._version_target(session, find_target(session, target))
            config_threshold = None
            if found.deployment_id is not None:
                deployment = deployment_of(session, found.deployment_id)
                config_threshold = deployment.config.monitoring.alert_thresholds.get(
                    "accuracy_drop"
                )
            scored = read_samples(
                session,
                found,
                since=since,
                until=None,
                after_id=None,
                limit=MAX_SCORED,
                labeled=True,
            )
        if threshold is None:
            threshold = (
                config_threshold
                if config_threshold is not None
                else DEFAULT_THRESHOLDS["accuracy_drop"]
            )
        threshold = float(threshold)
        if not math.isfinite(threshold) or threshold < 0:
            raise ValidationError("threshold must be 0 or more", field="threshold")
        assert found.version is not None
        metrics = self._models.version(f"{found.model}@{found.version}").metrics
        pairs = [(prediction_of(item.outputs), item.label) for item in scored]
        chosen: Kind = kind_of(metrics, pairs) if kind == "auto" else kind  # type: ignore[assignment]
        metric, baseline, windows = score_windows(
            scored,
            kind=chosen,
            metrics=metrics,
            window_s=window_s,
            threshold=threshold,
            min_labels=min_labels,
        )
        return Performance(
            model=found.model,
            version=found.version,
            kind=chosen,
            metric=metric,
            baseline=baseline,
            threshold=threshold,
            window_s=window_s,
            windows=tuple(windows),
        )

    # -- alerts ----------------------------------------------------------------------

    def check(
        self,
        deployment: str,
        *,
        environment: str | None = None,
        drift: Any = None,
        lookback_s: float = 300.0,
        window_s: float = 3600.0,
        min_labels: int = 10,
    ) -> CheckResult:
        """Evaluate the deployment's alert thresholds on its latest figures: the inference
        windows that ended in the last ``lookback_s`` seconds, the latest labeled
        ``window_s`` window, and ``drift`` (a share, or a drift report); open an alert per
        rule crossed that has none unresolved, resolve those back under. A rule with no
        figure (no traffic, no labels, no drift given) is left as it is."""
        found = self._deployment(deployment, environment)
        measured = self._measure(found, drift, lookback_s, window_s, min_labels)
        configured = found.config.monitoring.alert_thresholds
        thresholds = {rule: float(configured[rule]) for rule in RULES if rule in configured}

        def work(session: Session) -> CheckResult:
            existing = unresolved(session, found.id)
            opened, resolved = [], []
            for rule, threshold in thresholds.items():
                value = measured.get(rule)
                if value is None:
                    continue
                row = existing.get(rule)
                if value > threshold and row is None:
                    row = existing[rule] = open_alert(session, found, rule, value, threshold)
                    session.flush()
                    alert = alert_record(row, found.model, found.environment)
                    self._change(session, alert, "open", None, None, "opened")
                    opened.append(alert)
                elif value > threshold and row is not None:
                    row.value, row.checks = value, row.checks + 1
                elif row is not None:
                    before = {"status": row.status}
                    self._resolve_row(row, "auto")
                    del existing[rule]
                    alert = alert_record(row, found.model, found.environment)
                    reason = f"{rule} {value:.4g} is back under {threshold:.4g}"
                    self._change(session, alert, "resolve", reason, before, "resolved")
                    resolved.append(alert)
            still = [alert_record(row, found.model, found.environment) for row in existing.values()]
            return CheckResult(
                deployment_id=found.id,
                measured=measured,
                thresholds=thresholds,
                opened=tuple(opened),
                resolved=tuple(resolved),
                open=tuple(sorted(still, key=lambda alert: alert.opened)),
            )

        return self._catalog.write(work)

    def alerts(
        self,
        *,
        deployment: str | None = None,
        environment: str | None = None,
        status: str | None = None,
        rule: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Alert]:
        """Alerts, newest first: of one deployment (id, or model name and environment), in
        one ``status`` (open, acknowledged, resolved), of one ``rule``, where given."""
        limit = whole(limit, "limit", 1, MAX_LIMIT)
        if status is not None and status not in _STATUSES:
            raise ValidationError(f"status must be one of {', '.join(_STATUSES)}", field="status")
        if rule is not None and rule not in RULES:
            raise ValidationError(f"rule must be one of {', '.join(RULES)}", field="rule")
        deployment_id = None
        if deployment is not None:
            deployment_id = self._deployment(deployment, environment).id
        query = (
            select(MonitoringAlertRow, ModelRow.name, DeploymentRow.environment)
            .join(DeploymentRow, DeploymentRow.id == MonitoringAlertRow.deployment_id)
            .join(ModelRow, ModelRow.id == DeploymentRow.model_id)
            .order_by(MonitoringAlertRow.opened_at.desc(), MonitoringAlertRow.id)
            .limit(limit)
        )
        if deployment_id is not None:
            query = query.where(MonitoringAlertRow.deployment_id == deployment_id)
        if status is not None:
            query = query.where(MonitoringAlertRow.status == status)
        if rule is not None:
            query = query.where(MonitoringAlertRow.rule == rule)
        with self._catalog.session() as session:
            return [alert_record(row, model, env) for row, model, env in session.execute(query)]

    def alert(self, alert_id: str) -> Alert:
        """The alert with this id."""
        with self._catalog.session() as session:
            row = find_alert(session, alert_id)
            found = deployment_of(session, row.deployment_id)
            return alert_record(row, found.model, found.environment)

    def acknowledge(self, alert_id: str, *, reason: str | None = None) -> Alert:
        """Someone is on it: an open alert becomes acknowledged (``Conflict`` otherwise)."""

        def work(session: Session) -> Alert:
            row = find_alert(session, alert_id, lock=True)
            if row.status != "open":
                raise Conflict(f"alert {row.id} is {row.status}, not open", alert=row.id)
            row.status, row.acknowledged_at = "acknowledged", utcnow()
            row.acknowledged_by = self._recorder.actor
            found = deployment_of(session, row.deployment_id)
            alert = alert_record(row, found.model, found.environment)
            self._change(session, alert, "acknowledge", reason, {"status": "open"}, "acknowledged")
            return alert

        return self._catalog.write(work)

    def resolve(self, alert_id: str, *, reason: str | None = None) -> Alert:
        """Close an open or acknowledged alert by hand (``Conflict`` if already resolved)."""

        def work(session: Session) -> Alert:
            row = find_alert(session, alert_id, lock=True)
            if row.status == "resolved":
                raise Conflict(f"alert {row.id} is already resolved", alert=row.id)
            before = {"status": row.status}
            self._resolve_row(row, "manual")
            found = deployment_of(session, row.deployment_id)
            alert = alert_record(row, found.model, found.environment)
            self._change(session, alert, "resolve", reason, before, "resolved")
            return alert

        return self._catalog.write(work)

    # -- health ----------------------------------------------------------------------

    def health(
        self,
        deployment: str,
        *,
        environment: str | None = None,
        drift: Any = None,
        lookback_s: float = 300.0,
        window_s: float = 3600.0,
        min_labels: int = 10,
    ) -> Health:
        """The deployment's health score (0 to 100, see :mod:`weightbase.monitoring.health`)
        from the figures a check reads, its unresolved alerts and, without ``drift``, the
        value of its unresolved drift alert; and what to do, with the version to roll
        back to where that is the advice."""
        found = self._deployment(deployment, environment)
        measured = self._measure(found, drift, lookback_s, window_s, min_labels)
        open_alerts = self.alerts(deployment=found.id, limit=MAX_LIMIT)
        unresolved_alerts = [alert for alert in open_alerts if alert.status != "resolved"]
        if measured.get("drift_share") is None:
            drift_alert = next((a for a in unresolved_alerts if a.rule == "drift_share"), None)
            if drift_alert is not None:
                measured["drift_share"] = drift_alert.value
        history = self._deployments.history(found.model, environment=found.environment)
        rollback_to = previous_version(found, history, self._models.history(found.model))
        return score_health(
            found,
            measured,
            found.config.monitoring.alert_thresholds,
            len(unresolved_alerts),
            rollback_to,
        )

    # -- helpers ---------------------------------------------------------------------

    def _deployment(self, deployment: str, environment: str | None) -> Deployment:
        """A deployment by id, else ``deployment`` is a model name (in ``environment``)."""
        if not isinstance(deployment, str) or not deployment:
            raise ValidationError(
                f"name a deployment id or a model, not {deployment!r}", field="deployment"
            )
        with self._catalog.session() as session:
            try:
                return deployment_of(session, deployment)
            except NotFound:
                pass
        return self._deployments.status(deployment, environment=environment)

    def _version_target(self, session: Session, target: Target) -> Target:
        """``target`` narrowed to one version: that of its latest sample for a model."""
        if target.version_id is not None:
            return target
        latest = session.scalar(
            select(MonitoringSampleRow.version_id)
            .where(MonitoringSampleRow.model_id == target.model_id)
            .order_by(MonitoringSampleRow.id.desc())
            .limit(1)
        )
        if latest is None:
            raise NotFound(f"no samples of {target.model}", model=target.model)
        version = self._models.versions(target.model)
        named = next((item.version for item in version if item.id == latest), None)
        if named is None:
            raise NotFound(f"the sampled version of {target.model} is gone", model=target.model)
        return Target(target.model, target.model_id, named, latest)

    def _measure(
        self,
        deployment: Deployment,
        drift: Any,
        lookback_s: float,
        window_s: float,
        min_labels: int,
    ) -> dict[str, float | None]:
        """Each rule's figure for ``deployment`` now; ``None`` where there is none."""
        lookback_s = positive(lookback_s, "lookback_s")
        measured: dict[str, float | None] = dict.fromkeys(RULES)
        since = utcnow() - timedelta(seconds=lookback_s)
        windows = [
            window
            for window in self._inference.metrics(
                deployment.model, environment=None, since=since, limit=MAX_LIMIT
            )
            if window.deployment_id == deployment.id
            or (window.deployment_id is None and window.version == deployment.version)
        ]
        requests = sum(window.requests for window in windows)
        if requests:
            measured["error_rate"] = sum(window.errors for window in windows) / requests
        for rule, name in (
            ("p50_latency_ms", "latency_p50_ms"),
            ("p95_latency_ms", "latency_p95_ms"),
            ("p99_latency_ms", "latency_p99_ms"),
        ):
            values = [getattr(w, name) for w in windows if getattr(w, name) is not None]
            measured[rule] = max(values) if values else None
        try:
            performance = self.performance(deployment.id, window_s=window_s, min_labels=min_labels)
        except NotFound:
            performance = None
        if performance is not None:
            judged = [w for w in performance.windows if w.count >= min_labels]
            if judged and judged[-1].drop is not None:
                measured["accuracy_drop"] = judged[-1].drop
        measured["drift_share"] = drift_share_of(drift)
        return measured

    def _resolve_row(self, row: MonitoringAlertRow, resolution: str) -> None:
        row.status, row.resolved_at = "resolved", utcnow()
        row.resolved_by, row.resolution = self._recorder.actor, resolution

    def _change(
        self,
        session: Session,
        alert: Alert,
        action: str,
        reason: str | None,
        before: dict[str, Any] | None,
        event: str,
    ) -> None:
        payload = alert.to_dict()
        if reason:
            payload["reason"] = reason
        self._recorder.record(
            session,
            f"alert.{action}",
            "monitoring_alert",
            alert.id,
            before=before,
            after={"status": alert.status, "rule": alert.rule, "value": alert.value},
            reason=reason,
            event=f"monitoring_alert_{event}",
            payload=payload,
        )
