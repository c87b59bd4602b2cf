"""Background checkpoints: the loop waits for a copy of the state only; a write's error is
raised at the next step or at exit, never dropped; a checkpoint is visible once durable."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weightbase.errors import StorageError
from weightbase.training import CheckpointManager, Training
from weightbase.training.background import HostBuffers, OneWriter
from weightbase.workspace import Workspace

torch = pytest.importorskip("torch")


def _model() -> tuple[Any, Any]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return model, optimizer


def _step(model: Any, optimizer: Any) -> None:
    optimizer.zero_grad()
    model(torch.randn(8, 32)).sum().backward()
    optimizer.step()


def test_host_buffers_are_copies_made_once_and_reused() -> None:
    buffers = HostBuffers()
    weight = torch.randn(16, 8)
    before = weight.clone()
    state = np.arange(5, dtype=np.uint32)
    first = buffers.copy({"w": weight, "rng": state})
    pointer = first["w"].data_ptr()
    weight.add_(1.0)  # the loop goes on changing its tensors: the copy keeps the old values
    state += 1
    assert torch.equal(first["w"], before)
    assert np.array_equal(first["rng"], np.arange(5, dtype=np.uint32))
    second = buffers.copy({"w": weight, "rng": state})
    assert second["w"].data_ptr() == pointer  # the same memory, not a new allocation
    assert torch.equal(second["w"], weight)
    third = buffers.copy({"w": torch.randn(4, 4)})  # a new shape gets a new buffer
    assert third["w"].shape == (4, 4)
    assert set(third) == {"w"}


def test_one_writer_keeps_one_job_in_flight_and_raises_its_error() -> None:
    writer: OneWriter[int] = OneWriter()
    release = threading.Event()
    writer.submit(lambda: release.wait(10) and 1)
    assert writer.busy
    assert writer.poll() is None  # still running: nothing to report, no wait
    release.set()
    # the next job starts only once the one in flight has finished; its result comes back
    assert writer.submit(lambda: 2) == 1

    def broken() -> int:
        raise OSError("disk full")

    assert writer.wait() == 2
    writer.submit(broken)
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    assert writer.wait() is None  # raised once, then gone


def test_background_checkpoints_become_visible_when_durable(workspace: Workspace) -> None:
    model, optimizer = _model()
    manager = CheckpointManager(workspace.store, "bg/visible", keep_last=2)
    for step in (1, 2, 3):
        _step(model, optimizer)
        manager.save_async(model=model, optimizer=optimizer, step=step)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    _step(model, optimizer)  # changes the live tensors while the last write may be running
    last = manager.flush()
    assert last is not None
    assert last.step == 3
    assert [c.step for c in manager.list()] == [2, 3]
    assert set(workspace.store.refs("checkpoints/bg/visible/")) == {c.ref for c in manager.list()}
    fresh, _ = _model()
    CheckpointManager(workspace.store, "bg/visible").load(model=fresh)
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, expected[name])  # the state as it was when copied


def _break_refs(workspace: Workspace, run_id: int) -> None:
    """Make the run's ref folder a file: the next checkpoint's ref cannot be written."""
    root = Path(str(workspace.store.objects.local_path("refs/x") or "")).parent
    folder = root / "checkpoints" / "runs" / str(run_id)
    shutil.rmtree(folder)
    folder.write_text("not a folder")


def test_a_failed_background_write_is_raised_at_the_next_step(workspace: Workspace) -> None:
    model, optimizer = _model()
    with Training(workspace, "bg-step", model=model, optimizer=optimizer) as training:
        _step(model, optimizer)
        training.checkpoint({"loss": 1.0}, epoch=1)
        training.flush()
        _break_refs(workspace, training.run.id)
        training.checkpoint({"loss": 0.5}, epoch=2)
        with pytest.raises(StorageError):  # noqa: PT012 - raised by whichever step comes after
            for _ in range(2_000):
                training.step({"loss": 0.1})
                time.sleep(0.005)
        # raised once: the caller chose to go on, so the run completes
        assert [c.step for c in training.checkpoints.list()] == [0]  # the one before stays
    assert workspace.runs.get(training.run.id).status.value == "completed"


def test_a_failed_background_write_is_raised_at_exit(workspace: Workspace) -> None:
    model, optimizer = _model()
    with (  # noqa: PT012 - the error comes at the block's end
        pytest.raises(StorageError),
        Training(workspace, "bg-exit", model=model, optimizer=optimizer) as training,
    ):
        training.checkpoint({"loss": 1.0}, epoch=1)
        training.flush()
        _break_refs(workspace, training.run.id)
        training.checkpoint({"loss": 0.5}, epoch=2)
        run_id = training.run.id
    run = workspace.runs.get(run_id)
    assert run.status.value == "failed"
    assert "checkpoint failed" in (run.status_reason or "")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_background_checkpoint_of_a_cuda_model_copies_to_pinned_host_memory(
    tmp_path: Path,
) -> None:
    from weightbase.tensors import TensorStore

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU()).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with TensorStore.open(tmp_path / "store") as store:
        manager = CheckpointManager(store, "cuda/bg")
        optimizer.zero_grad()
        model(torch.randn(8, 256, device="cuda")).sum().backward()
        optimizer.step()
        manager.save_async(model=model, optimizer=optimizer, step=1)
        expected = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(1.0)  # the device tensors change at once
        assert manager.flush() is not None
        buffers = manager._buffers._buffers  # the reused host copies
        copied = [buffer for name, buffer in buffers.items() if name.startswith("model.")]
        assert copied
        assert all(buffer.is_pinned() for buffer in copied)  # model tensors were on the GPU
        fresh = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU()).cuda()
        manager.load(model=fresh)
        for name, value in fresh.state_dict().items():
            assert torch.equal(value.cpu(), expected[name])
