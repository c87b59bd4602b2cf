"""The sample recorder the inference server calls once per request.

    recorder = SampleRecorder(wb.monitoring, rate=0.1, flush_interval_s=5)
    recorder.start()                                   # a background flush thread
    recorder.observe("digits@1.0.0", request_id, inputs, outputs, latency_ms=3.2)
    recorder.close()                                   # the last flush, then stop

Whether a request is kept depends on its id alone (a CRC-32 of it against ``rate``), so
every replica keeps the same requests and a label can be joined to them; a request not
kept costs one hash and one comparison. Kept requests wait in memory (at most
``max_per_window`` per flush interval, the rest counted as dropped) and are written in
one batch by :meth:`SampleRecorder.flush`: their inputs and outputs are encoded there, not
on the request path, and one over ``max_bytes`` is stored as ``None`` and marked
truncated. A write that fails is logged and its batch dropped: monitoring never fails or
blocks a request.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import zlib
from datetime import UTC, datetime
from typing import Any

from weightbase.errors import ValidationError
from weightbase.monitoring.records import MAX_REQUEST_ID, ObservedRequest

__all__ = ["SampleRecorder"]

log = logging.getLogger("weightbase.monitoring")

_SCALE = 2**32


def _encoded(value: Any, max_bytes: int) -> tuple[Any, bool]:
    """``value`` as plain JSON data, or ``None`` (and ``True``) when it will not fit.

    Encoded once to measure it; decoded again only where something (a numpy array) had
    to be converted, so plain lists and mappings are kept as they are."""
    if value is None:
        return None, False
    converted: list[bool] = []

    def plain(item: Any) -> Any:
        converted.append(True)
        return _plain(item)

    try:
        text = json.dumps(value, default=plain, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None, True
    if len(text) > max_bytes:
        return None, True
    return (json.loads(text) if converted else value), False


def _plain(value: Any) -> Any:
    """numpy arrays and scalars (and anything with ``tolist``) as lists and numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


class SampleRecorder:
    """Keeps a deterministic share of requests and writes them in batches through
    ``monitoring.record_samples`` (``wb.monitoring``, embedded or remote).

    ``observe`` may be called from any thread (the event loop or workers); ``flush`` and the
    background thread write outside the request path.
    """

    def __init__(
        self,
        monitoring: Any,
        *,
        rate: float = 0.1,
        max_bytes: int = 64 * 1024,
        max_per_window: int = 1000,
        flush_interval_s: float = 5.0,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValidationError(f"rate must be between 0 and 1, not {rate!r}", field="rate")
        for name, value in (("max_bytes", max_bytes), ("max_per_window", max_per_window)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be a positive whole number", field=name)
        if not math.isfinite(flush_interval_s) or flush_interval_s <= 0:
            raise ValidationError("flush_interval_s must be positive", field="flush_interval_s")
        self._monitoring = monitoring
        self.rate = float(rate)
        self.max_bytes = max_bytes
        self.max_per_window = max_per_window
        self.flush_interval_s = float(flush_interval_s)
        # kept when crc32(id) < cutoff: rate 1 keeps all, rate 0 none
        self._cutoff = int(self.rate * _SCALE) if self.rate < 1 else _SCALE
        self._pending: list[tuple[str, str, float, float, str | None, Any, Any]] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.kept = 0  # requests kept so far
        self.dropped = 0  # kept but over the window's cap
        self.written = 0  # samples written to the catalog
        self.failed = 0  # samples whose write failed

    def keeps(self, request_id: str) -> bool:
        """Whether a request with this id is sampled (the same answer everywhere)."""
        return zlib.crc32(request_id.encode()) < self._cutoff

    def observe(
        self,
        target: str,
        request_id: str,
        inputs: Any,
        outputs: Any,
        latency_ms: float,
        error: str | None = None,
    ) -> bool:
        """Note one answered request of ``target`` (``model@version`` or a deployment id);
        whether it was kept. Never raises: a request id that is not text is not sampled.

        Inputs and outputs are held by reference until the next flush: pass values the
        caller does not change afterwards.
        """
        if self._cutoff == 0 or not isinstance(request_id, str):
            return False
        if zlib.crc32(request_id.encode()) >= self._cutoff:
            return False
        with self._lock:
            if len(self._pending) >= self.max_per_window:
                self.dropped += 1
                return False
            self._pending.append(
                (target, request_id, time.time(), latency_ms, error, inputs, outputs)
            )
            self.kept += 1
        return True

    def flush(self) -> int:
        """Write what was kept since the last flush, in one batch; how many were written.

        A failed write is logged and its samples dropped (``failed`` counts them); a batch
        of several targets is then written target by target, so only the samples of the
        target that fails (an unknown version, say) are lost."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, []
            if not pending:
                return 0
            batch = []
            for target, request_id, at, latency_ms, error, inputs, outputs in pending:
                encoded_inputs, cut_inputs = _encoded(inputs, self.max_bytes)
                encoded_outputs, cut_outputs = _encoded(outputs, self.max_bytes)
                try:
                    batch.append(
                        ObservedRequest(
                            target=target,
                            request_id=request_id[:MAX_REQUEST_ID],
                            at=datetime.fromtimestamp(at, UTC),
                            latency_ms=max(0.0, float(latency_ms)),
                            error=None if error is None else str(error),
                            inputs=encoded_inputs,
                            outputs=encoded_outputs,
                            truncated=cut_inputs or cut_outputs,
                        )
                    )
                except (ValidationError, TypeError, ValueError) as exc:
                    log.warning("monitoring sample of %s not kept: %s", request_id, exc)
                    self.failed += 1
            written = self._write(batch)
            self.written += written
            return written

    def _write(self, batch: list[ObservedRequest]) -> int:
        """Write ``batch`` at once; where that fails and it names several targets, each
        target's share on its own, so one unknown target loses only its own samples."""
        try:
            return int(self._monitoring.record_samples(batch))
        except Exception as exc:  # never let monitoring take the server down
            log.warning("%d monitoring samples not recorded: %s", len(batch), exc)
        groups: dict[str, list[ObservedRequest]] = {}
        for item in batch:
            groups.setdefault(item.target, []).append(item)
        if len(groups) == 1:
            self.failed += len(batch)
            return 0
        written = 0
        for target, items in groups.items():
            try:
                written += int(self._monitoring.record_samples(items))
            except Exception as exc:
                log.warning("%d monitoring samples of %s not recorded: %s", len(items), target, exc)
                self.failed += len(items)
        return written

    def start(self) -> None:
        """Flush every ``flush_interval_s`` seconds in a daemon thread until :meth:`close`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._every_interval, name="weightbase-monitoring", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the background thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def __enter__(self) -> SampleRecorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _every_interval(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()
