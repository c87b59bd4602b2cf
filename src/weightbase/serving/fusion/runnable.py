"""A reactor served like a model: ``load_reactor(wb, "digits")`` (what ``load_runnable``
gives for ``reactor:digits``) runs the members, combines their answers and logs each batch.

Members are built by the server's own loader (``load_runnable``: once per process, shared
with any other use of the same version). Each batch is one fusion operation; operations
are buffered and written by a background thread in batches, so an answer never waits on
the catalog. A cascade runs its members by the interaction graph and priority, each on
the rows the ones before were not confident about.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from weightbase.catalog.base import utcnow
from weightbase.errors import ValidationError
from weightbase.serving.fusion.graph import execution_order
from weightbase.serving.fusion.records import FusionOperation, Member, MemberAnswer, Reactor
from weightbase.serving.fusion.stacking import Combiner, apply_combiner, stack_features
from weightbase.serving.fusion.strategies import (
    Array,
    as_rows,
    confident,
    majority_vote,
    parallel,
    probabilities,
    summary,
    weighted_average,
)
from weightbase.serving.runnable_base import PREDICT, Runnable

if TYPE_CHECKING:
    from weightbase.serving.fusion.service import Reactors
    from weightbase.serving.runnable import Workspace

__all__ = ["REACTOR_PREFIX", "OperationLog", "ReactorRunnable", "fuse", "load_reactor"]

#: A served ref naming a reactor: ``reactor:NAME``.
REACTOR_PREFIX = "reactor:"

_log = logging.getLogger(__name__)


def member_probabilities(member: Member, runnable: Runnable, rows: Sequence[Any]) -> Array:
    """``member``'s class probabilities for ``rows``."""
    return probabilities(as_rows(runnable.predict(list(rows)), member.ref), member.output)


def fuse(
    reactor: Reactor,
    runnables: Mapping[str, Runnable],
    batch: Sequence[Any],
    combiner: Combiner | None = None,
    order: Sequence[Member] | None = None,
) -> tuple[Array, FusionOperation]:
    """The reactor's answer for ``batch`` (one row per input) and the operation it was;
    ``order`` is the members' execution order where the caller has it already."""
    started = time.perf_counter()
    if order is None:
        order = execution_order(reactor.members, reactor.edges)
    voters = [member for member in order if member.role != "validator"]
    answers: dict[str, MemberAnswer] = {}
    outputs: dict[str, Array] = {}
    rows = list(batch)
    escalated = 0

    def run(member: Member, chosen: Sequence[Any]) -> Array:
        began = time.perf_counter()
        found = as_rows(runnables[member.ref].predict(list(chosen)), member.ref)
        latency = (time.perf_counter() - began) * 1000
        shown = found if member.output == "embeddings" else probabilities(found, member.output)
        top, confidence = summary(shown) if member.output != "embeddings" else ([], [])
        answers[member.ref] = MemberAnswer(len(chosen), latency, tuple(top), tuple(confidence))
        outputs[member.ref] = found
        return shown

    if reactor.strategy == "cascade":
        fused, escalated = _cascade(voters, rows, float(reactor.threshold or 0.0), run)
    elif reactor.strategy == "parallel":
        for member in order:
            run(member, rows)
        fused = parallel([outputs[member.ref] for member in order]) if rows else np.zeros((0, 0))
    else:
        shown = [run(member, rows) for member in voters]
        weights = [member.weight for member in voters]
        if reactor.strategy == "weighted_average":
            fused = weighted_average(shown, weights)
        elif reactor.strategy == "majority_vote":
            fused = majority_vote(shown, weights)
        else:
            if combiner is None:
                raise ValidationError(
                    f"stacking reactor {reactor.name!r} has no combiner: fit_stacker first"
                )
            fused = apply_combiner(combiner, stack_features(shown), shown[0].shape[1])
    for member in order:
        if member.role == "validator" and member.ref not in answers:
            run(member, rows)
    scored = reactor.strategy != "parallel" and voters[0].output != "embeddings"
    top, confidence = summary(fused) if scored else ([], [])
    operation = FusionOperation(
        reactor=reactor.name,
        at=utcnow(),
        batch_size=len(rows),
        members=answers,
        argmax=tuple(top),
        confidence=tuple(confidence),
        escalated=escalated,
        latency_ms=(time.perf_counter() - started) * 1000,
    )
    return fused, operation


def _cascade(
    members: Sequence[Member],
    rows: Sequence[Any],
    threshold: float,
    run: Callable[[Member, Sequence[Any]], Array],
) -> tuple[Array, int]:
    """Each member answers the rows it is confident about; the last answers the rest.
    The count escalated is of rows the first member passed on."""
    pending = np.arange(len(rows))
    fused: Array | None = None
    escalated = 0
    for position, member in enumerate(members):
        if pending.size == 0:
            break
        probs = run(member, [rows[index] for index in pending.tolist()])
        if fused is None:
            fused = np.zeros((len(rows), probs.shape[1]), dtype=np.float64)
        last = position == len(members) - 1
        keep = np.ones(pending.size, dtype=bool) if last else confident(probs, threshold)
        fused[pending[keep]] = probs[keep]
        pending = pending[~keep]
        if position == 0:
            escalated = int(pending.size)
    return (np.zeros((0, 0)) if fused is None else fused), escalated


class OperationLog:
    """Fusion operations queued by the answer path and written by a background thread,
    many at a time: ``add`` never blocks (a full queue drops the operation and counts it)."""

    def __init__(
        self,
        reactors: Reactors,
        reactor: str,
        *,
        interval_s: float = 1.0,
        max_batch: int = 1000,
        max_queued: int = 100_000,
    ) -> None:
        self._reactors = reactors
        self._reactor = reactor
        self._interval = interval_s
        self._max_batch = max_batch
        self._queue: queue.Queue[FusionOperation] = queue.Queue(max_queued)
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._writing = 0
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(
            target=self._loop, name=f"reactor-log-{reactor}", daemon=True
        )
        self._thread.start()

    def add(self, operation: FusionOperation) -> None:
        try:
            self._queue.put_nowait(operation)
        except queue.Full:
            self.dropped += 1
        if self._queue.qsize() >= self._max_batch:
            self._wake.set()

    def flush(self, timeout: float = 30.0) -> None:
        """Write what is queued now and wait until it is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while (self._queue.qsize() or self._writing) and time.monotonic() < deadline:
                self._wake.set()
                self._idle.wait(0.05)

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        while True:
            with self._idle:
                batch: list[FusionOperation] = []
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                self._writing = len(batch)
            if not batch:
                with self._idle:
                    self._idle.notify_all()
                return
            try:
                self.written += self._reactors.record_operations(self._reactor, batch)
            except Exception:  # the log must not take the server down: say so, go on
                _log.exception(
                    "reactor %s: %d fusion operations not written", self._reactor, len(batch)
                )
            finally:
                with self._idle:
                    self._writing = 0
                    self._idle.notify_all()


class ReactorRunnable(Runnable):
    """A reactor as a predict model: a batch of rows in, one fused output per row."""

    def __init__(
        self,
        reactor: Reactor,
        runnables: Mapping[str, Runnable],
        combiner: Combiner | None,
        log: OperationLog | None,
        device: str,
    ) -> None:
        self.order = execution_order(reactor.members, reactor.edges)
        first = runnables[self.order[0].ref].version
        # the first member's version, under a snapshot id of the reactor's own, so the
        # server's response cache never mixes a reactor's answers with a member's
        version = dataclasses.replace(
            first, snapshot_id=f"reactor-{reactor.id}-{reactor.updated.timestamp()}"
        )
        super().__init__(PREDICT, version, device)
        self.reactor = reactor
        self.members = dict(runnables)
        self.combiner = combiner
        self.log = log

    def predict(self, batch: Sequence[Any]) -> list[Any]:
        if len(batch) == 0:
            return []
        fused, operation = fuse(self.reactor, self.members, batch, self.combiner, self.order)
        if self.log is not None:
            self.log.add(operation)
        return list(fused)


_lock = threading.Lock()
_logs: dict[str, OperationLog] = {}


def load_reactor(wb: Workspace, name: str, *, device: str = "cpu") -> ReactorRunnable:
    """Reactor ``name`` of ``wb`` with its members built on ``device`` by ``load_runnable``."""
    from weightbase.serving.runnable import load_runnable

    reactors: Reactors | None = getattr(wb, "reactors", None)
    if reactors is None:
        raise ValidationError("this workspace keeps no reactors")
    reactor = reactors.get(name)
    runnables = {
        member.ref: load_runnable(wb, member.ref, device=device) for member in reactor.members
    }
    combiner = None
    if reactor.strategy == "stacking":
        if reactor.stacker is None:
            raise ValidationError(
                f"stacking reactor {reactor.name!r} has no combiner: fit_stacker first",
                reactor=reactor.name,
            )
        combiner = Combiner.from_tensors(wb.store.read(reactor.stacker.snapshot_id))
    with _lock:
        log = _logs.get(reactor.id)
        if log is None:
            log = _logs[reactor.id] = OperationLog(reactors, reactor.id)
    return ReactorRunnable(reactor, runnables, combiner, log, device)
