"""System metrics while a run is open, and the resources it used.

:class:`SystemMonitor` samples, every ``interval`` seconds, on a thread of its own:

==============================  ===========================================
``system/cpu_percent``          this process's CPU use (100 = one core)
``system/memory_rss_bytes``     this process's resident set
``system/memory_percent``       memory in use on the machine
``system/gpu<i>/utilization``   GPU ``i``'s utilisation, percent (NVML)
``system/gpu<i>/memory_bytes``  GPU ``i``'s memory in use (NVML)
==============================  ===========================================

CPU and memory need psutil (``pip install 'weightbase[tracking]'``). GPU
metrics come from NVML through ``pynvml`` (the ``nvidia-ml-py`` package) when
it imports and finds a GPU; otherwise they are skipped without a word.

:class:`ResourceMeter` accounts for a run's resources in one process:

- CPU hours: the process's CPU time (user + system, all threads) while the run was open;
- GPU hours: for each sampling interval, the number of GPUs whose utilisation
  was above zero, times the interval (zero when nothing was sampled);
- peak memory: the largest resident set seen (``ru_maxrss``, or the samples);
- storage is added by the service: the stored bytes of the run's artifacts.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from weightbase.errors import ValidationError
from weightbase.tracking._extras import require

__all__ = ["ResourceMeter", "ResourceSample", "SystemMonitor", "gpu_count", "require_psutil"]

logger = logging.getLogger(__name__)


def require_psutil() -> Any:
    """The psutil module, or ``MissingExtraError`` naming the extra that brings it."""
    return require("psutil", purpose="sampling system metrics", extra="tracking")[0]


class _Nvml:
    """NVML, if ``pynvml`` imports and a GPU answers; else a stand-in with no GPUs."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self._module: Any = None
        try:
            module = importlib.import_module("pynvml")
            module.nvmlInit()
        except Exception:  # no package, no driver, no GPU: no GPU metrics
            return
        try:
            self.handles = [
                module.nvmlDeviceGetHandleByIndex(i) for i in range(module.nvmlDeviceGetCount())
            ]
        except Exception:
            logger.debug("NVML initialised but listing GPUs failed", exc_info=True)
            self.handles = []
        self._module = module

    def sample(self) -> list[tuple[float, float]]:
        """(utilisation percent, memory bytes in use) per GPU."""
        found = []
        for handle in self.handles:
            try:
                rates = self._module.nvmlDeviceGetUtilizationRates(handle)
                memory = self._module.nvmlDeviceGetMemoryInfo(handle)
            except Exception:
                continue
            found.append((float(rates.gpu), float(memory.used)))
        return found

    def close(self) -> None:
        if self._module is not None:
            try:
                self._module.nvmlShutdown()
            except Exception:
                logger.debug("nvmlShutdown failed", exc_info=True)
            self._module = None


def gpu_count() -> int:
    """How many GPUs NVML can see (0 without ``pynvml``, a driver or a GPU)."""
    nvml = _Nvml()
    try:
        return len(nvml.handles)
    finally:
        nvml.close()


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """Resource usage accumulated since the meter's last ``take``."""

    cpu_seconds: float
    gpu_seconds: float
    peak_memory_bytes: int | None


class ResourceMeter:
    """Counts one process's CPU time, GPU busy time and peak memory for a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cpu_start = time.process_time()
        self._gpu_seconds = 0.0
        self._peak_memory: int | None = None

    def add_gpu_seconds(self, seconds: float) -> None:
        with self._lock:
            self._gpu_seconds += seconds

    def observe_memory(self, rss_bytes: int) -> None:
        with self._lock:
            if self._peak_memory is None or rss_bytes > self._peak_memory:
                self._peak_memory = rss_bytes

    def take(self) -> ResourceSample:
        """What was used since the last ``take`` (or the start), and reset the counters."""
        now = time.process_time()
        peak = _max_rss()
        with self._lock:
            cpu = now - self._cpu_start
            self._cpu_start = now
            gpu, self._gpu_seconds = self._gpu_seconds, 0.0
            if peak is not None and (self._peak_memory is None or peak > self._peak_memory):
                self._peak_memory = peak
            memory = self._peak_memory
        return ResourceSample(max(cpu, 0.0), gpu, memory)


def _max_rss() -> int | None:
    """The process's peak resident set in bytes, if the OS says."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class SystemMonitor:
    """Samples CPU, memory and GPU use on a background thread and hands each sample to ``log``.

    ``log(values, step)`` receives ``{name: value}`` with names under ``prefix``;
    the step counts samples from 0. ``meter``, if given, is told of GPU busy
    time and memory peaks.
    """

    def __init__(
        self,
        log: Callable[[dict[str, float], int], None],
        *,
        interval: float = 10.0,
        prefix: str = "system/",
        meter: ResourceMeter | None = None,
        gpus: bool = True,
    ) -> None:
        psutil = require_psutil()
        if not interval > 0:
            raise ValidationError(f"the sampling interval must be positive, not {interval}")
        self._log = log
        self._interval = interval
        self._prefix = prefix
        self._meter = meter
        self._process = psutil.Process()
        self._psutil = psutil
        self._nvml = _Nvml() if gpus else None
        self._stop = threading.Event()
        self._step = 0
        self._process.cpu_percent(None)  # the first call only starts the measurement
        self._thread = threading.Thread(target=self._run, name="weightbase-system", daemon=True)
        self._thread.start()

    @property
    def gpus(self) -> int:
        """How many GPUs are being sampled."""
        return 0 if self._nvml is None else len(self._nvml.handles)

    def sample(self, elapsed: float) -> dict[str, float]:
        """One sample now; ``elapsed`` seconds since the previous one (for GPU hours)."""
        prefix = self._prefix
        rss = int(self._process.memory_info().rss)
        values = {
            f"{prefix}cpu_percent": float(self._process.cpu_percent(None)),
            f"{prefix}memory_rss_bytes": float(rss),
            f"{prefix}memory_percent": float(self._psutil.virtual_memory().percent),
        }
        busy = 0
        if self._nvml is not None:
            for index, (utilization, memory) in enumerate(self._nvml.sample()):
                values[f"{prefix}gpu{index}/utilization"] = utilization
                values[f"{prefix}gpu{index}/memory_bytes"] = memory
                busy += utilization > 0
        if self._meter is not None:
            self._meter.observe_memory(rss)
            self._meter.add_gpu_seconds(busy * elapsed)
        return values

    def _run(self) -> None:
        previous = time.monotonic()
        while not self._stop.wait(self._interval):
            now = time.monotonic()
            try:
                values = self.sample(now - previous)
                self._log(values, self._step)
            except Exception:
                logger.warning("system metrics sample failed", exc_info=True)
            previous = now
            self._step += 1

    def stop(self) -> None:
        """Stop sampling (waits for the thread); stopping twice does nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        if self._nvml is not None:
            self._nvml.close()
