"""The buffered metric writer on its own, with an in-memory sink: batching, flush, errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from weightbase.errors import StorageError, ValidationError
from weightbase.tracking.writer import MetricBatch, MetricWriter


class Sink:
    """Collects batches; fails while ``failing`` is set; can be held to fill the queue."""

    def __init__(self) -> None:
        self.batches: list[MetricBatch] = []
        self.failing: Exception | None = None
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def __call__(self, batch: MetricBatch) -> None:
        self.gate.wait(10)
        if self.failing is not None:
            raise self.failing
        with self.lock:
            self.batches.append(batch)

    def points(self, name: str) -> np.ndarray:
        with self.lock:
            parts = [batch[name] for batch in self.batches if name in batch]
        return np.concatenate(parts) if parts else np.empty((0, 4))


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def writer(sink: Sink) -> Iterator[MetricWriter]:
    opened = MetricWriter(sink, batch_points=100, flush_interval=3600)
    yield opened
    sink.failing = None
    sink.gate.set()
    opened.close()


def test_points_are_batched_by_size(writer: MetricWriter, sink: Sink) -> None:
    for step in range(250):
        writer.add({"loss": step / 10, "acc": 1.0}, step, float("nan"), 100.0 + step)
    writer.flush()
    sizes = [sum(len(points) for points in batch.values()) for batch in sink.batches]
    assert sizes == [100, 100, 100, 100, 100]
    loss = sink.points("loss")
    assert loss.shape == (250, 4)
    assert loss[:, 0].tolist() == list(range(250))
    assert loss[:, 3].tolist() == [step / 10 for step in range(250)]
    assert np.isnan(loss[:, 1]).all()
    assert writer.points_written == 500


def test_points_are_written_after_the_interval(sink: Sink) -> None:
    writer = MetricWriter(sink, batch_points=10**6, flush_interval=0.05)
    try:
        writer.add({"loss": 1.0}, 0, 0.0, 0.0)
        deadline = time.monotonic() + 5
        while not sink.batches and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(sink.points("loss")) == 1
    finally:
        writer.close()


def test_arrays_and_single_points_mix(writer: MetricWriter, sink: Sink) -> None:
    block = np.array([[5, 0, 0, 0.5], [6, 0, 0, 0.6]], dtype=np.float64)
    writer.add_array("loss", block)
    writer.add({"loss": 0.7}, 7, 0.0, 0.0)
    writer.flush()
    assert sorted(sink.points("loss")[:, 0].tolist()) == [5, 6, 7]


def test_a_failed_write_surfaces_and_is_retried(writer: MetricWriter, sink: Sink) -> None:
    sink.failing = StorageError("database is down", retryable=True)
    writer.add({"loss": 1.0}, 0, 0.0, 0.0)
    with pytest.raises(StorageError, match="database is down"):
        writer.flush()
    writer.add({"loss": 2.0}, 1, 0.0, 0.0)  # the error was reported once; logging goes on
    sink.failing = None
    writer.flush()  # the kept batch goes first, then the new one
    assert sink.points("loss")[:, 3].tolist() == [1.0, 2.0]


def test_a_background_failure_surfaces_on_the_next_add(writer: MetricWriter, sink: Sink) -> None:
    sink.failing = StorageError("disk full")
    for step in range(100):  # one full batch: handed to the writer thread
        writer.add({"loss": 1.0}, step, 0.0, 0.0)
    deadline = time.monotonic() + 5
    while writer._error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(StorageError, match="disk full"):
        writer.add({"loss": 1.0}, 100, 0.0, 0.0)
    sink.failing = None
    writer.flush()
    assert len(sink.points("loss")) == 100


def test_close_raises_when_points_cannot_be_written(sink: Sink) -> None:
    writer = MetricWriter(sink, batch_points=100, flush_interval=3600)
    writer.add({"loss": 1.0}, 0, 0.0, 0.0)
    sink.failing = StorageError("gone")
    with pytest.raises(StorageError):
        writer.close()
    assert writer.closed
    writer.close()  # a second close does nothing
    with pytest.raises(ValidationError, match="closed"):
        writer.add({"loss": 1.0}, 1, 0.0, 0.0)


def test_a_full_queue_makes_add_wait(sink: Sink) -> None:
    writer = MetricWriter(sink, batch_points=1, flush_interval=3600, max_queued_batches=2)
    sink.gate.clear()  # the writer thread blocks on its first batch
    added = threading.Event()

    def produce() -> None:
        for step in range(6):
            writer.add({"loss": 1.0}, step, 0.0, 0.0)
        added.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert not added.wait(0.3)  # 1 batch in the sink, 2 queued: the rest wait
    sink.gate.set()
    producer.join(10)
    assert added.is_set()
    writer.close()
    assert len(sink.points("loss")) == 6


def test_many_threads_lose_nothing(writer: MetricWriter, sink: Sink) -> None:
    def produce(index: int) -> None:
        for step in range(500):
            writer.add({f"t{index}": float(step)}, step, 0.0, 0.0)

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.flush()
    for index in range(4):
        assert sorted(sink.points(f"t{index}")[:, 0].tolist()) == list(range(500))


def test_bad_settings_are_refused(sink: Sink) -> None:
    with pytest.raises(ValidationError):
        MetricWriter(sink, batch_points=0)
    with pytest.raises(ValidationError):
        MetricWriter(sink, flush_interval=0)
    with pytest.raises(ValidationError):
        MetricWriter(sink, max_queued_batches=0)


def test_a_flush_that_times_out_loses_nothing(sink: Sink) -> None:
    writer = MetricWriter(sink, batch_points=10**6, flush_interval=3600, max_queued_batches=1)
    sink.gate.clear()
    writer.add({"loss": 1.0}, 0, 0.0, 0.0)
    with pytest.raises(StorageError, match="did not flush"):
        writer.flush(timeout=0.2)
    writer.add({"loss": 2.0}, 1, 0.0, 0.0)
    sink.gate.set()
    writer.flush()
    writer.close()
    assert sorted(sink.points("loss")[:, 3].tolist()) == [1.0, 2.0]


def test_a_signal_inside_the_writer_waits_for_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from weightbase.tracking import writer as writer_module

    handled: list[int] = []
    monkeypatch.setattr(writer_module, "_terminate", lambda signum, frame: handled.append(signum))
    with writer_module.critical_section():
        writer_module._on_signal(15, None)
        assert handled == []  # held while the buffer may be half-updated
    assert handled == [15]
    writer_module._on_signal(15, None)  # outside: handled at once
    assert handled == [15, 15]
