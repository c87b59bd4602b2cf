"""The system monitor when things fail: NVML errors, a failing logger, no ``resource`` module.

NVML is replaced by a stand-in ``pynvml`` module (the real one needs a GPU and its driver).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import types

import pytest

from weightbase.errors import ValidationError
from weightbase.tracking.system import ResourceMeter, SystemMonitor, gpu_count

pytest.importorskip("psutil", reason="system metrics need the [tracking] extra")


def _nvml(monkeypatch: pytest.MonkeyPatch, count: int = 2) -> types.ModuleType:
    fake = types.ModuleType("pynvml")
    fake.shutdowns = 0  # type: ignore[attr-defined]

    def shutdown() -> None:
        fake.shutdowns += 1  # type: ignore[attr-defined]

    fake.nvmlInit = lambda: None  # type: ignore[attr-defined]
    fake.nvmlShutdown = shutdown  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: count  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda index: index  # type: ignore[attr-defined]
    fake.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(gpu=50.0)  # type: ignore[attr-defined]
    fake.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(used=1000 + handle)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake


def _quiet(values: dict[str, float], step: int) -> None:
    pass


@pytest.mark.parametrize("interval", [0, -1.0, math.nan])
def test_the_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(ValidationError, match="the sampling interval must be positive, not "):
        SystemMonitor(_quiet, interval=interval, gpus=False)


def test_gpus_can_be_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    _nvml(monkeypatch)
    monitor = SystemMonitor(_quiet, interval=3600, gpus=False)
    try:
        values = monitor.sample(elapsed=1.0)
    finally:
        monitor.stop()
    assert monitor.gpus == 0
    assert not any("gpu" in name for name in values)


def test_an_nvml_that_cannot_list_its_gpus_counts_none(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _nvml(monkeypatch)

    def no_count() -> int:
        raise RuntimeError("NVML_ERROR_UNKNOWN")

    fake.nvmlDeviceGetCount = no_count  # type: ignore[attr-defined]
    assert gpu_count() == 0
    assert fake.shutdowns == 1  # initialised, so shut down again


def test_a_gpu_that_fails_to_answer_is_left_out_of_the_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _nvml(monkeypatch, count=3)

    def rates(handle: int) -> types.SimpleNamespace:
        if handle == 1:
            raise RuntimeError("NVML_ERROR_GPU_IS_LOST")
        return types.SimpleNamespace(gpu=50.0)

    fake.nvmlDeviceGetUtilizationRates = rates  # type: ignore[attr-defined]
    meter = ResourceMeter()
    monitor = SystemMonitor(_quiet, interval=3600, meter=meter, prefix="sys.")
    try:
        values = monitor.sample(elapsed=4.0)
    finally:
        monitor.stop()
    assert monitor.gpus == 3
    memory = sorted(value for name, value in values.items() if name.endswith("/memory_bytes"))
    utilization = [value for name, value in values.items() if name.endswith("/utilization")]
    assert memory == [1000.0, 1002.0]  # GPUs 0 and 2; GPU 1 did not answer
    assert utilization == [50.0, 50.0]
    assert all(name.startswith("sys.") for name in values)
    assert meter.take().gpu_seconds == 8.0


def test_a_failing_nvml_shutdown_does_not_stop_the_monitor_stopping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _nvml(monkeypatch)

    def broken_shutdown() -> None:
        raise RuntimeError("NVML_ERROR_UNINITIALIZED")

    fake.nvmlShutdown = broken_shutdown  # type: ignore[attr-defined]
    monitor = SystemMonitor(_quiet, interval=3600)
    monitor.stop()
    monitor.stop()
    assert not monitor._thread.is_alive()


def test_a_failing_logger_is_reported_and_sampling_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    steps: list[int] = []
    second = threading.Event()

    def log(values: dict[str, float], step: int) -> None:
        steps.append(step)
        if step == 0:
            raise RuntimeError("metric store is down")
        second.set()

    with caplog.at_level(logging.WARNING, logger="weightbase.tracking.system"):
        monitor = SystemMonitor(log, interval=0.02, gpus=False)
        try:
            assert second.wait(10)
        finally:
            monitor.stop()
    assert steps[:2] == [0, 1]
    failures = [r for r in caplog.records if r.getMessage() == "system metrics sample failed"]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert str(failures[0].exc_info[1]) == "metric store is down"


def test_without_the_resource_module_the_peak_comes_from_samples_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "resource", None)  # as on Windows
    meter = ResourceMeter()
    assert meter.take().peak_memory_bytes is None
    meter.observe_memory(5000)
    meter.observe_memory(3000)
    assert meter.take().peak_memory_bytes == 5000
