"""``WeightbaseLightningCallback``: a Lightning ``Trainer`` tracked, checkpointed, registered."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sklearn.datasets import load_digits  # type: ignore[import-untyped]

from weightbase.datasets import from_numpy
from weightbase.errors import ValidationError
from weightbase.lineage import Node
from weightbase.training.checkpoint import STATE_FILE
from weightbase.workspace import Workspace

torch = pytest.importorskip("torch")
lightning = pytest.importorskip("lightning.pytorch")

from weightbase.training import WeightbaseLightningCallback  # noqa: E402

pytestmark = [
    # Lightning's advice for tiny, single-process loaders
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    # lightning 2.6 still calls a torch.utils._pytree API that torch 2.13 deprecates
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated"),
]


class _DigitsMLP(lightning.LightningModule):  # type: ignore[misc]
    def __init__(self, hidden: int = 32, lr: float = 1e-2, fail_at: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
        )

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("boom")
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def _loaders() -> tuple[Any, Any]:
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16
    y = torch.tensor(digits.target)
    train = torch.utils.data.TensorDataset(x[:400], y[:400])
    validation = torch.utils.data.TensorDataset(x[400:600], y[400:600])
    return (
        torch.utils.data.DataLoader(train, batch_size=50, shuffle=True),  # 8 steps an epoch
        torch.utils.data.DataLoader(validation, batch_size=100),
    )


def _fit(callback: Any, **module: Any) -> None:
    torch.manual_seed(0)
    trainer = lightning.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        log_every_n_steps=1,
        callbacks=[callback],
    )
    trainer.fit(_DigitsMLP(**module), *_loaders())


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_keywords_and_their_defaults(workspace: Workspace) -> None:
    callback = WeightbaseLightningCallback(workspace, "digits-mlp", name="a", keep_last=None)
    assert (callback.name, callback.keep_last, callback.checkpoint_every) == ("a", None, 1)
    assert (callback.checkpoint_unit, callback.log_every_n_steps) == ("epoch", None)
    with pytest.raises(
        TypeError, match=r"__init__\(\) got an unexpected keyword argument 'log_arguments'"
    ):
        WeightbaseLightningCallback(workspace, "digits-mlp", log_arguments=False)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="one of 'epoch', 'step', not 'save'"):
        WeightbaseLightningCallback(workspace, "digits-mlp", checkpoint_unit="save")  # type: ignore[arg-type]


def test_fit_is_tracked_checkpointed_and_registered(workspace: Workspace) -> None:
    digits = load_digits()
    dataset = workspace.datasets.register("digits", from_numpy(digits.data, digits.target))
    callback = WeightbaseLightningCallback(
        workspace,
        "digits-lightning",
        params={"batch_size": 50},
        dataset=dataset,
        monitor="val_loss",
        register_as="digits-lightning",
    )
    _fit(callback)

    run = workspace.runs.get(callback.run_id)
    assert run.status.value == "completed"
    assert run.params == {"hidden": 32, "lr": 0.01, "batch_size": 50}
    steps = workspace.runs.history(run.id, "train_loss_step")
    assert list(steps.steps) == list(range(1, 17))
    assert list(steps.epochs) == [0.0] * 8 + [1.0] * 8
    assert list(workspace.runs.history(run.id, "train_loss_epoch").steps) == [8, 16]
    validation = workspace.runs.history(run.id, "val_loss")
    assert list(validation.steps) == [8, 16]
    assert set(workspace.runs.metric_names(run.id)) == {
        "train_loss_step",
        "train_loss_epoch",
        "val_loss",
    }

    first, second = callback.training.checkpoints.list()  # type: ignore[union-attr]
    assert [(c.step, c.epoch) for c in (first, second)] == [(8, 1), (16, 2)]
    assert [c.metrics["val_loss"] for c in (first, second)] == list(validation.values)
    assert workspace.store.snapshot(second.snapshot_id).parent == first.snapshot_id
    snapshot = workspace.store.snapshot(second.snapshot_id)
    assert "optimizer.state.0.exp_avg" in snapshot.tensors
    tree = json.loads(workspace.store.file_bytes(snapshot, STATE_FILE))
    assert tree["scheduler"]["last_epoch"] == 2

    version = callback.version
    assert version is not None
    assert version.metrics["val_loss"] == pytest.approx(min(validation.values))
    ancestors = {(r.node, r.relation) for r in workspace.models.lineage(version, depth=1)}
    assert ancestors == {
        (Node("run", str(run.id)), "produced_by"),
        (workspace.datasets.node(dataset), "trained_on"),
    }


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_step_checkpoints_keep_the_last_and_the_best(workspace: Workspace) -> None:
    callback = WeightbaseLightningCallback(
        workspace,
        "digits-lightning",
        checkpoint_every=4,
        checkpoint_unit="step",
        monitor="train_loss_step",
        keep_last=1,
    )
    _fit(callback)
    history = workspace.runs.history(callback.run_id, "train_loss_step")
    losses = {int(s): v for s, v in zip(history.steps, history.values, strict=True) if s % 4 == 0}
    best = min(losses, key=lambda step: (losses[step], step))
    checkpoints = callback.training.checkpoints  # type: ignore[union-attr]
    assert [c.step for c in checkpoints.list()] == sorted({best, 16})
    assert checkpoints.best().step == best  # type: ignore[union-attr]


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_a_failing_fit_fails_the_run_and_resumes_into_it(workspace: Workspace) -> None:
    failing = WeightbaseLightningCallback(workspace, "digits-lightning", name="flaky")
    with pytest.raises(RuntimeError, match="boom"):
        _fit(failing, fail_at=10)  # in the second epoch, after the first checkpoint
    run = workspace.runs.get(failing.run_id)
    assert run.status.value == "failed"
    assert run.status_reason == "RuntimeError: boom"
    assert [c.step for c in failing.training.checkpoints.list()] == [8]  # type: ignore[union-attr]

    # a Lightning checkpoint carries the callback's state: the run to go on in
    resumed = WeightbaseLightningCallback(workspace, "digits-lightning", resume=True)
    resumed.load_state_dict(failing.state_dict())
    _fit(resumed)
    assert resumed.run_id == failing.run_id
    assert workspace.runs.get(run.id).status.value == "completed"
    # the checkpoint series went on from the failed fit's
    assert [c.step for c in resumed.training.checkpoints.list()] == [8, 16]  # type: ignore[union-attr]
