"""Dynamic batching: requests for one model gathered into one forward pass.

A :class:`Batcher` takes requests on the event loop, takes every request already
queued and waits up to ``max_wait_ms`` for more (until ``batch_size`` inputs), then runs
them together in a worker thread, so the loop keeps answering while the model computes.
A model whose batches take less than ``inline_below_ms`` (a small MLP: tens of
microseconds) runs on the loop itself instead: handing it to a thread and back would cost
more than the forward pass. A request whose caller gave up (timeout) before its batch ran
is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batcher", "BatchStats"]


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What a batch was: how many inputs, how long the forward pass took."""

    inputs: int
    seconds: float


@dataclass(slots=True)
class _Pending:
    inputs: list[Any]
    future: asyncio.Future[list[Any]]
    queued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Gathers inputs for ``run(inputs) -> outputs`` (one output per input) into batches.

    ``on_batch(stats, queue_times)`` is told of each batch run (for the metrics).
    """

    def __init__(
        self,
        run: Callable[[list[Any]], Sequence[Any]],
        *,
        executor: Executor,
        batch_size: int,
        max_wait_ms: float,
        inline_below_ms: float = 0.0,
        on_batch: Callable[[BatchStats, list[float]], None] | None = None,
    ) -> None:
        self._run = run
        self._executor = executor
        self._batch_size = batch_size
        self._max_wait = max_wait_ms / 1000
        self._inline_below = inline_below_ms / 1000
        # the typical batch's seconds (a moving average); None until one has run
        self._typical: float | None = None
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._busy = False

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch gathering or running: safe to :meth:`stop`."""
        return not self._busy and self._queue.empty()

    def stop(self) -> None:
        """Stop an idle batcher's task (one that is not idle is left running)."""
        if self.idle and self._task is not None:
            self._task.cancel()

    async def submit(self, inputs: list[Any]) -> list[Any]:
        """The outputs of ``inputs``, computed in a batch with other requests' inputs."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(list(inputs), future))
        return await future

    async def close(self) -> None:
        """Stop gathering; requests still queued are cancelled."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            self._queue.get_nowait().future.cancel()

    async def _loop(self) -> None:
        while True:
            pending = await self._queue.get()
            self._busy = True
            batch = [pending]
            count = len(batch[0].inputs)
            # what is queued already goes without waiting
            while count < self._batch_size and not self._queue.empty():
                pending = self._queue.get_nowait()
                batch.append(pending)
                count += len(pending.inputs)
            deadline = time.perf_counter() + self._max_wait
            while count < self._batch_size:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
                batch.append(pending)
                count += len(pending.inputs)
            try:
                await self._run_batch(batch)
            finally:
                self._busy = False
            del batch, pending  # not held while waiting for the next request

    def _timed(self, inputs: list[Any]) -> tuple[list[Any], float]:
        """The batch's outputs and the seconds its forward pass took."""
        started = time.perf_counter()
        outputs = list(self._run(inputs))
        return outputs, time.perf_counter() - started

    async def _run_batch(self, batch: list[_Pending]) -> None:
        live = [pending for pending in batch if not pending.future.done()]
        if not live:
            return
        inputs = [item for pending in live for item in pending.inputs]
        started = time.perf_counter()
        queue_times = [started - pending.queued for pending in live]
        try:
            if self._typical is not None and self._typical < self._inline_below:
                outputs, seconds = self._timed(inputs)
            else:
                loop = asyncio.get_running_loop()
                outputs, seconds = await loop.run_in_executor(self._executor, self._timed, inputs)
        except Exception as exc:  # every request of the batch gets the model's error
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        self._typical = seconds if self._typical is None else 0.8 * self._typical + 0.2 * seconds
        if self._on_batch is not None:
            self._on_batch(BatchStats(len(inputs), seconds), queue_times)
        if len(outputs) != len(inputs):
            error = RuntimeError(f"the model gave {len(outputs)} outputs for {len(inputs)} inputs")
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        at = 0
        for pending in live:
            part = outputs[at : at + len(pending.inputs)]
            at += len(pending.inputs)
            if not pending.future.done():
                pending.future.set_result(part)
