"""The batcher alone: what is queued goes together, and a fast model runs on the event
loop while a slow one runs in a worker thread."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from weightbase.serving.batching import Batcher, BatchStats


def _batcher(
    run: Any, *, inline_below_ms: float, batch_size: int = 4, max_wait_ms: float = 1.0
) -> tuple[Batcher, list[BatchStats]]:
    seen: list[BatchStats] = []
    batcher = Batcher(
        run,
        executor=ThreadPoolExecutor(max_workers=1),
        batch_size=batch_size,
        max_wait_ms=max_wait_ms,
        inline_below_ms=inline_below_ms,
        on_batch=lambda stats, _: seen.append(stats),
    )
    return batcher, seen


def _threads_of(inline_below_ms: float, sleep_s: float) -> tuple[int, list[int]]:
    """The loop's thread, and the thread each of four batches ran in."""
    ran: list[int] = []

    def run(inputs: list[Any]) -> list[Any]:
        ran.append(threading.get_ident())
        time.sleep(sleep_s)
        return [item * 2 for item in inputs]

    async def main() -> int:
        batcher, _ = _batcher(run, inline_below_ms=inline_below_ms, batch_size=1)
        for value in range(4):
            assert await batcher.submit([value]) == [value * 2]
        await batcher.close()
        return threading.get_ident()

    return asyncio.run(main()), ran


def test_a_fast_model_runs_on_the_loop_after_its_first_batch() -> None:
    loop_thread, ran = _threads_of(inline_below_ms=50.0, sleep_s=0.0)
    assert ran[0] != loop_thread  # measured first, in a worker
    assert ran[1:] == [loop_thread] * 3


def test_a_model_slower_than_the_bound_stays_in_a_worker_thread() -> None:
    loop_thread, ran = _threads_of(inline_below_ms=1.0, sleep_s=0.005)
    assert loop_thread not in ran


def test_no_bound_keeps_every_batch_in_a_worker_thread() -> None:
    loop_thread, ran = _threads_of(inline_below_ms=0.0, sleep_s=0.0)
    assert loop_thread not in ran


def test_an_inline_model_error_reaches_every_request_of_its_batch() -> None:
    calls = []

    def run(inputs: list[Any]) -> list[Any]:
        calls.append(list(inputs))
        if len(calls) > 1:
            raise ValueError("bad batch")
        return list(inputs)

    async def main() -> list[Any]:
        batcher, _ = _batcher(run, inline_below_ms=50.0, max_wait_ms=20.0)
        assert await batcher.submit([0]) == [0]
        answers = await asyncio.gather(
            batcher.submit([1]), batcher.submit([2]), return_exceptions=True
        )
        await batcher.close()
        return answers

    answers = asyncio.run(main())
    assert [type(a) for a in answers] == [ValueError, ValueError]
    assert calls[1] == [1, 2]  # one batch, both told


def test_queued_requests_share_one_batch_up_to_its_size() -> None:
    def run(inputs: list[Any]) -> list[Any]:
        return [item + 1 for item in inputs]

    async def main() -> tuple[list[Any], list[BatchStats]]:
        batcher, seen = _batcher(run, inline_below_ms=0.0, batch_size=3, max_wait_ms=50.0)
        answers = await asyncio.gather(*(batcher.submit([k]) for k in range(7)))
        await batcher.close()
        return answers, seen

    answers, seen = asyncio.run(main())
    assert answers == [[k + 1] for k in range(7)]
    assert [stats.inputs for stats in seen] == [3, 3, 1]
    assert all(stats.seconds >= 0 for stats in seen)


@pytest.mark.parametrize("inline_below_ms", [0.0, 50.0])
def test_a_batch_gives_each_request_its_own_outputs(inline_below_ms: float) -> None:
    def run(inputs: list[Any]) -> list[Any]:
        return [sum(item) for item in inputs]

    async def main() -> list[Any]:
        batcher, _ = _batcher(run, inline_below_ms=inline_below_ms, batch_size=8)
        first = await batcher.submit([[1, 2]])
        rest = await asyncio.gather(batcher.submit([[1], [2, 3]]), batcher.submit([[4]]))
        await batcher.close()
        return [first, *rest]

    assert asyncio.run(main()) == [[3], [1, 5], [4]]
