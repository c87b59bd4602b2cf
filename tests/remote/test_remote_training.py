"""``Training`` on a remote workspace: metrics and checkpoints land on the server; resume works.

A tiny PyTorch model on scikit-learn's digits, trained through
``weightbase.open(url, token=...)``; what it did is checked on the embedded
workspace the server serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_digits
from tests.remote.runs_support import Served, threaded_server

from weightbase.lineage import Node
from weightbase.remote import RemoteWorkspace, connect
from weightbase.remote.run import RemoteRun
from weightbase.training import Training

torch = pytest.importorskip("torch")


@pytest.fixture
def served(tmp_path: Path, weightbase_home: Path) -> Iterator[Served]:
    with threaded_server(tmp_path / "server-home", f"sqlite:///{tmp_path / 'catalog.db'}") as s:
        yield s


@pytest.fixture
def remote(served: Served) -> Iterator[RemoteWorkspace]:
    with connect(served.url, token=served.token) as workspace:
        yield workspace


def _setup(seed: int = 0) -> tuple[Any, Any, Any, Any]:
    torch.manual_seed(seed)
    digits = load_digits()
    x = torch.tensor(digits.data[:300], dtype=torch.float32) / 16
    y = torch.tensor(digits.target[:300])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=50, shuffle=True
    )
    model = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return model, optimizer, loader, (x, y)


def _train(
    training: Training[Any], loader: Any, data: Any, epochs: int, stop: int | None = None
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


def test_training_logs_and_checkpoints_on_the_server(
    remote: RemoteWorkspace, served: Served
) -> None:
    model, optimizer, loader, data = _setup()
    with Training(
        remote, "remote-mlp", model=model, optimizer=optimizer, monitor="val_loss", keep_last=1
    ) as training:
        assert isinstance(training.run, RemoteRun)
        _train(training, loader, data, epochs=3)
        version = training.register("remote-mlp")
        run_id = training.run.id

    server = served.workspace
    run = server.runs.get(run_id)
    assert run.status.value == "completed"
    assert len(server.runs.history(run_id, "train_loss")) == 3 * 6
    history = server.runs.history(run_id, "val_loss")
    assert len(history) == 3
    # the checkpoints are the server's: the last one and the best, each a ref there
    refs = server.store.refs(f"checkpoints/runs/{run_id}/")
    assert 1 <= len(refs) <= 2
    assert version.metrics["val_loss"] == pytest.approx(min(history.values))
    ancestors = {(r.node, r.relation) for r in server.models.lineage(version, depth=1)}
    assert ancestors == {(Node("run", str(run_id)), "produced_by")}
    # the version holds the weights of the best checkpoint, read back from the server
    best = training.checkpoints.best()
    assert best is not None
    checkpointed = server.store.read_torch(server.store.snapshot(best.snapshot_id))
    pulled = remote.models.pull_torch(version)
    assert set(pulled) == set(model.state_dict())
    for name, tensor in pulled.items():
        assert torch.equal(tensor, checkpointed[f"model.{name}"]), name


def test_interrupted_remote_training_resumes_bit_exactly(
    remote: RemoteWorkspace, served: Served
) -> None:
    model, optimizer, loader, data = _setup()
    with Training(remote, "straight", model=model, optimizer=optimizer) as straight:
        _train(straight, loader, data, epochs=4)
    expected = {name: value.clone() for name, value in model.state_dict().items()}

    model, optimizer, loader, data = _setup()
    with (
        pytest.raises(KeyboardInterrupt),
        Training(remote, "resumed", model=model, optimizer=optimizer, name="r") as first,
    ):
        _train(first, loader, data, epochs=4, stop=2)
    assert served.workspace.runs.get(first.run.id).status.value == "cancelled"

    model, optimizer, loader, data = _setup(seed=123)  # other weights: the checkpoint restores
    with Training(
        remote, "resumed", model=model, optimizer=optimizer, name="r", resume=True
    ) as second:
        assert (second.start_epoch, second.step_count) == (2, 12)
        assert second.run.id == first.run.id
        _train(second, loader, data, epochs=4)
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected[name]), name
    history = served.workspace.runs.history(second.run.id, "val_loss")
    assert history.steps.tolist() == [6, 12, 18, 24]
    assert served.workspace.runs.get(second.run.id).status.value == "completed"
