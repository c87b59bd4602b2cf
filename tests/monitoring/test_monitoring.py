"""``wb.monitoring``: sampled requests, late labels and performance, alerts and health.

Every test runs embedded and through a live server (``remote_or_embedded``), on SQLite and
PostgreSQL, unless marked ``embedded_only``.
"""

from __future__ import annotations

import inspect
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import remote_variants
from tests.remote_support import LiveServer

import weightbase
from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.monitoring.records import ObservedRequest
from weightbase.monitoring.service import Monitoring
from weightbase.serving.inference_records import InferenceWindow
from weightbase.serving.records import Deployment
from weightbase.workspace import Workspace

THRESHOLDS = {"error_rate": 0.05, "p95_latency_ms": 100.0, "accuracy_drop": 0.05}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def wb(remote_or_embedded: Workspace) -> Workspace:
    """``digits`` at 0.1.0 and 0.2.0 (registered accuracy 0.9 and 0.95)."""
    rng = np.random.default_rng(0)
    for accuracy in (0.9, 0.95):
        found = remote_or_embedded.models.push(
            "digits", {"w": rng.standard_normal(4).astype(np.float32)}
        )
        remote_or_embedded.models.log_metrics(found, {"accuracy": accuracy})
    return remote_or_embedded


def _deploy(wb: Workspace, thresholds: dict[str, float] | None = None) -> Deployment:
    """0.1.0 to staging, then 0.2.0 in its place (so 0.1.0 is what to roll back to)."""
    config = {
        "environment": "staging",
        "monitoring": {"alertThresholds": THRESHOLDS if thresholds is None else thresholds},
    }
    wb.deployments.deploy("digits@0.1.0", config=config)
    return wb.deployments.deploy("digits@0.2.0", config=config)


def _window(deployment: Deployment, requests: int, errors: int, p95: float) -> InferenceWindow:
    now = datetime.now(UTC)
    return InferenceWindow(
        model="digits",
        version=deployment.version,
        served_as="digits",
        server_id="server-1",
        started=now - timedelta(seconds=30),
        ended=now,
        requests=requests,
        errors=errors,
        latency_p95_ms=p95,
        deployment_id=deployment.id,
    )


def _serve(wb: Workspace, target: str, count: int, *, wrong_from: int, start: int = 0) -> None:
    """``count`` requests, all sampled; predictions are right for ``i < wrong_from``."""
    recorder = wb.monitoring.recorder(rate=1.0)
    for i in range(start, start + count):
        recorder.observe(target, f"req-{i}", {"pixels": [i, i + 1]}, {"label": i % 10}, 2.5)
    assert recorder.flush() == count
    wb.monitoring.labels(
        [(f"req-{i}", i % 10 if i < wrong_from else -1) for i in range(start, start + count)]
    )


def test_a_recorder_keeps_a_deterministic_share_by_request_id(wb: Workspace) -> None:
    deployment = _deploy(wb)
    ids = [f"request-{i}" for i in range(400)]
    first, second = wb.monitoring.recorder(rate=0.25), wb.monitoring.recorder(rate=0.25)
    kept = [first.observe(deployment.id, rid, {"x": 1}, {"label": 1}, 1.0) for rid in ids]
    # the same requests on every replica, and the rule a label can rely on
    assert kept == [second.keeps(rid) for rid in ids]
    assert kept == [zlib.crc32(rid.encode()) < 0.25 * 2**32 for rid in ids]
    assert 0.15 < sum(kept) / len(ids) < 0.35
    assert first.flush() == sum(kept)
    assert first.flush() == 0  # nothing left
    page = wb.monitoring.samples(deployment.id, limit=10_000)
    assert sorted(s.request_id for s in page.items) == sorted(
        rid for rid, k in zip(ids, kept, strict=True) if k
    )
    assert page.next is None
    assert {s.ref for s in page.items} == {"digits@0.2.0"}
    assert all(s.deployment_id == deployment.id for s in page.items)
    nothing = wb.monitoring.recorder(rate=0.0)
    assert not any(nothing.observe(deployment.id, rid, 1, 1, 1.0) for rid in ids)


def test_samples_are_size_bounded_capped_and_paged_by_time(wb: Workspace) -> None:
    _deploy(wb)
    recorder = wb.monitoring.recorder(rate=1.0, max_bytes=64, max_per_window=5)
    big = {"text": "x" * 100}
    for i in range(8):
        recorder.observe("digits@0.1.0", f"r{i}", big if i == 0 else {"i": i}, [i], 1.0 + i)
    assert (recorder.kept, recorder.dropped) == (5, 3)
    assert recorder.flush() == 5
    first = wb.monitoring.samples("digits@0.1.0", limit=2)
    assert [s.request_id for s in first.items] == ["r0", "r1"]
    assert first.items[0].inputs is None
    assert first.items[0].truncated
    assert first.items[0].outputs == [0]
    assert first.items[1].inputs == {"i": 1}
    assert not first.items[1].truncated
    assert first.next is not None
    rest = wb.monitoring.samples("digits@0.1.0", limit=2, cursor=first.next)
    assert [s.request_id for s in rest.items] == ["r2", "r3"]
    # by model name: every version's samples; by another version: none
    assert len(wb.monitoring.samples("digits").items) == 5
    assert wb.monitoring.samples("digits@0.2.0").items == ()
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert wb.monitoring.samples("digits", since=later).items == ()
    assert len(wb.monitoring.samples("digits", until=later).items) == 5


def test_old_samples_and_labels_are_pruned(wb: Workspace) -> None:
    deployment = _deploy(wb)
    then = datetime.now(UTC) - timedelta(days=2)
    old = [ObservedRequest("digits@0.1.0", f"old-{i}", then, 1.0) for i in range(3)]
    old.append(ObservedRequest(deployment.id, "old-served", then, 1.0))
    assert wb.monitoring.record_samples(old) == 4
    _serve(wb, deployment.id, 2, wrong_from=2)
    day_ago = datetime.now(UTC) - timedelta(days=1)
    # of one version only: the other's old sample stays
    assert wb.monitoring.prune(day_ago, target="digits@0.1.0") == 3
    assert [s.request_id for s in wb.monitoring.samples("digits").items] == [
        "old-served",
        "req-0",
        "req-1",
    ]
    assert wb.monitoring.prune(day_ago) == 1
    assert [s.request_id for s in wb.monitoring.samples("digits").items] == ["req-0", "req-1"]
    assert wb.monitoring.samples(deployment.id).items[0].label == 0  # new labels stay
    assert wb.monitoring.prune(day_ago) == 0
    with pytest.raises(ValidationError):
        wb.monitoring.prune(datetime(2026, 1, 1))  # no time zone


def test_late_labels_give_accuracy_per_window_against_the_registered_metric(
    wb: Workspace,
) -> None:
    deployment = _deploy(wb)
    _serve(wb, deployment.id, 40, wrong_from=30)  # 75% right against a registered 95%
    found = wb.monitoring.performance(deployment.id, min_labels=10)
    assert (found.model, found.version, found.kind) == ("digits", "0.2.0", "classification")
    assert found.metric == "accuracy"
    assert found.baseline == pytest.approx(0.95)
    [window] = found.windows
    assert window.count == 40
    assert window.accuracy == pytest.approx(30 / 40)
    assert window.drop == pytest.approx(0.95 - 30 / 40)
    assert window.degraded
    assert found.degraded
    assert found.threshold == THRESHOLDS["accuracy_drop"]
    # a looser threshold, and too few labels to judge, are not degraded
    assert not wb.monitoring.performance(deployment.id, threshold=0.5).degraded
    assert not wb.monitoring.performance(deployment.id, min_labels=41).degraded
    # a label that comes again replaces the first
    receipt = wb.monitoring.labels([(f"req-{i}", i % 10) for i in range(30, 40)])
    assert (receipt.stored, receipt.matched) == (10, 10)
    healed = wb.monitoring.performance(deployment.id)
    assert healed.windows[0].accuracy == 1.0
    assert not healed.degraded


def test_regression_is_scored_by_mae_and_rmse(wb: Workspace) -> None:
    wb.models.log_metrics("digits@0.1.0", {"mae": 0.5})
    rng = np.random.default_rng(3)
    predicted = rng.normal(10, 2, size=30)
    truth = predicted + rng.normal(0, 1, size=30)
    recorder = wb.monitoring.recorder(rate=1.0)
    for i, value in enumerate(predicted):
        recorder.observe("digits@0.1.0", f"y{i}", {"x": i}, {"prediction": float(value)}, 1.0)
    recorder.flush()
    receipt = wb.monitoring.labels(
        [{"request_id": f"y{i}", "label": float(t)} for i, t in enumerate(truth)]
    )
    assert receipt.matched == 30
    found = wb.monitoring.performance("digits@0.1.0", kind="regression", min_labels=5)
    errors = predicted - truth
    [window] = found.windows
    assert window.mae == pytest.approx(float(np.mean(np.abs(errors))), rel=1e-12)
    assert window.rmse == pytest.approx(float(np.sqrt(np.mean(errors**2))), rel=1e-12)
    assert found.metric == "mae"
    assert found.baseline == 0.5
    assert window.drop == pytest.approx((window.mae - 0.5) / 0.5, rel=1e-12)


def test_check_opens_alerts_once_and_resolves_them_when_back_under(wb: Workspace) -> None:
    deployment = _deploy(wb)
    wb.inference.record([_window(deployment, 100, 10, 150.0)])
    first = wb.monitoring.check(deployment.id)
    assert first.measured["error_rate"] == pytest.approx(0.1)
    assert first.measured["p95_latency_ms"] == 150.0
    assert first.measured["accuracy_drop"] is None  # no labels yet: left alone
    assert sorted(a.rule for a in first.opened) == ["error_rate", "p95_latency_ms"]
    assert all(a.status == "open" and a.model == "digits" for a in first.opened)
    assert first.thresholds == THRESHOLDS
    again = wb.monitoring.check("digits", environment="staging")
    assert again.opened == ()
    assert len(again.open) == 2
    assert {a.checks for a in again.open} == {2}
    # a lot of clean traffic later the error rate is back under; latency is still high
    wb.inference.record([_window(deployment, 10_000, 0, 150.0)])
    healed = wb.monitoring.check(deployment.id)
    assert [a.rule for a in healed.resolved] == ["error_rate"]
    assert healed.resolved[0].status == "resolved"
    assert healed.resolved[0].resolution == "auto"
    assert [a.rule for a in healed.open] == ["p95_latency_ms"]
    assert [a.rule for a in wb.monitoring.alerts(deployment=deployment.id, status="open")] == [
        "p95_latency_ms"
    ]
    assert len(wb.monitoring.alerts(status="resolved", rule="error_rate")) == 1


def test_alerts_are_acknowledged_then_resolved_and_reopen_as_new(wb: Workspace) -> None:
    deployment = _deploy(wb, {"error_rate": 0.05})
    wb.inference.record([_window(deployment, 100, 50, 10.0)])
    [alert] = wb.monitoring.check(deployment.id).opened
    acknowledged = wb.monitoring.acknowledge(alert.id, reason="looking")
    assert acknowledged.status == "acknowledged"
    assert acknowledged.acknowledged is not None
    assert acknowledged.acknowledged_by
    with pytest.raises(Conflict, match="not open"):
        wb.monitoring.acknowledge(alert.id)
    resolved = wb.monitoring.resolve(alert.id, reason="fixed the bad replica")
    assert (resolved.status, resolved.resolution) == ("resolved", "manual")
    with pytest.raises(Conflict, match="already resolved"):
        wb.monitoring.resolve(alert.id)
    assert wb.monitoring.alert(alert.id) == resolved
    # still failing: the next check opens a new alert for the rule
    [reopened] = wb.monitoring.check(deployment.id).opened
    assert reopened.id != alert.id
    assert reopened.rule == "error_rate"


def test_health_is_100_and_advises_nothing_when_all_is_well(wb: Workspace) -> None:
    deployment = _deploy(wb)
    wb.inference.record([_window(deployment, 1000, 0, 5.0)])
    _serve(wb, deployment.id, 20, wrong_from=20)
    found = wb.monitoring.health(deployment.id)
    assert found.recommendation == "none"
    assert found.rollback_to is None
    # 5 ms of a 100 ms threshold costs 20·(0.05)² points, and nothing else costs
    assert found.score == pytest.approx(100 - 20 * 0.05**2, abs=0.01)
    assert found.measured["accuracy_drop"] == pytest.approx(0.95 - 1.0)


def test_health_advises_rollback_to_the_previous_version_on_degradation(
    wb: Workspace,
) -> None:
    deployment = _deploy(wb)
    wb.inference.record([_window(deployment, 1000, 0, 5.0)])
    _serve(wb, deployment.id, 20, wrong_from=10)  # 50% right against 95%
    wb.monitoring.check(deployment.id)
    found = wb.monitoring.health(deployment.id)
    assert found.recommendation == "rollback"
    assert found.rollback_to == "0.1.0"
    assert found.penalties["accuracy_drop"] == 25.0
    assert found.penalties["alerts"] == 5.0  # the accuracy alert the check opened
    assert found.score < 75
    assert any("accuracy_drop" in reason for reason in found.reasons)


def _drift_report(shifted: int) -> Any:
    """A real drift report over three numeric features, ``shifted`` of them moved."""
    pandas = pytest.importorskip("pandas")
    from weightbase.monitoring.drift import drift_report

    rng = np.random.default_rng(6)  # a seed whose unshifted features do not drift by chance
    names = ("a", "b", "c")
    reference = pandas.DataFrame({name: rng.normal(size=400) for name in names})
    current = pandas.DataFrame(
        {name: rng.normal(3.0 if i < shifted else 0.0, 1, size=400) for i, name in enumerate(names)}
    )
    return drift_report(reference, current)


def test_health_advises_retraining_on_drift(wb: Workspace) -> None:
    deployment = _deploy(wb, {"drift_share": 0.3})
    wb.inference.record([_window(deployment, 1000, 0, 5.0)])
    report = _drift_report(shifted=2)
    [alert] = wb.monitoring.check(deployment.id, drift=report).opened
    assert alert.rule == "drift_share"
    assert alert.value == pytest.approx(report.drifted_share)
    assert alert.value == pytest.approx(2 / 3)
    # no drift given: the open drift alert's value stands
    found = wb.monitoring.health(deployment.id)
    assert found.recommendation == "retrain"
    assert found.rollback_to is None
    assert found.measured["drift_share"] == pytest.approx(2 / 3)
    assert found.penalties["drift_share"] == 15.0
    # a report's to_dict() with per-column flags reads as its share: 1 of 4 is under 0.3
    flags = {"columns": [{"drifted": flag} for flag in (True, False, False, False)]}
    [resolved] = wb.monitoring.check(deployment.id, drift=_Report(flags)).resolved
    assert resolved.rule == "drift_share"
    assert wb.monitoring.check(deployment.id, drift=_drift_report(shifted=0)).opened == ()


def test_sampled_inputs_are_a_drift_reports_current_window(wb: Workspace) -> None:
    pytest.importorskip("pandas")
    from weightbase.monitoring.drift import drift_report

    deployment = _deploy(wb, {"drift_share": 0.3})
    rng = np.random.default_rng(11)
    recorder = wb.monitoring.recorder(rate=1.0, max_per_window=10_000)
    shifted = rng.normal(3.0, 1.0, size=300)
    steady = rng.normal(0.0, 1.0, size=300)
    for i in range(300):
        inputs = {"a": float(shifted[i]), "b": float(steady[i]), "city": "paris", "list": [1]}
        recorder.observe(deployment.id, f"f{i}", inputs, {"label": i % 2}, 1.0)
    recorder.observe(deployment.id, "no-features", None, {"label": 1}, 1.0)
    recorder.flush()
    columns = wb.monitoring.inputs(deployment.id)
    assert sorted(columns) == ["a", "b", "city", "prediction"]
    assert columns["a"] == pytest.approx(shifted.tolist())
    assert columns["prediction"] == [i % 2 for i in range(300)]
    reference = {
        "a": rng.normal(0.0, 1.0, size=300),
        "b": rng.normal(0.0, 1.0, size=300),
        "city": np.array(["paris"] * 300),
    }
    current = {key: columns[key] for key in ("a", "b", "city")}
    report = drift_report(reference, current)
    assert report.drifted_columns == ("a",)
    [alert] = wb.monitoring.check(deployment.id, drift=report).opened
    assert alert.value == pytest.approx(1 / 3)
    assert wb.monitoring.inputs("digits@0.1.0") == {}


class _Report:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def to_dict(self) -> dict[str, Any]:
        return self._data


def test_bad_input_is_refused_and_nothing_is_stored(wb: Workspace) -> None:
    deployment = _deploy(wb)
    now = datetime.now(UTC)
    good = ObservedRequest("digits@0.1.0", "ok-1", now, 1.0)
    with pytest.raises(NotFound):
        wb.monitoring.record_samples([good, ObservedRequest("digits@9.9.9", "x", now, 1.0)])
    assert wb.monitoring.samples("digits").items == ()
    with pytest.raises(ValidationError):
        ObservedRequest("digits@0.1.0", "", now, 1.0)
    with pytest.raises(ValidationError):
        ObservedRequest("digits@0.1.0", "r", now, -1.0)
    with pytest.raises(ValidationError, match="label"):
        wb.monitoring.labels([("a", 1), ("b", float("nan"))])
    with pytest.raises(ValidationError):
        wb.monitoring.labels([("a", 1), ("", 2)])
    with pytest.raises(ValidationError):
        wb.monitoring.label("a", {"nested": "object"})
    assert wb.monitoring.labels([("a", 1)]).matched == 0  # the first batches stored nothing
    with pytest.raises(NotFound):
        wb.monitoring.samples("nothing")
    with pytest.raises(ValidationError):
        wb.monitoring.samples("digits", limit=0)
    with pytest.raises(ValidationError):
        wb.monitoring.samples("digits", cursor="abc")
    with pytest.raises(ValidationError):
        wb.monitoring.performance(deployment.id, window_s=0)
    with pytest.raises(ValidationError):
        wb.monitoring.performance(deployment.id, kind="clustering")
    with pytest.raises(NotFound):
        wb.monitoring.performance("digits")  # no samples to say which version
    with pytest.raises(NotFound):
        wb.monitoring.check("nothing")
    with pytest.raises(ValidationError):
        wb.monitoring.check(deployment.id, drift=1.5)
    with pytest.raises(ValidationError):
        wb.monitoring.alerts(status="closed")
    with pytest.raises(NotFound):
        wb.monitoring.acknowledge("0" * 32)
    with pytest.raises(ValidationError):
        wb.monitoring.resolve("not-an-id")
    assert wb.monitoring.alerts() == []


@pytest.mark.embedded_only
def test_an_alert_is_an_event_the_webhooks_deliver(wb: Workspace) -> None:
    from weightbase.webhooks.delivery import Dispatcher

    deployment = _deploy(wb, {"error_rate": 0.05})
    hook, _ = wb.webhooks.subscribe(
        "http://127.0.0.1:9/hook", ["monitoring_alert_opened", "monitoring_alert_resolved"]
    )
    wb.inference.record([_window(deployment, 100, 50, 10.0)])
    [alert] = wb.monitoring.check(deployment.id).opened
    wb.monitoring.resolve(alert.id)
    events = wb.events.history("monitoring_alert_opened")
    assert [e.payload["id"] for e in events] == [alert.id]
    assert events[0].payload["rule"] == "error_rate"
    assert [e.action for e in wb.audit.entries("monitoring_alert", alert.id)] == [
        "alert.open",
        "alert.resolve",
    ]
    dispatcher = Dispatcher(wb.catalog, settle_s=0)
    try:
        dispatcher.fan_out()
    finally:
        dispatcher.stop()
    kinds = sorted(d.event_type for d in wb.webhooks.deliveries(hook.id))
    assert kinds == ["monitoring_alert_opened", "monitoring_alert_resolved"]


@pytest.mark.embedded_only
def test_a_failed_write_never_reaches_the_request_path(wb: Workspace) -> None:
    recorder = wb.monitoring.recorder(rate=1.0, flush_interval_s=0.05)
    with recorder:
        assert recorder.observe("digits@7.7.7", "lost", {"x": 1}, {"y": 2}, 1.0)
        assert recorder.observe("digits@0.1.0", 12345, 1, 1, 1.0) is False  # type: ignore[arg-type]
    assert (recorder.written, recorder.failed) == (0, 1)
    with recorder:
        recorder.observe("digits@0.1.0", "kept", {"x": np.arange(3)}, {"label": 1}, 1.0)
    # the background thread (or the closing flush) wrote it, numpy values as lists
    [sample] = wb.monitoring.samples("digits@0.1.0").items
    assert sample.inputs == {"x": [0, 1, 2]}
    # one unknown target in a batch loses its own samples only
    mixed = wb.monitoring.recorder(rate=1.0)
    for i in range(3):
        mixed.observe("digits@7.7.7", f"gone-{i}", None, None, 1.0)
        mixed.observe("digits@0.2.0", f"kept-{i}", None, None, 1.0)
    assert mixed.flush() == 3
    assert (mixed.written, mixed.failed) == (3, 3)
    assert len(wb.monitoring.samples("digits@0.2.0").items) == 3


def test_every_public_method_of_the_service_is_overridden_remotely() -> None:
    from weightbase.remote.monitoring import RemoteMonitoring

    public = [
        name
        for name, member in inspect.getmembers(Monitoring, inspect.isfunction)
        if not name.startswith("_")
    ]
    assert public
    for name in public:
        assert name in RemoteMonitoring.__dict__, name
        remote = inspect.signature(getattr(RemoteMonitoring, name))
        assert remote == inspect.signature(getattr(Monitoring, name)), name


def test_the_rest_api_answers_404_409_and_422(
    live_server: LiveServer, catalog_url: str, weightbase_home: Path
) -> None:
    local = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        local.models.push("digits", {"w": np.zeros(2, np.float32)})
        with live_server.serving(local) as remote:
            client = remote.connection._client
            assert (
                client.get("/api/v1/monitoring/samples", params={"target": "x"}).status_code == 404
            )
            bad = client.post("/api/v1/monitoring/labels", json={"labels": [{"request_id": ""}]})
            assert bad.status_code == 422
            sample = {"target": "digits@0.1.0", "request_id": "r", "at": "now", "latency_ms": 1}
            assert (
                client.post("/api/v1/monitoring/samples", json={"samples": [sample]}).status_code
                == 422
            )
            deployment = remote.deployments.deploy(
                "digits@0.1.0", config={"monitoring": {"alertThresholds": {"error_rate": 0.01}}}
            )
            remote.inference.record([_window(deployment, 10, 5, 1.0)])
            [alert] = remote.monitoring.check(deployment.id).opened
            path = f"/api/v1/monitoring/alerts/{alert.id}"
            assert client.post(f"{path}/resolve", json={}).status_code == 200
            assert client.post(f"{path}/acknowledge", json={}).status_code == 409
            assert client.get(f"/api/v1/monitoring/alerts/{'f' * 32}").status_code == 404
    finally:
        local.close()
