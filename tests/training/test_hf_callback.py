"""``WeightbaseCallback``: a real Hugging Face ``Trainer`` tracked, checkpointed and registered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.tiny_models import tiny_bert_config

from weightbase.datasets import from_numpy
from weightbase.errors import ValidationError
from weightbase.lineage import Node
from weightbase.training.checkpoint import STATE_FILE
from weightbase.workspace import Workspace

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate", reason="the Trainer needs accelerate")

from weightbase.training import WeightbaseCallback  # noqa: E402

SEQUENCE = 16


class _TokenIds(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, ids: np.ndarray, labels: np.ndarray) -> None:
        self.ids = torch.from_numpy(ids)
        self.labels = torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "input_ids": self.ids[index],
            "attention_mask": torch.ones(SEQUENCE, dtype=torch.long),
            "labels": self.labels[index],
        }


class _Explode(transformers.TrainerCallback):  # type: ignore[misc]
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 3:
            raise RuntimeError("boom")


def _data(seed: int, samples: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 100, (samples, SEQUENCE)), rng.integers(0, 2, samples)


def _trainer(tmp_path: Path, callbacks: list[Any], **arguments: Any) -> Any:
    torch.manual_seed(0)
    config = tiny_bert_config(num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf-output"),
        num_train_epochs=2,
        per_device_train_batch_size=16,  # 64 samples: 4 steps an epoch
        per_device_eval_batch_size=32,
        eval_strategy="epoch",
        save_strategy="no",  # weightbase's checkpoints only
        logging_steps=2,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        **arguments,
    )
    return transformers.Trainer(
        model=model,
        args=args,
        train_dataset=_TokenIds(*_data(0, 64)),
        eval_dataset=_TokenIds(*_data(1, 32)),
        callbacks=callbacks,
    )


def test_importing_training_needs_neither_transformers_nor_lightning() -> None:
    code = (
        "import sys, weightbase.training; "
        "print(sorted(m for m in ('transformers', 'lightning') if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_keywords_and_their_defaults(workspace: Workspace) -> None:
    defaults = {
        "name": None,
        "params": {},
        "dataset": None,
        "checkpoint_every": 1,
        "checkpoint_unit": "epoch",
        "monitor": None,
        "mode": "min",
        "keep_last": 2,
        "register_as": None,
        "resume": False,
        "system_metrics": False,
        "log_arguments": True,
    }
    callback = WeightbaseCallback(workspace, "tiny-bert")
    assert {name: getattr(callback, name) for name in defaults} == defaults
    given = {"checkpoint_every": None, "checkpoint_unit": "save", "mode": "max", "resume": 3}
    callback = WeightbaseCallback(workspace, "tiny-bert", **given)  # type: ignore[arg-type]
    assert {name: getattr(callback, name) for name in given} == given
    with pytest.raises(
        TypeError,
        match=r"WeightbaseCallback\.__init__\(\) got an unexpected keyword argument 'monitr'",
    ):
        WeightbaseCallback(workspace, "tiny-bert", monitr="eval_loss")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="checkpoint_unit must be one of"):
        WeightbaseCallback(workspace, "tiny-bert", checkpoint_unit="batch")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="checkpoint_every must be at least 1"):
        WeightbaseCallback(workspace, "tiny-bert", checkpoint_every=0)


def test_trainer_is_tracked_checkpointed_and_registered(
    workspace: Workspace, tmp_path: Path
) -> None:
    ids, labels = _data(0, 64)
    dataset = workspace.datasets.register("tokens", from_numpy(ids, labels))
    callback = WeightbaseCallback(
        workspace,
        "tiny-bert",
        params={"note": "smoke"},
        dataset=dataset,
        monitor="eval_loss",
        register_as="tiny-bert",
    )
    _trainer(tmp_path, [callback]).train()

    run = workspace.runs.get(callback.run_id)
    assert run.status.value == "completed"
    assert run.params["learning_rate"] == pytest.approx(1e-3)
    assert run.params["num_train_epochs"] == 2
    assert run.params["model/hidden_size"] == 32
    assert run.params["note"] == "smoke"
    assert list(workspace.runs.history(run.id, "loss").steps) == [2, 4, 6, 8]
    evaluations = workspace.runs.history(run.id, "eval_loss")
    assert list(evaluations.steps) == [4, 8]
    assert list(evaluations.epochs) == [1.0, 2.0]
    assert list(workspace.runs.history(run.id, "train_loss").steps) == [8]

    # one checkpoint an epoch, taken after that epoch's evaluation, the second a delta
    first, second = callback.training.checkpoints.list()  # type: ignore[union-attr]
    assert [(c.step, c.epoch) for c in (first, second)] == [(4, 1), (8, 2)]
    assert [c.metrics["eval_loss"] for c in (first, second)] == list(evaluations.values)
    assert workspace.store.snapshot(second.snapshot_id).parent == first.snapshot_id
    snapshot = workspace.store.snapshot(second.snapshot_id)
    assert any(name.startswith("optimizer.state.") for name in snapshot.tensors)
    tree = json.loads(workspace.store.file_bytes(snapshot, STATE_FILE))
    assert tree["scheduler"]["last_epoch"] == 8

    version = callback.version
    assert version is not None
    assert version.metrics["eval_loss"] == pytest.approx(min(evaluations.values))
    assert version.model_type == "bert"
    ancestors = {(r.node, r.relation) for r in workspace.models.lineage(version, depth=1)}
    assert ancestors == {
        (Node("run", str(run.id)), "produced_by"),
        (workspace.datasets.node(dataset), "trained_on"),
    }


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_step_checkpoints_keep_the_last_and_the_best(workspace: Workspace, tmp_path: Path) -> None:
    callback = WeightbaseCallback(
        workspace,
        "tiny-bert",
        checkpoint_every=2,
        checkpoint_unit="step",
        monitor="loss",
        keep_last=1,
    )
    _trainer(tmp_path, [callback]).train()
    checkpoints = callback.training.checkpoints  # type: ignore[union-attr]
    history = workspace.runs.history(callback.run_id, "loss")
    losses = {int(s): v for s, v in zip(history.steps, history.values, strict=True)}
    best_step = min(losses, key=lambda step: (losses[step], step))
    assert [c.step for c in checkpoints.list()] == sorted({best_step, 8})
    assert checkpoints.best().step == best_step  # type: ignore[union-attr]


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_a_failing_trainer_fails_the_run(workspace: Workspace, tmp_path: Path) -> None:
    callback = WeightbaseCallback(
        workspace, "tiny-bert", checkpoint_every=2, checkpoint_unit="step"
    )
    trainer = _trainer(tmp_path, [callback, _Explode()])
    with pytest.raises(RuntimeError, match="boom"), callback:
        trainer.train()
    run = workspace.runs.get(callback.run_id)
    assert run.status.value == "failed"
    assert run.status_reason == "RuntimeError: boom"
    # the checkpoint taken before the failure is kept, to look at or warm-start from
    assert [c.step for c in callback.training.checkpoints.list()] == [2]  # type: ignore[union-attr]
