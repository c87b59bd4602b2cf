"""Checkpoints written in the background: the loop waits only for a copy of the state.

:class:`HostBuffers` copies a checkpoint's tensors into host memory it allocates once
and reuses (one buffer per tensor name, kept while its shape and dtype hold), so the
training loop may change its tensors as soon as the copy returns. :class:`OneWriter`
runs the write (hashing, deltas, compression, durable storage) on one thread, with at
most one checkpoint in flight: the next one waits until it is durable (the buffers are
then free again). An error of a background write is kept and raised by the next call
(``submit``, ``poll``, ``wait``), never dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["HostBuffers", "OneWriter"]

T = TypeVar("T")


class HostBuffers:
    """Preallocated host copies of named tensors, reused checkpoint after checkpoint."""

    def __init__(self) -> None:
        self._buffers: dict[str, Any] = {}

    def copy(self, tensors: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of every tensor (torch tensors on any device, NumPy arrays) in host memory."""
        copied: dict[str, Any] = {}
        for name, value in tensors.items():
            if isinstance(value, np.ndarray):
                copied[name] = self._copy_array(name, value)
            else:
                copied[name] = self._copy_tensor(name, value)
        for stale in self._buffers.keys() - tensors.keys():
            del self._buffers[stale]
        return copied

    def _copy_tensor(self, name: str, value: Any) -> Any:
        import torch

        buffer = self._buffers.get(name)
        if (
            not isinstance(buffer, torch.Tensor)
            or buffer.shape != value.shape
            or buffer.dtype != value.dtype
        ):
            # pinned memory makes a device's copy to host a DMA; plain memory otherwise
            pinned = value.device.type == "cuda"
            buffer = torch.empty(value.shape, dtype=value.dtype, pin_memory=pinned)
            self._buffers[name] = buffer
        buffer.copy_(value.detach())
        return buffer

    def _copy_array(self, name: str, value: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        buffer = self._buffers.get(name)
        if (
            not isinstance(buffer, np.ndarray)
            or buffer.shape != value.shape
            or buffer.dtype != value.dtype
        ):
            buffer = np.empty_like(value)
            self._buffers[name] = buffer
        np.copyto(buffer, value)
        return buffer


class OneWriter(Generic[T]):
    """One background thread, at most one job in flight; a failed job's error is re-raised."""

    def __init__(self, name: str = "weightbase-checkpoint") -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: Future[T] | None = None
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        """Whether a job is still running."""
        future = self._in_flight
        return future is not None and not future.done()

    def submit(self, job: Callable[[], T]) -> T | None:
        """Wait for the job in flight (raising its error), then start ``job``; returns the
        finished job's result, if there was one."""
        finished = self.wait()
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
            self._in_flight = self._pool.submit(job)
        return finished

    def poll(self) -> T | None:
        """The result of a job that has finished (raising its error), without waiting."""
        future = self._in_flight
        if future is None or not future.done():
            return None
        return self.wait()

    def wait(self) -> T | None:
        """Wait for the job in flight; its result, or its error raised; None if there was none."""
        with self._lock:
            future, self._in_flight = self._in_flight, None
        if future is None:
            return None
        return future.result()

    def close(self) -> T | None:
        """Wait for the job in flight (raising its error) and stop the thread."""
        try:
            return self.wait()
        finally:
            with self._lock:
                pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=True)
