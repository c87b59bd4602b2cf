"""The buffered metric writer: logging costs a list append; a background thread writes batches.

    writer = MetricWriter(sink)              # sink(batch) writes {name: (n, 4) array} durably
    writer.add({"loss": 0.31}, step=7, epoch=0.0, when=time.time())
    writer.flush()                           # everything added so far is durable now
    writer.close()

Points wait in a per-metric buffer until ``batch_points`` of them are there or
``flush_interval`` seconds have passed; then the batch goes through a bounded
queue (a full queue makes ``add`` wait, so a slow database slows logging down
instead of filling memory) to one writer thread that hands it to the sink.

Nothing is lost silently: a batch the sink fails on is kept and tried again
before the next one, and the error is raised by the next ``add``/``flush``
call. ``close`` flushes; so do the interpreter's exit (``atexit``) and SIGTERM
(the handler flushes every open writer, then does what the signal's previous
handler would have done). A SIGKILL loses what was not yet flushed, never what
was. A signal that lands while the main thread is inside the writer is held
until that call returns, so the handler never sees a half-updated buffer.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from weightbase.errors import StorageError, ValidationError

__all__ = [
    "MetricBatch",
    "MetricWriter",
    "ShutdownHook",
    "critical_section",
    "register_shutdown",
    "unregister_shutdown",
]

logger = logging.getLogger(__name__)

#: ``{metric name: float64 array of shape (n, 4)}`` with columns step, epoch, time, value.
MetricBatch = dict[str, npt.NDArray[np.float64]]
Sink = Callable[[MetricBatch], None]

#: How long the exit and SIGTERM hooks wait for one writer to drain.
SHUTDOWN_TIMEOUT_S = 30.0


class ShutdownHook(Protocol):
    """Something to finish before the process ends (an open run, a writer)."""

    def shutdown(self, reason: str) -> None:
        """Finish up; ``reason`` is ``"exit"`` or the signal's name (``"SIGTERM"``)."""


# -- process-wide hooks: atexit, SIGTERM, fork -------------------------------------------

_hooks: dict[int, ShutdownHook] = {}
_hooks_lock = threading.Lock()
_installed: list[bool] = []  # non-empty once atexit and SIGTERM hooks are in place
_previous_handlers: dict[int, Any] = {}


class _Depth(threading.local):
    """How deep this thread is inside writer calls (the SIGTERM hook waits for 0)."""

    depth = 0


_local = _Depth()
_deferred: list[tuple[int, FrameType | None]] = []


def register_shutdown(hook: ShutdownHook) -> None:
    """Call ``hook.shutdown(reason)`` at interpreter exit or on SIGTERM (newest hook first)."""
    with _hooks_lock:
        _hooks[id(hook)] = hook
        if _installed:
            return
        _installed.append(True)
    atexit.register(_shutdown_all, "exit")
    _install_signal_handler(signal.SIGTERM)


def unregister_shutdown(hook: ShutdownHook) -> None:
    """Forget ``hook`` (it finished on its own)."""
    with _hooks_lock:
        _hooks.pop(id(hook), None)


def _install_signal_handler(signum: signal.Signals) -> None:
    if threading.current_thread() is not threading.main_thread():
        logger.debug("not in the main thread: %s will not flush metric writers", signum.name)
        return
    previous = signal.getsignal(signum)
    if previous is _on_signal:
        return
    _previous_handlers[signum] = previous
    signal.signal(signum, _on_signal)


def _shutdown_all(reason: str) -> None:
    with _hooks_lock:
        hooks = list(_hooks.values())
        _hooks.clear()
    for hook in reversed(hooks):
        try:
            hook.shutdown(reason)
        except Exception:
            logger.exception("shutting down %r on %s failed", hook, reason)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _local.depth > 0:
        # The main thread was interrupted inside a writer call; finish it first.
        _deferred.append((signum, frame))
        return
    _terminate(signum, frame)


def _terminate(signum: int, frame: FrameType | None) -> None:
    _shutdown_all(signal.Signals(signum).name)
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:  # SIG_DFL (or a handler not installed from Python): die as the signal would have
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


@contextmanager
def critical_section() -> Iterator[None]:
    """Hold off the SIGTERM hook while the block runs (it runs once the block is done)."""
    _local.depth += 1
    try:
        yield
    finally:
        _local.depth -= 1
        if _deferred and _local.depth == 0:
            _run_deferred()


def _run_deferred() -> None:
    while _deferred:
        signum, frame = _deferred.pop(0)
        _terminate(signum, frame)


def _after_fork_in_child() -> None:
    # The writer threads did not survive the fork; their buffers belong to the parent.
    with _hooks_lock:
        for hook in _hooks.values():
            if isinstance(hook, MetricWriter):
                hook._forked = True
        _hooks.clear()
    _deferred.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the writer --------------------------------------------------------------------------


@dataclass(eq=False)
class _FlushRequest:
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


_STOP = object()


class MetricWriter:
    """Buffers metric points and writes them in batches from a background thread.

    ``sink(batch)`` must write a whole batch in one transaction (or not at all)
    and may be called again with the same batch after it raised. Thread-safe:
    any number of threads may ``add`` at once.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        batch_points: int = 100_000,
        flush_interval: float = 1.0,
        max_queued_batches: int = 8,
        name: str = "weightbase-metrics",
    ) -> None:
        if batch_points < 1:
            raise ValidationError(f"batch_points must be at least 1, not {batch_points}")
        if not flush_interval > 0:
            raise ValidationError(f"flush_interval must be positive, not {flush_interval}")
        if max_queued_batches < 1:
            raise ValidationError(
                f"max_queued_batches must be at least 1, not {max_queued_batches}"
            )
        self._sink = sink
        self._batch_points = batch_points
        self._flush_interval = flush_interval
        self._lock = threading.Lock()
        # one row per add(): (names, step, epoch, time, values); turned into
        # per-metric arrays in bulk when a batch is taken
        self._rows: list[tuple[tuple[str, ...], float, float, float, tuple[float, ...]]] = []
        self._arrays: dict[str, list[npt.NDArray[np.float64]]] = {}
        self._buffered = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queued_batches)
        self._failed: list[MetricBatch] = []
        self._error: BaseException | None = None
        self._closed = False
        self._forked = False
        self.points_written = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        register_shutdown(self)

    # -- producing -------------------------------------------------------------------

    def add(self, values: Mapping[str, float], step: float, epoch: float, when: float) -> None:
        """Buffer one point per metric in ``values``, all at ``step``/``epoch``/``when``.

        Values must already be floats and names valid (the run checks both);
        ``epoch`` is NaN for none.
        """
        if self._error is not None or self._closed or self._forked:
            self._check_open()
        # critical_section(), inlined: this is the hot path of every log() call
        local = _local
        local.depth += 1
        try:
            row = (tuple(values), step, epoch, when, tuple(values.values()))
            with self._lock:
                self._rows.append(row)
                self._buffered += len(row[0])
                batch = self._take() if self._buffered >= self._batch_points else None
            if batch is not None:
                self._queue.put(batch)
        finally:
            local.depth -= 1
            if _deferred and local.depth == 0:
                _run_deferred()

    def add_array(self, name: str, points: npt.NDArray[np.float64]) -> None:
        """Buffer many points of one metric: a float64 (n, 4) array of step, epoch, time, value."""
        self._check_open()
        with critical_section():
            with self._lock:
                self._arrays.setdefault(name, []).append(points)
                self._buffered += int(points.shape[0])
                batch = self._take() if self._buffered >= self._batch_points else None
            if batch is not None:
                self._queue.put(batch)

    def _take(self) -> MetricBatch | None:
        """The buffered points as a batch, leaving the buffer empty (call with the lock held)."""
        if not self._buffered:
            return None
        rows, arrays = self._rows, self._arrays
        self._rows, self._arrays, self._buffered = [], {}, 0
        columns = _columns(rows)
        batch: MetricBatch = {}
        for name in columns.keys() | arrays.keys():
            parts = list(arrays.get(name, ()))
            if name in columns:
                parts.append(columns[name])
            batch[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return batch

    def flush(self, timeout: float | None = None) -> None:
        """Return once every point added so far is durable; raise if any could not be written."""
        self._check_open()
        with critical_section():
            self._flush(timeout)

    def _flush(self, timeout: float | None) -> None:
        with self._lock:
            batch = self._take()
        late = StorageError(f"metric writer did not flush within {timeout} s", retryable=True)
        if batch is not None and not self._put_quietly(batch, timeout):
            self._restore(batch)  # kept for the next flush
            raise late
        request = _FlushRequest()
        if not self._put_quietly(request, timeout) or not request.done.wait(timeout):
            raise late
        if request.error is not None:
            self._error = None
            raise request.error

    def _put_quietly(self, item: object, timeout: float | None) -> bool:
        try:
            self._queue.put(item, timeout=timeout)
        except queue.Full:
            return False
        return True

    def _restore(self, batch: MetricBatch) -> None:
        """Put a batch that could not be queued back at the front of the buffer."""
        with self._lock:
            for name, points in batch.items():
                self._arrays.setdefault(name, []).insert(0, points)
                self._buffered += int(points.shape[0])

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the writer thread; closing twice does nothing.

        Raises if the last points could not be written; they are then dropped
        (the error says so), as there is no later call to try them again.
        """
        if self._closed or self._forked:
            return
        try:
            with critical_section():
                self._flush(timeout)
        finally:
            self._closed = True
            unregister_shutdown(self)
            dropped = sum(int(batch[name].shape[0]) for batch in self._failed for name in batch)
            self._failed.clear()
            self._queue.put(_STOP)
            self._thread.join(timeout)
            if dropped:
                logger.error("metric writer closed with %d points it could not write", dropped)

    def shutdown(self, reason: str) -> None:
        """Flush and stop at process exit or on a signal (errors are logged, not raised)."""
        try:
            self.close(SHUTDOWN_TIMEOUT_S)
        except Exception:
            logger.exception("metric writer could not flush on %s", reason)

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._forked:
            raise ValidationError(
                "this metric writer belongs to the parent process; attach to the run "
                "again in the child (RunTracker.attach)"
            )
        if self._closed:
            raise ValidationError("the metric writer is closed")
        error = self._error
        if error is not None:
            self._error = None
            raise error

    # -- the writer thread -----------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._flush_interval)
            except queue.Empty:
                with self._lock:
                    batch = self._take()
                if batch is not None:
                    self._write(batch)
                continue
            if item is _STOP:
                return
            if isinstance(item, _FlushRequest):
                if self._failed:
                    self._retry_failed()
                if self._failed:
                    item.error = self._error or StorageError("earlier metric batches failed")
                item.done.set()
            else:
                self._write(item)

    def _write(self, batch: MetricBatch) -> None:
        if self._failed:
            self._retry_failed()
        if self._failed:  # still failing: keep order, try again later
            self._failed.append(batch)
            return
        try:
            self._sink(batch)
        except BaseException as exc:
            self._failed.append(batch)
            self._error = exc
            logger.warning("metric batch write failed (will retry): %s", exc)
        else:
            self.points_written += sum(int(array.shape[0]) for array in batch.values())

    def _retry_failed(self) -> None:
        while self._failed:
            batch = self._failed[0]
            try:
                self._sink(batch)
            except BaseException as exc:
                self._error = exc
                return
            self._failed.pop(0)
            self.points_written += sum(int(array.shape[0]) for array in batch.values())
        self._error = None

    def __repr__(self) -> str:
        return f"MetricWriter(buffered={self._buffered}, written={self.points_written})"


def _columns(
    rows: list[tuple[tuple[str, ...], float, float, float, tuple[float, ...]]],
) -> dict[str, npt.NDArray[np.float64]]:
    """Per metric, a float64 (n, 4) array of step, epoch, time, value, in the order logged.

    Rows logged with the same metric names (the usual case: one dict shape per
    call site) are converted together, one NumPy call per group.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(row[0], []).append(index)
    pieces: dict[str, list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]] = {}
    for names, indices in groups.items():
        chosen = [rows[i] for i in indices]
        meta = np.array([row[1:4] for row in chosen], dtype=np.float64).reshape(-1, 3)
        values = np.array([row[4] for row in chosen], dtype=np.float64).reshape(-1, len(names))
        order = np.asarray(indices, dtype=np.int64)
        for column, name in enumerate(names):
            block = np.empty((len(chosen), 4), dtype=np.float64)
            block[:, :3] = meta
            block[:, 3] = values[:, column]
            pieces.setdefault(name, []).append((order, block))
    columns: dict[str, npt.NDArray[np.float64]] = {}
    for name, parts in pieces.items():
        if len(parts) == 1:
            columns[name] = parts[0][1]
            continue
        # a metric logged from several call sites: back into the order it was logged
        order = np.concatenate([indices for indices, _ in parts])
        blocks = np.concatenate([block for _, block in parts])
        columns[name] = blocks[np.argsort(order, kind="stable")]
    return columns
