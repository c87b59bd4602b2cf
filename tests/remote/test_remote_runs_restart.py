"""A training loop outlives its server: SIGKILL ``weightbase server`` mid-run, start it again.

``python -m weightbase server`` runs as a real process on a fixed port; the
remote run logs 20,000 points of two metrics while the server is killed and
restarted, then flushes. Every (name, step) point is stored exactly once, with
its value: none lost while the server was away, none stored twice when a batch
whose answer was cut off is sent again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.remote.runs_support import ServerProcess, editor_token, free_port

import weightbase
from weightbase.catalog.schema import MetricWriterRow
from weightbase.remote import connect
from weightbase.remote.runs import RemoteRuns
from weightbase.tracking import RunStatus

POINTS = 20_000
KILL_AT = 6_000
DOWN_SECONDS = 3.0


@pytest.fixture
def server(tmp_path: Path, weightbase_home: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A server process on a fresh home (SQLite catalog), and an editor's token made before."""
    home = weightbase_home
    with weightbase.open(home) as workspace:
        token = editor_token(workspace)
    process = ServerProcess(home, free_port(), tmp_path / "server.log")
    process.start()
    try:
        yield process, token
    finally:
        process.stop()


def _loss(steps: np.ndarray) -> np.ndarray:
    return 1.0 / (steps + 1.0)


class _Later(threading.Thread):
    """``action`` in a thread after ``delay`` seconds; ``join`` raises what it raised."""

    def __init__(self, delay: float, action: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.delay, self.action = delay, action
        self.error: BaseException | None = None

    def run(self) -> None:
        time.sleep(self.delay)
        try:
            self.action()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


def _later(delay: float, action: Callable[[], None]) -> _Later:
    thread = _Later(delay, action)
    thread.start()
    return thread


@pytest.mark.slow
def test_points_survive_a_killed_and_restarted_server_exactly_once(
    server: tuple[ServerProcess, str],
) -> None:
    process, token = server
    with connect(process.url, token=token) as remote:
        # small, frequent batches, so that the kill lands with one of them on the wire
        runs = RemoteRuns(
            remote.connection,
            remote.store,
            batch_points=500,
            flush_interval=0.02,
            flush_timeout=120,
        )
        run = runs.start("restart", name="killed mid-run", params={"points": POINTS})
        for step in range(POINTS):
            run.log({"train/loss": 1.0 / (step + 1.0), "train/step": float(step)}, step=step)
            if step < KILL_AT - 1_000 and step % 1_000 == 999:
                run.flush()
            elif KILL_AT - 1_000 <= step < KILL_AT:
                time.sleep(0.001)  # a steady trickle of batches while the kill comes
            elif step == KILL_AT:
                process.kill()  # the server dies under the writer
                # back on the same port and home a while later; meanwhile the writer
                # retries, and once its queue is full, logging waits for it
                restart = _later(DOWN_SECONDS, process.start)
        restart.join()
        run.flush()
        sent = run.sender
        assert sent.retries > 0  # it did wait for the server
        finished = run.complete()
        assert finished.status is RunStatus.COMPLETED
        assert process.starts == 2

        steps = np.arange(POINTS)
        for name, expected in (("train/loss", _loss(steps)), ("train/step", steps.astype(float))):
            history = runs.history(run.id, name)
            assert len(history) == POINTS, name  # none lost, none twice
            assert np.array_equal(history.steps, steps), name
            assert np.array_equal(history.values, expected), name
            assert finished.metrics[name].count == POINTS

    # the catalog kept this writer's last batch number with its points
    with weightbase.open(process.home) as local, local.catalog.session() as session:
        rows = session.query(MetricWriterRow).filter_by(run_id=run.id).all()
    assert [(row.writer_id, row.sequence) for row in rows] == [(sent.writer_id, sent.sequence)]
