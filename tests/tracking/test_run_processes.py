"""Crashes and several processes: SIGKILL keeps what was flushed, SIGTERM flushes, none lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from weightbase.tracking import RunStatus, RunTracker

CHILD = Path(__file__).with_name("child_logger.py")
FLUSHED, BUFFERED = 500, 300

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _start_crasher(tracker: RunTracker, tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    child = _spawn(
        "crash",
        str(tmp_path / "child-home"),
        tracker.catalog.engine.url.render_as_string(hide_password=False),
    )
    assert child.stdout is not None
    run_id = int(child.stdout.readline())
    assert child.stdout.readline().strip() == "flushed"
    assert child.stdout.readline().strip() == "buffered"
    return child, run_id


def test_sigkill_keeps_every_flushed_point(tracker: RunTracker, tmp_path: Path) -> None:
    child, run_id = _start_crasher(tracker, tmp_path)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    history = tracker.history(run_id, "loss")
    assert history.steps.tolist() == list(range(FLUSHED))
    assert tracker.get(run_id).status is RunStatus.RUNNING  # nobody could say otherwise


def test_sigterm_flushes_buffered_points_and_fails_the_run(
    tracker: RunTracker, tmp_path: Path
) -> None:
    child, run_id = _start_crasher(tracker, tmp_path)
    child.send_signal(signal.SIGTERM)
    _, errors = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGTERM, errors
    history = tracker.history(run_id, "loss")
    assert history.steps.tolist() == list(range(FLUSHED + BUFFERED))
    run = tracker.get(run_id)
    assert run.status is RunStatus.FAILED
    assert run.status_reason == "terminated by SIGTERM"
    assert run.resources.cpu_hours > 0


def test_sigterm_in_a_tight_logging_loop_loses_nothing(tracker: RunTracker, tmp_path: Path) -> None:
    url = tracker.catalog.engine.url.render_as_string(hide_password=False)
    child = _spawn("spin", str(tmp_path / "spin-home"), url)
    assert child.stdout is not None
    run_id = int(child.stdout.readline())
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    _, errors = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGTERM, errors
    steps = tracker.history(run_id, "loss").steps
    assert steps.shape[0] > 0
    assert steps.tolist() == list(range(steps.shape[0]))  # a prefix, no gaps
    assert tracker.get(run_id).status is RunStatus.FAILED


def test_four_processes_log_into_one_run(tracker: RunTracker, tmp_path: Path) -> None:
    points = 600
    url = tracker.catalog.engine.url.render_as_string(hide_password=False)
    with tracker.start("shared", params={"workers": 4}) as run:
        children = [
            _spawn("attach", str(tmp_path / f"home-{i}"), url, str(run.id), str(i), str(points))
            for i in range(4)
        ]
        for child in children:
            output, errors = child.communicate(timeout=120)
            assert child.returncode == 0, errors
            assert output.strip() == "done"
    shared = tracker.history(run.id, "shared")
    assert shared.steps.tolist() == list(range(4 * points))
    info = tracker.get(run.id)
    assert info.metrics["shared"].count == 4 * points
    assert info.metrics["shared"].last_step == 4 * points - 1
    for i in range(4):
        assert info.metrics[f"proc{i}"].count == points
        assert set(tracker.history(run.id, f"proc{i}").values.tolist()) == {float(i)}
    assert info.status is RunStatus.COMPLETED
