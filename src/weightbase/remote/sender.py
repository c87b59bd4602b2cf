"""A remote run's metric batches on their way to the server: numbered, retried, stored once.

:class:`MetricSender` is the sink of a run's
:class:`~weightbase.tracking.writer.MetricWriter`: its background thread hands
over each batch, and the sender ``PUT``s it, packed
(:mod:`weightbase.tracking.wire`), as one or more parts, each numbered by this
writer (``/runs/{id}/writers/{writer}/batches/{sequence}``). The server stores
a part in the transaction that records its sequence, so a part sent again
after a lost answer is answered as a repeat and stored once.

A server that cannot be reached, or answers that it is unavailable, is tried
again with exponential backoff and jitter for as long as the run is open: a
training loop outlives a server restart without losing or duplicating a
point. Only a :attr:`MetricSender.deadline` (set while a flush or the end of
the run waits) or :meth:`MetricSender.abandon` (at interpreter exit) make it
give up, with a ``StorageError``; the batch is then kept, and sent with the
same numbers when tried again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from weightbase.errors import StorageError, WeightbaseError
from weightbase.tracking.wire import MEDIA_TYPE, encode_batch

if TYPE_CHECKING:
    from weightbase.remote.http import Connection
    from weightbase.tracking.writer import MetricBatch

__all__ = ["PART_POINTS", "MetricSender"]

logger = logging.getLogger("weightbase.remote")

#: The most points one request carries (2 MiB packed); halved on a 413 from the server.
PART_POINTS = 65_536
#: Answers that mean "not now": the server restarts, or a proxy in front of it has no backend.
_UNAVAILABLE = frozenset({502, 503, 504})


@dataclass(eq=False)
class _Part:
    """Some points of one batch, sent as one request; its sequence is fixed once first sent."""

    batch: MetricBatch
    sequence: int | None = None
    body: bytes | None = None

    @property
    def points(self) -> int:
        return sum(int(points.shape[0]) for points in self.batch.values())

    def halves(self) -> tuple[_Part, _Part]:
        """This part in two (of at least 2 points); the first keeps its sequence."""
        first, second = _split(self.batch, (self.points + 1) // 2)
        return _Part(first, self.sequence), _Part(second)


class MetricSender:
    """Delivers the metric batches of one writer (one handle on a run) to the server.

    ``writer_id`` names this writer to the server; ``sequence`` is the number of
    the last part it sent. Called on the writer's thread only; ``deadline`` and
    ``abandon`` may be set from any thread.
    """

    def __init__(
        self, connection: Connection, run_id: int, *, part_points: int = PART_POINTS
    ) -> None:
        self.run_id = run_id
        self.writer_id = uuid.uuid4().hex
        self.part_points = part_points
        self.sequence = 0
        #: ``time.monotonic()`` after which an unreachable server is given up on (None: never).
        self.deadline: float | None = None
        #: Points the server has acknowledged; requests tried again; parts it had stored before.
        self.points_sent = 0
        self.retries = 0
        self.repeats = 0
        self._http = connection
        self._path = f"/api/v1/runs/{run_id}/writers/{self.writer_id}/batches"
        # parts of batches handed over and not yet all stored, by the batch's identity: a
        # batch the writer gets back after an error comes again as the same object
        self._pending: dict[int, deque[_Part]] = {}
        self._abandoned = threading.Event()
        self._wake = threading.Event()

    def __repr__(self) -> str:
        return f"MetricSender(run={self.run_id}, writer={self.writer_id}, sent={self.sequence})"

    def __call__(self, batch: MetricBatch) -> None:
        """Store ``batch`` on the server, each part once; raise only when told to give up."""
        parts = self._pending.get(id(batch))
        if parts is None:
            parts = deque(_Part(piece) for piece in _split(batch, self.part_points))
            self._pending[id(batch)] = parts
        while parts:
            part = parts[0]
            if part.sequence is None:
                self.sequence += 1
                part.sequence = self.sequence
            try:
                self._deliver(part)
            except WeightbaseError as exc:
                if getattr(exc, "status", None) != 413 or part.points < 2:
                    raise
                # the server takes smaller bodies: send this part (its number kept) in halves
                self.part_points = max(1, part.points // 2)
                parts.popleft()
                first, second = part.halves()
                parts.extendleft((second, first))
                continue
            parts.popleft()
            self.points_sent += part.points
        del self._pending[id(batch)]

    def abandon(self) -> None:
        """Stop retrying: every delivery from now on fails at once (the process is exiting)."""
        self._abandoned.set()
        self._wake.set()

    def _deliver(self, part: _Part) -> None:
        if part.body is None:
            part.body = encode_batch(part.batch)
        attempt = 0
        while True:
            if self._abandoned.is_set():
                raise StorageError(
                    f"run {self.run_id}: metric points were not sent: the handle gave up "
                    f"on {self._http.url}",
                    run_id=self.run_id,
                )
            try:
                response = self._http.request(
                    "PUT",
                    f"{self._path}/{part.sequence}",
                    content=part.body,
                    headers={"Content-Type": MEDIA_TYPE},
                    retry=False,
                )
            except WeightbaseError as exc:
                if not _unavailable(exc):
                    raise
                attempt += 1
                self._wait(attempt, part, exc)
                continue
            if response.json().get("repeat"):
                self.repeats += 1  # stored before; its answer was lost
            if attempt:
                logger.warning(
                    "run %d: the server took metric batch %d again after %d retries",
                    self.run_id,
                    part.sequence,
                    attempt,
                )
            return

    def _wait(self, attempt: int, part: _Part, error: WeightbaseError) -> None:
        self.retries += 1
        wait = self._http.retry.wait(attempt)
        deadline = self.deadline
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StorageError(
                    f"run {self.run_id}: the server at {self._http.url} has not acknowledged "
                    f"every metric point in time ({error}); nothing was dropped: the handle "
                    "keeps them and goes on trying, so flush() or end the run again",
                    run_id=self.run_id,
                    retryable=True,
                ) from error
            wait = min(wait, left)
        if attempt == 1:
            logger.warning(
                "run %d: metric batch %d not delivered (%s); retrying with backoff",
                self.run_id,
                part.sequence,
                error,
            )
        self._wake.wait(wait)


def _unavailable(error: WeightbaseError) -> bool:
    """Whether ``error`` means the server could not be reached or could not answer now."""
    return isinstance(error, StorageError) or getattr(error, "status", None) in _UNAVAILABLE


def _split(batch: MetricBatch, limit: int) -> list[MetricBatch]:
    """``batch`` as pieces of at most ``limit`` points, in order (a metric may span two)."""
    return list(_pieces(batch, limit))


def _pieces(batch: MetricBatch, limit: int) -> Iterator[MetricBatch]:
    piece: MetricBatch = {}
    size = 0
    for name, points in batch.items():
        start = 0
        while start < points.shape[0]:
            take = min(limit - size, int(points.shape[0]) - start)
            piece[name] = points[start : start + take]
            size += take
            start += take
            if size == limit:
                yield piece
                piece, size = {}, 0
    if piece:
        yield piece
