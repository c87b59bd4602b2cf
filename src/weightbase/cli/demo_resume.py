"""The demo's resume part: a training run dies past its checkpoint and is resumed.

The dead attempt logged steps after its last checkpoint; the resumed run logs
those steps again. Its curves keep one point per step: the dead attempt's points
there are superseded, kept and flagged, not shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from weightbase.cli._common import console

if TYPE_CHECKING:
    from weightbase.workspace import Workspace

__all__ = ["render_resume", "resume_after_failure"]

EXPERIMENT = "digits-resume"
EPOCHS = 3
STEPS_PER_EPOCH = 10
#: The first attempt dies this many steps into its second epoch, past epoch 0's checkpoint.
DIES_AFTER = 4


class _WorkerLost(RuntimeError):
    """The stand-in for a dead worker: raised mid-epoch, past the last checkpoint."""


def resume_after_failure(wb: Workspace) -> dict[str, Any]:
    """Train, fail mid-epoch, resume from the checkpoint; report the run's ``train/loss`` curve."""
    import torch
    from sklearn.datasets import load_digits

    from weightbase.training import Training

    digits = load_digits()
    x = torch.from_numpy(digits.data.astype(np.float32) / 16)
    y = torch.from_numpy(digits.target)
    batches = [(x[i : i + 64], y[i : i + 64]) for i in range(0, 64 * STEPS_PER_EPOCH, 64)]

    started: list[int] = []

    def attempt(resume: int | bool) -> int:
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
        )
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        with Training(
            wb, EXPERIMENT, model=model, optimizer=optimizer, keep_last=1, resume=resume
        ) as training:
            started.append(training.run.id)
            for epoch in training.epochs(EPOCHS):
                for index, (xb, yb) in enumerate(batches):
                    if resume is False and epoch == 1 and index == DIES_AFTER:
                        raise _WorkerLost(f"worker lost {DIES_AFTER} steps into epoch 1")
                    optimizer.zero_grad()
                    loss = torch.nn.functional.cross_entropy(model(xb), yb)
                    loss.backward()  # type: ignore[no-untyped-call]
                    optimizer.step()
                    training.step({"train/loss": loss})
                training.end_epoch({})
            return training.run.id

    try:
        attempt(resume=False)
        raise AssertionError("the first attempt was to fail")  # pragma: no cover
    except _WorkerLost as lost:
        died = str(lost)
    run_id = attempt(resume=started[0])  # the failed run, from its latest checkpoint
    shown = wb.runs.history(run_id, "train/loss")
    everything = wb.runs.history(run_id, "train/loss", include_superseded=True)
    steps = shown.steps.tolist()
    return {
        "run": run_id,
        "died": died,
        "steps_logged": len(everything),
        "superseded_steps": everything.steps[everything.superseded].tolist(),
        "curve_points": len(steps),
        "curve_single_valued": len(steps) == len(set(steps)),
        "curve_steps": [steps[0], steps[-1]] if steps else [],
    }


def render_resume(result: dict[str, Any]) -> None:
    """Print the resume part for people."""
    first, last = result["curve_steps"]
    single = "[green]yes[/]" if result["curve_single_valued"] else "[red]NO[/]"
    console.print(
        f"run {result['run']} failed ({result['died']}) and was resumed from its checkpoint: "
        f"{result['steps_logged']} train/loss points logged, steps "
        f"{result['superseded_steps']} of the failed attempt superseded; the curve has "
        f"{result['curve_points']} points, steps {first} to {last}, one a step: {single}\n"
    )
