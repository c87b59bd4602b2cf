"""``Training`` on a remote workspace records no checkpoint rows yet, by design: checkpoints
stay the server's store refs, registration decodes and pushes, and nothing crashes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.remote.runs_support import Served, threaded_server

from weightbase.errors import NotSupported
from weightbase.remote import RemoteWorkspace, connect
from weightbase.training import Training
from weightbase.training.records import UNRECORDED, checkpoint_history, checkpoint_log

torch = pytest.importorskip("torch")


@pytest.fixture
def served(tmp_path: Path, weightbase_home: Path) -> Iterator[Served]:
    with threaded_server(tmp_path / "server-home", f"sqlite:///{tmp_path / 'catalog.db'}") as s:
        yield s


@pytest.fixture
def remote(served: Served) -> Iterator[RemoteWorkspace]:
    with connect(served.url, token=served.token) as workspace:
        yield workspace


def test_remote_training_keeps_checkpoints_as_refs_only(
    remote: RemoteWorkspace, served: Served
) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with Training(remote, "remote-rows", model=model, optimizer=optimizer) as training:
        for epoch in training.epochs(2):
            optimizer.zero_grad()
            model(torch.randn(4, 8)).sum().backward()
            optimizer.step()
            training.step({"loss": float(epoch)})
            training.end_epoch({"val_loss": 1.0 / (epoch + 1)})
        version = training.register("remote-rows")
        run_id = training.run.id
        assert checkpoint_log(remote, run_id) is UNRECORDED
    with pytest.raises(NotSupported):
        checkpoint_history(remote, run_id)
    # the server's store holds the checkpoints; its catalog has no rows for them
    assert served.workspace.store.refs(f"checkpoints/runs/{run_id}/")
    assert checkpoint_history(served.workspace, run_id) == []
    pulled = remote.models.pull_torch(version)
    for name, value in model.state_dict().items():
        assert torch.equal(pulled[name], value)
