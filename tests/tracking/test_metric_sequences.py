"""Numbered metric batches on SQLite and PostgreSQL: a batch sent twice is stored once.

And the packed wire format they travel in: bytes in, the same points out, bad input refused.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightbase.errors import Conflict, NotFound, ValidationError
from weightbase.tracking import RunStatus, RunTracker
from weightbase.tracking.wire import decode_batch, encode_batch


def _points(steps: range, value: float = 1.0) -> np.ndarray:
    rows = np.zeros((len(steps), 4))
    rows[:, 0] = list(steps)
    rows[:, 1] = np.nan
    rows[:, 2] = 1.7e9
    rows[:, 3] = value
    return rows


def test_a_repeated_sequence_is_stored_once(tracker: RunTracker) -> None:
    run = tracker.create("sequences")
    store = tracker.metric_store
    assert store.writer_sequence(run.id, "w1") == 0
    assert store.write(run.id, {"loss": _points(range(0, 10))}, writer="w1", sequence=1)
    assert not store.write(run.id, {"loss": _points(range(0, 10))}, writer="w1", sequence=1)
    assert store.write(run.id, {"loss": _points(range(10, 20))}, writer="w1", sequence=2)
    # an older batch arriving late is one already stored
    assert not store.write(run.id, {"loss": _points(range(0, 10))}, writer="w1", sequence=1)
    # another writer numbers its own batches
    assert store.write(run.id, {"acc": _points(range(0, 5))}, writer="w2", sequence=1)
    assert store.writer_sequence(run.id, "w1") == 2
    assert store.writer_sequence(run.id, "w2") == 1
    assert tracker.history(run.id, "loss").steps.tolist() == list(range(20))
    assert tracker.get(run.id).metrics["loss"].count == 20


def test_a_repeat_after_the_run_ended_is_still_a_repeat(tracker: RunTracker) -> None:
    run = tracker.create("sequences")
    store = tracker.metric_store
    assert store.write(run.id, {"loss": _points(range(3))}, writer="w", sequence=1)
    tracker.set_status(run.id, RunStatus.COMPLETED)
    assert not store.write(run.id, {"loss": _points(range(3))}, writer="w", sequence=1)
    with pytest.raises(Conflict):
        store.write(run.id, {"loss": _points(range(3, 6))}, writer="w", sequence=2)
    assert store.writer_sequence(run.id, "w") == 1  # the refused batch claimed nothing


def test_sequenced_writes_are_checked(tracker: RunTracker) -> None:
    run = tracker.create("sequences")
    store = tracker.metric_store
    batch = {"loss": _points(range(3))}
    with pytest.raises(NotFound):
        store.write(999_999, batch, writer="w", sequence=1)
    with pytest.raises(NotFound):
        store.writer_sequence(999_999, "w")
    with pytest.raises(ValidationError, match="both"):
        store.write(run.id, batch, writer="w")
    with pytest.raises(ValidationError, match="writer id"):
        store.write(run.id, batch, writer="not ok!", sequence=1)
    with pytest.raises(ValidationError, match="sequence"):
        store.write(run.id, batch, writer="w", sequence=0)
    assert tracker.metric_names(run.id) == []


def test_racing_deliveries_of_one_batch_store_it_once(tracker: RunTracker) -> None:
    run = tracker.create("sequences")
    store = tracker.metric_store
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        barrier.wait()
        results.append(store.write(run.id, {"loss": _points(range(100))}, writer="w", sequence=1))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert len(tracker.history(run.id, "loss")) == 100


# -- the wire format ----------------------------------------------------------------------

_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}(/[a-z0-9_]{1,10}){0,2}", fullmatch=True),
        st.lists(st.tuples(st.integers(0, 2**53 - 1), _FLOATS), min_size=1, max_size=20),
        max_size=5,
    )
)
def test_a_batch_round_trips_bit_for_bit(series: dict[str, list[tuple[int, float]]]) -> None:
    batch = {}
    for name, points in series.items():
        rows = np.zeros((len(points), 4))
        rows[:, 0] = [step for step, _ in points]
        rows[:, 1] = np.nan
        rows[:, 2] = 1.7e9
        rows[:, 3] = [value for _, value in points]
        batch[name] = rows
    decoded = decode_batch(encode_batch(batch), max_points=10_000)
    assert list(decoded) == list(batch)
    for name, rows in batch.items():
        assert decoded[name].tobytes() == rows.tobytes()


def test_malformed_batches_are_refused() -> None:
    good = encode_batch({"loss": _points(range(4))})
    assert decode_batch(good, max_points=4)["loss"].shape == (4, 4)
    bad_steps = _points(range(4))
    bad_steps[1, 0] = 1.5
    bad_time = _points(range(4))
    bad_time[2, 2] = np.inf
    cases = {
        "short": good[:5],
        "magic": b"XXXX" + good[4:],
        "truncated": good[:-8],
        "steps": encode_batch({"loss": bad_steps}),
        "time": encode_batch({"loss": bad_time}),
        "name": encode_batch({"bad//name": _points(range(1))}),
    }
    for data in cases.values():
        with pytest.raises(ValidationError):
            decode_batch(data, max_points=100)
    with pytest.raises(ValidationError, match="at most 3"):
        decode_batch(good, max_points=3)
