"""System metrics sampling, resource accounting, and clear errors for missing extras."""

from __future__ import annotations

import sys
import threading
import time

import pytest

import weightbase.tracking
from weightbase.errors import MissingExtraError
from weightbase.tracking import RunTracker, evaluate
from weightbase.tracking.system import ResourceMeter, SystemMonitor, gpu_count


def test_the_monitor_samples_cpu_and_memory() -> None:
    pytest.importorskip("psutil", reason="system metrics need the [tracking] extra")
    samples: list[tuple[dict[str, float], int]] = []
    got_two = threading.Event()

    def log(values: dict[str, float], step: int) -> None:
        samples.append((values, step))
        if len(samples) >= 2:
            got_two.set()

    meter = ResourceMeter()
    monitor = SystemMonitor(log, interval=0.02, meter=meter)
    try:
        assert got_two.wait(10)
    finally:
        monitor.stop()
    monitor.stop()  # twice is fine
    values, step = samples[0]
    assert step == 0
    assert samples[1][1] == 1
    assert {"system/cpu_percent", "system/memory_rss_bytes", "system/memory_percent"} <= set(values)
    assert values["system/memory_rss_bytes"] > 0
    assert monitor.gpus == gpu_count()  # 0 without NVML; GPUs skipped without a word
    usage = meter.take()
    assert usage.peak_memory_bytes is not None
    assert usage.peak_memory_bytes >= values["system/memory_rss_bytes"]
    assert usage.gpu_seconds >= 0


def test_the_meter_counts_cpu_time_and_resets() -> None:
    meter = ResourceMeter()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    first = meter.take()
    assert first.cpu_seconds >= 0.04
    assert meter.take().cpu_seconds < first.cpu_seconds
    meter.add_gpu_seconds(2.5)
    assert meter.take().gpu_seconds == 2.5


def test_a_run_samples_system_metrics(tracker: RunTracker) -> None:
    pytest.importorskip("psutil", reason="system metrics need the [tracking] extra")
    with tracker.start("system", system_metrics=0.02) as run:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            run.flush()
            if "system/cpu_percent" in tracker.get(run.id).metrics:
                break
            time.sleep(0.02)
        run.log({"loss": 1.0})
    info = tracker.get(run.id)
    assert info.metrics["system/memory_rss_bytes"].count >= 1
    assert info.resources.peak_memory_bytes is not None
    assert info.resources.peak_memory_bytes > 0
    # system metrics do not move the training step counter, nor crowd comparisons
    assert info.metrics["loss"].last_step == 0
    assert "system/cpu_percent" not in tracker.compare([run.id]).metrics


def test_missing_extras_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(MissingExtraError, match=r"weightbase\[tracking\]"):
        SystemMonitor(lambda values, step: None)
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)
    with pytest.raises(MissingExtraError, match=r"weightbase\[tracking\]"):
        evaluate([0, 1], [0, 1])


def test_the_public_surface() -> None:
    assert set(weightbase.tracking.__all__) == {
        "NAME_PATTERN",
        "ActiveRun",
        "Artifact",
        "ConvergenceReport",
        "EnvironmentDiff",
        "Evaluation",
        "Experiment",
        "MetricFilter",
        "MetricHistory",
        "MetricSummary",
        "MetricWriter",
        "ResourceUsage",
        "Run",
        "RunComparison",
        "RunEnvironment",
        "RunPage",
        "RunStatus",
        "RunTracker",
        "analyze",
        "evaluate",
        "seed_everything",
    }
    for name in weightbase.tracking.__all__:
        assert getattr(weightbase.tracking, name) is not None


def test_a_run_needing_psutil_is_refused_before_it_exists(
    tracker: RunTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(MissingExtraError):
        tracker.start("system", system_metrics=True)
    assert tracker.search().runs == ()


def test_gpus_are_sampled_through_nvml_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in pynvml with two GPUs, one busy: both sampled, one counted for GPU hours."""
    pytest.importorskip("psutil", reason="system metrics need the [tracking] extra")
    import types

    fake = types.ModuleType("pynvml")
    busy = {0: 87.0, 1: 0.0}
    fake.nvmlInit = lambda: None  # type: ignore[attr-defined]
    fake.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda index: index  # type: ignore[attr-defined]
    fake.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(  # type: ignore[attr-defined]
        gpu=busy[handle]
    )
    fake.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(  # type: ignore[attr-defined]
        used=1024 * (handle + 1)
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert gpu_count() == 2
    meter = ResourceMeter()
    monitor = SystemMonitor(lambda values, step: None, interval=3600, meter=meter)
    try:
        values = monitor.sample(elapsed=10.0)
    finally:
        monitor.stop()
    assert monitor.gpus == 2
    assert values["system/gpu0/utilization"] == 87.0
    assert values["system/gpu1/memory_bytes"] == 2048.0
    assert meter.take().gpu_seconds == 10.0


def test_a_broken_nvml_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    fake = types.ModuleType("pynvml")

    def fail() -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    fake.nvmlInit = fail  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert gpu_count() == 0
