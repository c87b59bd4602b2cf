"""``Training``: a plain PyTorch loop with tracking, checkpoints, resume and registration."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_digits

from weightbase.datasets import from_numpy
from weightbase.errors import ValidationError
from weightbase.lineage import Node
from weightbase.training import Training
from weightbase.workspace import Workspace

torch = pytest.importorskip("torch")


def _setup(seed: int = 0) -> tuple[Any, Any, Any, Any]:
    torch.manual_seed(seed)
    digits = load_digits()
    x = torch.tensor(digits.data[:400], dtype=torch.float32) / 16
    y = torch.tensor(digits.target[:400])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=50, shuffle=True
    )
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return model, optimizer, loader, (x, y)


def _train(
    training: Training, loader: Any, data: Any, epochs: int, stop: int | None = None
) -> None:
    x, y = data
    model, optimizer = training.model, training.optimizer
    for epoch in training.epochs(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            training.step({"train_loss": loss})
        with torch.no_grad():
            val = torch.nn.functional.cross_entropy(model(x), y).item()
        training.end_epoch({"val_loss": val})
        if stop is not None and epoch + 1 == stop:
            raise KeyboardInterrupt


def test_training_tracks_checkpoints_and_registers(workspace: Workspace) -> None:
    digits = load_digits()
    dataset = workspace.datasets.register("digits", from_numpy(digits.data, digits.target))
    model, optimizer, loader, data = _setup()
    with Training(
        workspace,
        "digits-mlp",
        model=model,
        optimizer=optimizer,
        params={"lr": 1e-2, "hidden": 32},
        dataset=dataset,
        monitor="val_loss",
        keep_last=1,
    ) as training:
        _train(training, loader, data, epochs=3)
        version = training.register("digits-mlp")
        run_id = training.run.id

    run = workspace.runs.get(run_id)
    assert run.status.value == "completed"
    history = workspace.runs.history(run_id, "val_loss")
    assert len(history) == 3
    assert len(workspace.runs.history(run_id, "train_loss")) == 3 * 8
    # the version holds the best checkpoint's weights and its metric
    best = min(history.values)
    assert version.metrics["val_loss"] == pytest.approx(best)
    assert version.framework == "pytorch"
    ancestors = {(r.node, r.relation) for r in workspace.models.lineage(version, depth=1)}
    assert ancestors == {
        (Node("run", str(run_id)), "produced_by"),
        (workspace.datasets.node(dataset), "trained_on"),
    }
    run_edges = workspace.lineage.edges(Node("run", str(run_id)), direction="out")
    assert [(e.target, e.relation) for e in run_edges] == [
        (workspace.datasets.node(dataset), "trained_on")
    ]


def test_interrupted_training_resumes_where_it_stopped(workspace: Workspace) -> None:
    model, optimizer, loader, data = _setup()
    straight = Training(workspace, "straight", model=model, optimizer=optimizer)
    with straight:
        _train(straight, loader, data, epochs=4)
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    model, optimizer, loader, data = _setup()
    with (
        pytest.raises(KeyboardInterrupt),
        Training(workspace, "resumed", model=model, optimizer=optimizer, name="r") as first,
    ):
        _train(first, loader, data, epochs=4, stop=2)
    assert workspace.runs.get(first.run.id).status.value == "cancelled"

    model, optimizer, loader, data = _setup(seed=123)  # fresh weights: the checkpoint restores
    with Training(
        workspace, "resumed", model=model, optimizer=optimizer, name="r", resume=True
    ) as second:
        assert (second.start_epoch, second.step_count) == (2, 16)
        assert second.run.id == first.run.id
        _train(second, loader, data, epochs=4)
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected[name]), name
    assert len(workspace.runs.history(second.run.id, "val_loss")) == 4


def test_resuming_into_another_architecture_is_refused(workspace: Workspace) -> None:
    model, optimizer, loader, data = _setup()
    with (
        pytest.raises(KeyboardInterrupt),
        Training(workspace, "arch", model=model, optimizer=optimizer, name="r") as first,
    ):
        _train(first, loader, data, epochs=3, stop=1)
    wider = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.ReLU(), torch.nn.Linear(48, 10))
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with (
        pytest.raises(ValidationError, match="another architecture"),
        Training(workspace, "arch", model=wider, name="r", resume=True),
    ):
        pass
    # nothing changed: the model, the run's status, its checkpoint
    for name, value in wider.state_dict().items():
        assert torch.equal(value, before[name])
    assert workspace.runs.get(first.run.id).status.value == "cancelled"
    with Training(
        workspace, "arch", model=model, optimizer=optimizer, name="r", resume=True
    ) as again:
        assert again.start_epoch == 1


def test_register_without_checkpoints_is_refused(workspace: Workspace) -> None:
    model = _setup()[0]
    with (
        Training(workspace, "x", model=model, checkpoint_every=None) as training,
        pytest.raises(ValidationError, match="no checkpoint to register"),
    ):
        training.register("m")
    with pytest.raises(ValidationError, match="checkpoint_every"):
        Training(workspace, "x", model=model, checkpoint_every=0)


@pytest.mark.slow
def test_a_killed_training_resumes_bit_identical(catalog_url: str, tmp_path: Path) -> None:
    job = Path(__file__).with_name("_training_job.py")

    def run(home: str, out: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(job), str(tmp_path / home), catalog_url, "4", out, *extra],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    straight = run("a", str(tmp_path / "straight.bin"))
    assert straight.returncode == 0, straight.stderr
    killed = run("b", str(tmp_path / "never.bin"), "--kill-after", "2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run("b", str(tmp_path / "resumed.bin"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    first_run = killed.stdout.split()[-1]
    assert f"start epoch 2 run {first_run}" in resumed.stdout  # the same run, from epoch 2
    assert (tmp_path / "resumed.bin").read_bytes() == (tmp_path / "straight.bin").read_bytes()


@pytest.mark.slow
def test_a_kill_during_a_background_checkpoint_resumes_from_the_one_before(
    catalog_url: str, tmp_path: Path
) -> None:
    job = Path(__file__).with_name("_training_job.py")

    def run(home: str, out: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(job), str(tmp_path / home), catalog_url, "4", out, *extra],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    straight = run("a", str(tmp_path / "straight.bin"))
    assert straight.returncode == 0, straight.stderr
    killed = run("b", str(tmp_path / "never.bin"), "--kill-in-write", "3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "in flight" in killed.stdout  # the kill landed while epoch 3's write ran
    resumed = run("b", str(tmp_path / "resumed.bin"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    first_run = killed.stdout.split()[4]
    # epoch 3's checkpoint was lost, and nothing older: resume from the newest durable one
    assert f"start epoch 2 run {first_run}" in resumed.stdout
    assert (tmp_path / "resumed.bin").read_bytes() == (tmp_path / "straight.bin").read_bytes()


def test_checkpoints_every_n_steps(workspace: Workspace) -> None:
    model, optimizer, loader, data = _setup()
    with Training(
        workspace,
        "steps",
        model=model,
        optimizer=optimizer,
        checkpoint_every=None,
        checkpoint_every_steps=5,
        keep_last=2,
    ) as training:
        _train(training, loader, data, epochs=2)  # 8 batches an epoch: 16 steps
        kept = training.checkpoints.list()
    assert [c.step for c in kept] == [10, 15]
    assert [c.epoch for c in kept] == [1, 1]  # taken during the second epoch
    assert dict(kept[-1].metrics).keys() == {"train_loss"}
    with pytest.raises(ValidationError, match="checkpoint_every_steps"):
        Training(workspace, "x", model=model, checkpoint_every_steps=0)
