"""Resuming from a checkpoint's step supersedes the points logged after it (embedded, remote)."""

from __future__ import annotations

import numpy as np
import pytest

from weightbase.errors import ValidationError
from weightbase.workspace import Workspace


def _killed_run(wb: Workspace) -> int:
    """A run whose attempt logged steps 0..9 of two metrics and a system sample, then died."""
    run_id = wb.runs.create("resume", name="job").id
    # a handle that owns nothing lets go leaving the run running, as a SIGKILL does
    run = wb.runs.attach(run_id)
    run.log_series("train/loss", np.linspace(1.0, 0.1, 10), steps=np.arange(10))
    run.log_series("val/loss", [0.9, 0.5], steps=[4, 9])
    run.log_series("system/cpu_percent", [10.0, 20.0, 30.0], steps=[0, 1, 2])
    run.close()
    return run_id


def test_resume_from_a_step_hides_the_later_points(remote_or_embedded: Workspace) -> None:
    wb = remote_or_embedded
    run_id = _killed_run(wb)
    resumed = wb.runs.resume(run_id, from_step=6)
    resumed.log_series("train/loss", [0.3, 0.2, 0.15], steps=[7, 8, 9])
    resumed.log({"val/loss": 0.4}, step=9)
    resumed.flush()

    history = wb.runs.history(run_id, "train/loss")
    assert history.steps.tolist() == list(range(10))
    assert history.values[7:].tolist() == [0.3, 0.2, 0.15]
    assert not history.superseded.any()
    run = wb.runs.get(run_id)
    assert run.metrics["train/loss"].count == 10
    assert run.metrics["train/loss"].last == 0.15
    assert run.metrics["val/loss"].count == 2
    assert run.metrics["val/loss"].last == 0.4
    assert wb.runs.history(run_id, "val/loss").steps.tolist() == [4, 9]
    # system samples count samples, not steps: left alone
    assert len(wb.runs.history(run_id, "system/cpu_percent")) == 3

    everything = wb.runs.history(run_id, "train/loss", include_superseded=True)
    assert len(everything) == 13
    assert everything.steps[everything.superseded].tolist() == [7, 8, 9]
    np.testing.assert_allclose(
        everything.values[everything.superseded], np.linspace(1.0, 0.1, 10)[7:]
    )
    # at one step, the superseded point comes first: it was logged first
    assert everything.superseded[everything.steps == 7].tolist() == [True, False]
    resumed.complete()


def test_a_resume_without_a_step_keeps_every_point(remote_or_embedded: Workspace) -> None:
    wb = remote_or_embedded
    run_id = _killed_run(wb)
    resumed = wb.runs.resume(run_id)
    resumed.log({"train/loss": 0.05})  # after the last step
    resumed.flush()
    assert wb.runs.history(run_id, "train/loss").steps.tolist() == list(range(11))
    resumed.complete()


def test_resuming_from_before_every_point_supersedes_them_all(
    remote_or_embedded: Workspace,
) -> None:
    wb = remote_or_embedded
    run_id = _killed_run(wb)
    resumed = wb.runs.resume(run_id, from_step=-1)
    assert "train/loss" not in wb.runs.get(run_id).metrics
    assert len(wb.runs.history(run_id, "train/loss", include_superseded=True)) == 10
    resumed.log({"train/loss": 2.0})
    resumed.flush()
    assert wb.runs.history(run_id, "train/loss").steps.tolist() == [0]
    resumed.complete()


@pytest.mark.parametrize("step", [-2, 1.5, "3", True])
def test_a_bad_resume_step_is_refused(remote_or_embedded: Workspace, step: object) -> None:
    wb = remote_or_embedded
    run_id = _killed_run(wb)
    with pytest.raises(ValidationError):
        wb.runs.resume(run_id, from_step=step)  # type: ignore[arg-type]
