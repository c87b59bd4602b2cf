"""``wb.inference``: windows of inference metrics and inference sessions, recorded and read.

Every test runs embedded and through a live server (``remote_or_embedded``), on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from tests.conftest import remote_variants

from weightbase.errors import NotFound, ValidationError
from weightbase.serving.inference_records import InferenceSession, InferenceWindow
from weightbase.serving.runnable_outputs import GenerationParams
from weightbase.workspace import Workspace

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def wb(remote_or_embedded: Workspace) -> Workspace:
    """``writer`` at 0.1.0 and 0.2.0."""
    rng = np.random.default_rng(0)
    for _ in range(2):
        remote_or_embedded.models.push("writer", {"w": rng.standard_normal(4).astype(np.float32)})
    return remote_or_embedded


def _window(minute: int, **changes: object) -> InferenceWindow:
    window = InferenceWindow(
        model="writer",
        version="0.1.0",
        served_as="writer",
        server_id="s1",
        started=T0 + timedelta(minutes=minute),
        ended=T0 + timedelta(minutes=minute + 1),
        requests=120,
        errors=2,
        latency_p50_ms=4.5,
        latency_p95_ms=9.0,
        latency_p99_ms=20.0,
        throughput_rps=2.0,
        tokens=900,
        tokens_per_s=310.0,
        memory_bytes=2**20,
        cache_hits=30,
        cache_misses=90,
        kv_prefix_hits=60,
        kv_prefix_misses=30,
    )
    return replace(window, **changes)  # type: ignore[arg-type]


def _session(requests: int, **changes: object) -> InferenceSession:
    session = InferenceSession(
        id="a" * 32,
        model="writer",
        version="0.1.0",
        served_as="writer",
        server_id="s1",
        operation="generate",
        started=T0,
        last_request=T0 + timedelta(seconds=requests),
        requests=requests,
        tokens=8 * requests,
        params=GenerationParams(temperature=0.7, top_k=40, top_p=0.9, max_tokens=8, seed=3),
    )
    return replace(session, **changes)  # type: ignore[arg-type]


def test_windows_come_back_oldest_first_with_every_figure(wb: Workspace) -> None:
    wb.inference.record([_window(1), _window(0)])
    found = wb.inference.metrics("writer")
    assert [w.started for w in found] == [T0, T0 + timedelta(minutes=1)]
    assert found[1] == _window(1)
    assert found[0].kv_prefix_hits == 60
    assert found[0].latency_p99_ms == 20.0


def test_windows_are_read_by_version_time_and_limit(wb: Workspace) -> None:
    wb.inference.record([_window(m) for m in range(5)])
    wb.inference.record([_window(9, version="0.2.0")])
    assert [w.version for w in wb.inference.metrics("writer", version="0.2.0")] == ["0.2.0"]
    latest = wb.inference.metrics("writer", limit=2)
    assert [w.ended for w in latest] == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    since = wb.inference.metrics("writer", since=T0 + timedelta(minutes=3, seconds=30))
    assert [w.started.minute for w in since] == [3, 4, 9]


def test_a_window_of_a_deployment_is_read_by_its_environment(wb: Workspace) -> None:
    deployment = wb.deployments.deploy("writer@0.1.0", environment="staging")
    wb.inference.record(
        [_window(0, deployment_id=deployment.id), _window(1)]  # one not deployed
    )
    staged = wb.inference.metrics("writer", environment="staging")
    assert [(w.deployment_id, w.environment) for w in staged] == [(deployment.id, "staging")]
    assert len(wb.inference.metrics("writer")) == 2


def test_a_session_is_created_then_brought_up_to_date(wb: Workspace) -> None:
    wb.inference.record(sessions=[_session(3)])
    wb.inference.record(sessions=[_session(10)])
    [found] = wb.inference.sessions("writer")
    assert found == _session(10)
    assert found.params is not None
    assert (found.params.temperature, found.params.top_k, found.params.top_p) == (0.7, 40, 0.9)


def test_sessions_without_sampling_parameters_and_most_recent_first(wb: Workspace) -> None:
    embed = _session(1, id="b" * 32, operation="embed", params=None, tokens=0)
    wb.inference.record(sessions=[_session(5), embed])
    found = wb.inference.sessions("writer")
    assert [s.id for s in found] == ["a" * 32, "b" * 32]
    assert found[1].params is None
    assert wb.inference.sessions("writer", version="0.2.0") == []


def test_unknown_models_versions_and_deployments_are_not_found(wb: Workspace) -> None:
    with pytest.raises(NotFound):
        wb.inference.record([_window(0, version="9.9.9")])
    with pytest.raises(NotFound):
        wb.inference.record([_window(0, deployment_id="f" * 32)])
    with pytest.raises(NotFound):
        wb.inference.metrics("nobody")
    # nothing of a refused record was kept
    assert wb.inference.metrics("writer") == []


def test_a_session_cannot_move_to_another_server(wb: Workspace) -> None:
    wb.inference.record(sessions=[_session(1)])
    with pytest.raises(ValidationError, match="another server"):
        wb.inference.record(sessions=[_session(2, server_id="s2")])


def test_bad_reads_are_refused(wb: Workspace) -> None:
    with pytest.raises(ValidationError):
        wb.inference.metrics("writer", environment="moon")
    with pytest.raises(ValidationError):
        wb.inference.metrics("writer", limit=0)


def test_records_check_what_they_hold() -> None:
    with pytest.raises(ValidationError, match="requests"):
        _window(0, requests=-1)
    with pytest.raises(ValidationError, match="ends after"):
        _window(0, ended=T0 - timedelta(minutes=1))
    with pytest.raises(ValidationError, match="finite"):
        _window(0, latency_p50_ms=float("nan"))
    with pytest.raises(ValidationError, match="operation"):
        _session(1, operation="dream")
    assert InferenceWindow.from_dict(_window(0).to_dict()) == _window(0)
    assert InferenceSession.from_dict(_session(2).to_dict()) == _session(2)
    with pytest.raises(ValidationError, match="unknown window field"):
        InferenceWindow.from_dict({**_window(0).to_dict(), "extra": 1})
    with pytest.raises(ValidationError, match="time zone"):
        InferenceWindow.from_dict({**_window(0).to_dict(), "started": "2026-12-04T12:00:00"})
    with pytest.raises(ValidationError, match="params"):
        InferenceSession.from_dict({**_session(1).to_dict(), "params": {"temperature": "hot"}})


def test_every_public_method_of_the_log_is_overridden_remotely() -> None:
    import inspect

    from weightbase.remote.inference import RemoteInference
    from weightbase.serving.inference_log import InferenceLog

    public = {
        name
        for name in dir(InferenceLog)
        if not name.startswith("_") and callable(getattr(InferenceLog, name))
    }
    assert public == {"record", "metrics", "sessions"}
    assert sorted(name for name in public if name not in vars(RemoteInference)) == []
    for name in public:
        remote = inspect.signature(getattr(RemoteInference, name))
        assert remote == inspect.signature(getattr(InferenceLog, name)), name
