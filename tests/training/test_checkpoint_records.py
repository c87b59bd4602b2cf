"""Checkpoints as catalog facts (rows, lineage), registration that reuses the checkpoint's
chunks, and the checkpoint index read once per run. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from sklearn.datasets import load_digits

from weightbase.errors import NotSupported
from weightbase.lineage import Node
from weightbase.tensors import TensorStore
from weightbase.training import Training
from weightbase.training.records import UNRECORDED, checkpoint_history, checkpoint_log
from weightbase.workspace import Workspace

torch = pytest.importorskip("torch")


def _setup(seed: int = 0) -> tuple[Any, Any, Any, Any]:
    torch.manual_seed(seed)
    digits = load_digits()
    x = torch.tensor(digits.data[:200], dtype=torch.float32) / 16
    y = torch.tensor(digits.target[:200])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=50, shuffle=True
    )
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return model, optimizer, loader, (x, y)


def _train(training: Training[Any], loader: Any, data: Any, epochs: int) -> None:
    x, y = data
    model, optimizer = training.model, training.optimizer
    for _ in training.epochs(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            training.step({"train_loss": loss})
        with torch.no_grad():
            val = torch.nn.functional.cross_entropy(model(x), y).item()
        training.end_epoch({"val_loss": val})


def _chunks(store: TensorStore) -> tuple[int, int]:
    infos = list(store.objects.list("chunks/"))
    return len(infos), sum(info.size for info in infos)


def test_each_checkpoint_is_a_row_of_its_run_with_lineage(workspace: Workspace) -> None:
    model, optimizer, loader, data = _setup()
    with Training(
        workspace, "rows", model=model, optimizer=optimizer, monitor="val_loss", keep_last=1
    ) as training:
        _train(training, loader, data, epochs=4)
        run_id = training.run.id
        kept = {c.ref: c for c in training.checkpoints.list()}

    rows = checkpoint_history(workspace, run_id)
    assert [row.step for row in rows] == [4, 8, 12, 16]
    assert [row.epoch for row in rows] == [1, 2, 3, 4]
    # kept rows are exactly the refs the store still holds; the others say when they went
    assert {row.ref for row in rows if row.status == "kept"} == set(kept)
    assert set(workspace.store.refs(f"checkpoints/runs/{run_id}/")) == set(kept)
    for row in rows:
        assert row.run_id == run_id
        assert set(row.metrics) == {"val_loss"}
        assert (row.pruned_at is None) == (row.status == "kept")
        if row.status == "kept":
            assert row.snapshot_id == kept[row.ref].snapshot_id
            assert row.metrics["val_loss"] == kept[row.ref].metrics["val_loss"]
    # what each one stored anew: all of the first; of the later ones, what they did not share
    sizes = [workspace.store.snapshot(row.snapshot_id).stored_bytes for row in rows]
    assert rows[0].stored_bytes == sizes[0]
    assert all(0 < row.stored_bytes <= size for row, size in zip(rows, sizes, strict=True))
    # (checkpoint) produced_by (run), for every checkpoint the run took
    edges = workspace.lineage.edges(Node("run", str(run_id)), direction="in")
    assert {e.source for e in edges if e.relation == "produced_by"} == {
        Node("checkpoint", row.ref) for row in rows
    }


def test_registering_a_checkpoint_writes_no_chunk(workspace: Workspace) -> None:
    model, optimizer, loader, data = _setup()
    with Training(workspace, "reuse", model=model, optimizer=optimizer, keep_last=2) as training:
        _train(training, loader, data, epochs=2)
        training.flush()  # the last checkpoint, written in the background, is durable
        before = _chunks(workspace.store)
        started = time.perf_counter()
        version = training.register("reuse-mlp", checkpoint="latest")
        seconds = time.perf_counter() - started
        checkpoint = training.checkpoints.latest()
        assert checkpoint is not None

    assert _chunks(workspace.store) == before  # not one chunk written
    assert seconds < 5  # milliseconds in practice; generous for a shared machine
    source = workspace.store.snapshot(checkpoint.snapshot_id)
    snapshot = workspace.store.snapshot(version.snapshot_id)
    assert set(snapshot.tensors) == set(model.state_dict())
    for name, entry in snapshot.tensors.items():
        assert entry == source.tensors[f"model.{name}"]  # the checkpoint's own chunks
    weights = workspace.store.read_torch(snapshot)
    for name, value in model.state_dict().items():
        assert torch.equal(weights[name], value)
    # the same version facts a plain push of the model records
    pushed = workspace.models.push("reuse-plain", model)
    assert version.content_digest == pushed.content_digest
    for field in ("total_params", "trainable_params", "logical_bytes", "dtypes", "framework"):
        assert getattr(version, field) == getattr(pushed, field), field
    # all but stored bytes: small tensors share packs with the optimizer's state
    assert replace(workspace.models.analysis(version), stored_bytes=0) == replace(
        workspace.models.analysis(pushed), stored_bytes=0
    )
    # lineage as before
    edges = workspace.lineage.edges(Node("model_version", str(version.id)), direction="out")
    assert any(e.relation == "produced_by" for e in edges)


def test_the_checkpoint_index_is_read_once_per_run(workspace: Workspace) -> None:
    model, optimizer, loader, data = _setup()
    with Training(workspace, "index", model=model, optimizer=optimizer, keep_last=None) as training:
        _train(training, loader, data, epochs=2)
        manager = training.checkpoints
        listed = manager.list()
        assert len(listed) == 2
        # another process drops a ref: this run's index does not read the store again
        with TensorStore.open(workspace.store.objects.url) as other:
            other.delete_ref(listed[0].ref)
        assert manager.list() == listed
        manager.refresh()
        assert manager.list() == listed[1:]


def test_a_workspace_without_a_catalog_records_nothing(workspace: Workspace) -> None:
    assert checkpoint_log(object(), 1) is UNRECORDED
    with pytest.raises(NotSupported):
        checkpoint_history(object(), 1)
    UNRECORDED.pruned(["checkpoints/runs/1/0"])  # a no-op, by design


def test_a_checkpoint_saved_again_updates_its_row(workspace: Workspace) -> None:
    model, optimizer, _, _ = _setup()
    with Training(
        workspace, "again", model=model, optimizer=optimizer, background_checkpoints=False
    ) as training:
        first = training.checkpoint({"val_loss": 2.0}, epoch=0)
        second = training.checkpoint({"val_loss": 1.0}, epoch=0)  # the same step: same ref
        run_id = training.run.id
    assert first is not None
    assert second is not None
    assert first.ref == second.ref
    rows = checkpoint_history(workspace, run_id)
    assert len(rows) == 1
    assert rows[0].metrics == {"val_loss": 1.0}
    assert rows[0].snapshot_id == second.snapshot_id


def test_registering_with_an_entry_point_records_it_and_writes_no_chunk(
    workspace: Workspace,
) -> None:
    from weightbase.sample_models import DIGITS_MLP, DigitsMLP
    from weightbase.serving.entry_points import entry_point_of

    torch.manual_seed(0)
    model = DigitsMLP(hidden=32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with Training(workspace, "entry", model=model, optimizer=optimizer) as training:
        optimizer.zero_grad()
        model(torch.rand(8, 64)).sum().backward()
        optimizer.step()
        training.checkpoint({"val_loss": 1.0}, epoch=1)
        training.flush()
        before = _chunks(workspace.store)
        version = training.register("entry-mlp", entry_point=DIGITS_MLP, init_args={"hidden": 32})
    assert _chunks(workspace.store) == before
    entry = entry_point_of(workspace.store.snapshot(version.snapshot_id))
    assert entry is not None
    assert entry.target == DIGITS_MLP
    assert dict(entry.init_args) == {"hidden": 32}
