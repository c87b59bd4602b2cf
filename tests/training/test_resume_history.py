"""A killed and resumed training run's curves: one point per step, the dead attempt's kept aside."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import weightbase

pytest.importorskip("torch")

JOB = Path(__file__).with_name("_training_job.py")


def _job(home: Path, catalog_url: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(JOB), str(home), catalog_url, "4", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_a_run_killed_past_its_checkpoint_resumes_with_single_valued_curves(
    catalog_url: str, tmp_path: Path
) -> None:
    # 5 steps an epoch: the checkpoint of epoch 2 is at step 10; killed at step 13
    killed = _job(tmp_path, catalog_url, tmp_path / "never.bin", "--kill-at-step", "13")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _job(tmp_path, catalog_url, tmp_path / "done.bin", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    run_id = int(killed.stdout.split()[-1])
    assert f"start epoch 2 run {run_id}" in resumed.stdout

    with weightbase.open(tmp_path, catalog_url=catalog_url) as wb:
        history = wb.runs.history(run_id, "train/loss")
        assert history.steps.tolist() == list(range(1, 21))  # one point per step
        assert not history.superseded.any()
        summary = wb.runs.get(run_id).metrics["train/loss"]
        assert summary.count == 20
        assert summary.last_step == 20
        assert summary.last == history.values[-1]

        everything = wb.runs.history(run_id, "train/loss", include_superseded=True)
        assert len(everything) == 23
        dead = everything.steps[everything.superseded]
        assert dead.tolist() == [11, 12, 13]
        kept = everything.values[~everything.superseded]
        np.testing.assert_array_equal(kept, history.values)
        # the epoch-end points up to the checkpoint stay as they were
        assert wb.runs.history(run_id, "epoch/loss").steps.tolist() == [5, 10, 15, 20]
