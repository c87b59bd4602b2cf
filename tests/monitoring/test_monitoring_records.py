"""Properties of monitoring's pure parts: records survive ``to_dict``/``from_dict``, the
sampling decision is a function of the request id that keeps about ``rate`` of them,
predictions are read from outputs as documented, per-window scores match numpy's, and
health's score follows its documented formula."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightbase.errors import ValidationError
from weightbase.governance.audit import AuditEntry
from weightbase.monitoring.health import WEIGHTS, previous_version, score_health
from weightbase.monitoring.performance import prediction_of, score_windows
from weightbase.monitoring.recorder import SampleRecorder
from weightbase.monitoring.records import (
    Alert,
    CheckResult,
    Health,
    ObservedRequest,
    Performance,
    PerformanceWindow,
    Sample,
)
from weightbase.serving.records import Deployment, DeploymentConfig, DeploymentEvent

_T0 = datetime(2026, 1, 1, tzinfo=UTC)
times = st.integers(0, 10**8).map(lambda s: _T0 + timedelta(seconds=s))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
request_ids = st.text(min_size=1, max_size=128)


@given(
    request_ids,
    times,
    st.floats(0, 1e6),
    json_values,
    json_values,
    st.none() | st.text(max_size=20),
)
def test_an_observed_request_survives_its_dict(
    request_id: str,
    at: datetime,
    latency: float,
    inputs: object,
    outputs: object,
    error: str | None,
) -> None:
    item = ObservedRequest("m@1.0.0", request_id, at, latency, error, inputs, outputs, True)
    assert ObservedRequest.from_dict(item.to_dict()) == item


@given(
    st.integers(1, 10**9),
    request_ids,
    times,
    json_values,
    st.none() | st.integers() | st.text(max_size=4),
)
def test_a_sample_survives_its_dict(
    sample_id: int, request_id: str, at: datetime, outputs: object, label: object
) -> None:
    item = Sample(
        sample_id, "m", "1.0.0", request_id, at, 2.5, None, {"x": 1}, outputs, False, None, label
    )
    assert Sample.from_dict(item.to_dict()) == item


def test_alerts_checks_health_and_performance_survive_their_dicts() -> None:
    alert = Alert("a" * 32, "d" * 32, "m", "staging", "error_rate", "open", 0.2, 0.05, "x", _T0)
    assert Alert.from_dict(alert.to_dict()) == alert
    check = CheckResult(
        "d" * 32,
        {"error_rate": 0.2, "drift_share": None},
        {"error_rate": 0.05},
        (alert,),
        (),
        (alert,),
    )
    assert CheckResult.from_dict(check.to_dict()) == check
    health = Health(
        "d" * 32,
        "m",
        "1.0.0",
        "staging",
        55.0,
        {"latency": 20.0},
        {"error_rate": None},
        "rollback",
        "0.9.0",
        ("why",),
    )
    assert Health.from_dict(health.to_dict()) == health
    window = PerformanceWindow(
        _T0, _T0 + timedelta(hours=1), 10, accuracy=0.8, drop=0.1, degraded=True
    )
    performance = Performance(
        "m", "1.0.0", "classification", "accuracy", 0.9, 0.05, 3600.0, (window,)
    )
    assert Performance.from_dict(performance.to_dict()) == performance


@settings(max_examples=30)
@given(st.floats(0, 1), st.lists(request_ids, min_size=1, max_size=50, unique=True))
def test_sampling_is_a_function_of_the_request_id(rate: float, ids: list[str]) -> None:
    one, two = SampleRecorder(None, rate=rate), SampleRecorder(None, rate=rate)
    decisions = [one.keeps(rid) for rid in ids]
    assert decisions == [two.keeps(rid) for rid in ids]
    expected = [zlib.crc32(rid.encode()) < (rate * 2**32 if rate < 1 else 2**32) for rid in ids]
    assert decisions == expected
    if rate == 1:
        assert all(decisions)
    if rate == 0:
        assert not any(decisions)


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5])
def test_sampling_keeps_about_the_rate(rate: float) -> None:
    from scipy import stats

    recorder = SampleRecorder(None, rate=rate)
    count = 20_000
    kept = sum(recorder.keeps(f"req-{i}") for i in range(count))
    # a two-sided binomial test: the share kept is what the rate promises
    assert stats.binomtest(kept, count, rate).pvalue > 1e-4


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True])
def test_a_recorder_refuses_a_rate_outside_0_to_1(bad: float) -> None:
    with pytest.raises(ValidationError):
        SampleRecorder(None, rate=bad)


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        (3, 3),
        ("cat", "cat"),
        ({"label": "dog", "score": 0.9}, "dog"),
        ({"prediction": [7]}, 7),
        ([[0.1, 0.7, 0.2]], 1),
        ([{"label": "a", "score": 0.2}, {"label": "b", "score": 0.8}], "b"),
        ({"logits": [1, 2]}, None),
        # an Open Inference Protocol answer: one tensor of class scores, or of the class
        ([{"name": "output", "shape": [1, 3], "datatype": "FP32", "data": [0.1, 0.2, 0.7]}], 2),
        ([{"name": "label", "shape": [1], "datatype": "INT64", "data": [4]}], 4),
        (None, None),
    ],
)
def test_a_prediction_is_read_from_outputs(outputs: object, expected: object) -> None:
    assert prediction_of(outputs) == expected


@settings(max_examples=25)
@given(
    st.lists(
        st.tuples(st.integers(0, 3 * 3600), st.floats(-100, 100), st.floats(-100, 100)),
        min_size=1,
        max_size=60,
    )
)
def test_regression_windows_match_numpy(rows: list[tuple[int, float, float]]) -> None:
    samples = [
        Sample(i, "m", "1", f"r{i}", _T0 + timedelta(seconds=s), 1.0, outputs={"value": p}, label=t)
        for i, (s, p, t) in enumerate(rows)
    ]
    metric, baseline, windows = score_windows(
        samples, kind="regression", metrics={"mae": 2.0}, window_s=3600, threshold=0.1, min_labels=1
    )
    assert (metric, baseline) == ("mae", 2.0)
    assert sum(w.count for w in windows) == len(rows)
    for window in windows:
        inside = [
            (p, t) for s, p, t in rows if window.start <= _T0 + timedelta(seconds=s) < window.end
        ]
        errors = np.array([p - t for p, t in inside])
        assert window.mae == pytest.approx(float(np.mean(np.abs(errors))), abs=1e-9)
        assert window.rmse == pytest.approx(float(np.sqrt(np.mean(errors**2))), abs=1e-9)
        assert window.degraded == ((window.mae - 2.0) / 2.0 > 0.1)


def _deployment(version: str = "2.0.0") -> Deployment:
    return Deployment(
        "d" * 32, "m", version, "production", DeploymentConfig(), "running", 1, _T0, _T0
    )


@settings(max_examples=50)
@given(
    st.none() | st.floats(0, 1),
    st.none() | st.floats(0, 5000),
    st.none() | st.floats(-1, 1),
    st.none() | st.floats(0, 1),
    st.integers(0, 5),
)
def test_health_follows_its_formula(
    error_rate: float | None,
    latency: float | None,
    drop: float | None,
    drift: float | None,
    alerts: int,
) -> None:
    measured = {
        "error_rate": error_rate,
        "p95_latency_ms": latency,
        "accuracy_drop": drop,
        "drift_share": drift,
    }
    thresholds = {
        "error_rate": 0.05,
        "p95_latency_ms": 200.0,
        "accuracy_drop": 0.05,
        "drift_share": 0.5,
    }
    found = score_health(_deployment(), measured, thresholds, alerts, "1.0.0")

    def part(weight: float, value: float | None, limit: float) -> float:
        return 0.0 if value is None else weight * min(1.0, max(0.0, value) / limit) ** 2

    expected = 100 - (
        part(WEIGHTS["error_rate"], error_rate, 0.05)
        + part(WEIGHTS["latency"], latency, 200.0)
        + part(WEIGHTS["accuracy_drop"], drop, 0.05)
        + part(WEIGHTS["drift_share"], drift, 0.5)
        + min(10, 5 * alerts)
    )
    assert found.score == pytest.approx(max(0.0, expected), abs=0.01)
    assert 0 <= found.score <= 100
    degraded = (drop is not None and drop > 0.05) or (error_rate is not None and error_rate > 0.05)
    drifted = drift is not None and drift > 0.5
    if degraded:
        assert (found.recommendation, found.rollback_to) == ("rollback", "1.0.0")
    elif drifted:
        assert found.recommendation == "retrain"
    else:
        assert found.recommendation == "none"
        assert found.rollback_to is None


def test_the_version_to_roll_back_to_is_the_last_other_one_served() -> None:
    def event(version: str) -> DeploymentEvent:
        return DeploymentEvent(1, "d" * 32, "deploy", "running", version, 1, _T0)

    current = _deployment("3.0.0")
    history = [event("1.0.0"), event("2.0.0"), event("3.0.0")]
    assert previous_version(current, history, []) == "2.0.0"
    assert previous_version(current, [event("3.0.0")], []) is None
    # no other version served there: where production pointed before it moved
    moved = AuditEntry(
        1,
        _T0,
        "someone",
        "alias.set",
        "model",
        "1",
        {"alias": "production", "version": "2.5.0"},
        {"alias": "production", "version": "3.0.0"},
        None,
    )
    assert previous_version(current, [event("3.0.0")], [moved]) == "2.5.0"


def test_inputs_become_columns_of_what_every_sample_has() -> None:
    from weightbase.monitoring.samples import input_columns

    def sample(i: int, inputs: object, outputs: object = None) -> Sample:
        return Sample(i, "m", "1", f"r{i}", _T0, 1.0, inputs=inputs, outputs=outputs)

    mapped = [
        sample(0, {"a": 1.0, "b": "x", "nested": [1]}, {"label": 1}),
        sample(1, {"a": 2.0, "b": "y", "c": 3}, {"label": 0}),
        sample(2, None, {"label": 1}),  # truncated: left out
    ]
    assert input_columns(mapped) == {"a": [1.0, 2.0], "b": ["x", "y"], "prediction": [1, 0]}
    oip = [
        sample(i, [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [i, i + 0.5]}])
        for i in range(2)
    ]
    assert input_columns(oip) == {"x[0]": [0, 1], "x[1]": [0.5, 1.5]}
    assert input_columns([sample(0, [3, 4])]) == {"0": [3], "1": [4]}
    assert input_columns([sample(0, "text")]) == {}
