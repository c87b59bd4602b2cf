"""What ``Training.register`` copies into a version's metrics: evaluation metrics, not noise."""

from __future__ import annotations

from typing import Any

import pytest

from weightbase.errors import ValidationError
from weightbase.registry.metrics import is_evaluation_metric
from weightbase.training import Training
from weightbase.workspace import Workspace

torch = pytest.importorskip("torch")

LOGGED = {
    "train_loss": 0.2,
    "train/loss": 0.2,
    "loss": 0.2,
    "grad_norm": 3.1,
    "learning_rate": 1e-3,
    "lr": 1e-3,
    "epoch": 2.0,
    "val_loss": 0.31,
    "val/acc": 0.9,
    "validation/f1": 0.88,
    "eval/accuracy": 0.91,
    "eval_loss": 0.3,
    "test/auc": 0.95,
    "test_accuracy": 0.9,
}
EVALUATION = {"val_loss", "val/acc", "validation/f1", "eval/accuracy", "eval_loss", "test/auc"}
EVALUATION |= {"test_accuracy"}


def _registered(wb: Workspace, **options: Any) -> dict[str, float]:
    model = torch.nn.Linear(4, 2)
    with Training(wb, "noise", model=model, checkpoint_every=None) as training:
        training.checkpoint(LOGGED)
        version = training.register("noise-model", **options)
    return dict(version.metrics)


def test_only_evaluation_metrics_reach_the_version(remote_or_embedded: Workspace) -> None:
    assert _registered(remote_or_embedded).keys() == EVALUATION


def test_the_metrics_kept_can_be_chosen(remote_or_embedded: Workspace) -> None:
    wb = remote_or_embedded
    chosen = _registered(wb, keep_metrics=["grad_*", "val_loss"], metrics={"extra": 1.0})
    assert chosen == {"grad_norm": 3.1, "val_loss": 0.31, "extra": 1.0}
    assert _registered(wb, keep_metrics=["*"]).keys() == LOGGED.keys()
    assert _registered(wb, keep_metrics=[]) == {}


@pytest.mark.parametrize("bad", ["val_*", [1], [""], 3])
def test_a_bad_choice_is_refused(workspace: Workspace, bad: Any) -> None:
    with pytest.raises(ValidationError, match="keep_metrics"):
        _registered(workspace, keep_metrics=bad)


def test_the_default_rule() -> None:
    assert {name for name in LOGGED if is_evaluation_metric(name)} == EVALUATION
    for name in ("valence", "testing_time", "evaluator/steps", "retest"):
        assert not is_evaluation_metric(name)
