"""Checkpoints: state round trips, deltas, retention, best, exact resume after SIGKILL."""

from __future__ import annotations

import math
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightbase.errors import NotFound, ValidationError
from weightbase.tensors import TensorStore
from weightbase.training import CheckpointManager
from weightbase.training.state import capture_rng, flatten, restore_rng, unflatten

torch = pytest.importorskip("torch")

JOB = Path(__file__).with_name("_resume_job.py")


@pytest.fixture
def store(tmp_path: Path) -> TensorStore:
    return TensorStore.open(tmp_path / "store")


def _mlp(seed: int = 0, hidden: int = 16) -> Any:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3)
    )


def _train(model: Any, optimizer: Any, steps: int) -> None:
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(4, 8)).pow(2).mean().backward()
        optimizer.step()


# -- the state tree ----------------------------------------------------------------------------

_leaves = (
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=8) | st.floats()
)
_keys = st.text(min_size=1, max_size=6).filter(lambda k: not k.startswith("__")) | st.integers(
    0, 99
)
_trees = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(_keys, children, max_size=4)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (a == b) or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@given(_trees)
def test_any_state_tree_round_trips(tree: Any) -> None:
    tensors: dict[str, Any] = {}
    encoded = flatten(tree, "s", tensors)
    assert tensors == {}
    import json

    assert _same(unflatten(json.loads(json.dumps(encoded)), tensors), tree)


def test_optimizer_state_round_trips_with_int_keys() -> None:
    model = _mlp()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    _train(model, optimizer, 2)
    state = optimizer.state_dict()
    tensors: dict[str, Any] = {}
    back = unflatten(flatten(state, "optimizer", tensors), tensors)
    assert set(back["state"]) == set(state["state"]) == {0, 1, 2, 3}
    for key, group in state["state"].items():
        for name, value in group.items():
            assert torch.equal(back["state"][key][name], value)
    assert back["param_groups"] == state["param_groups"]


def test_rng_state_restores_every_generator() -> None:
    captured = capture_rng()
    tensors: dict[str, Any] = {}
    tree = flatten(captured, "rng", tensors)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    restore_rng(unflatten(tree, tensors))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_unstorable_state_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"cannot store a object at s\.x"):
        flatten({"x": object()}, "s", {})


# -- the manager -------------------------------------------------------------------------------


def test_save_and_load_restore_everything(store: TensorStore) -> None:
    model = _mlp()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    _train(model, optimizer, 3)
    scheduler.step()
    manager = CheckpointManager(store, "run-1")
    saved = manager.save(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        step=3,
        epoch=1,
        metrics={"loss": 0.5},
        extra={"batches": [1, 2], "note": "x"},
    )
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    next_random = torch.rand(3)

    other = _mlp(seed=5)
    other_optimizer = torch.optim.AdamW(other.parameters(), lr=0.1)
    other_scheduler = torch.optim.lr_scheduler.StepLR(other_optimizer, step_size=1, gamma=0.5)
    progress = manager.load(model=other, optimizer=other_optimizer, scheduler=other_scheduler)
    assert (progress.step, progress.epoch, dict(progress.metrics)) == (3, 1, {"loss": 0.5})
    assert progress.extra == {"batches": [1, 2], "note": "x"}
    assert progress.checkpoint == saved
    for name, value in other.state_dict().items():
        assert torch.equal(value, expected[name])
    assert other_scheduler.state_dict() == scheduler.state_dict()
    assert other_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    assert torch.equal(torch.rand(3), next_random)


def test_checkpoints_are_deltas_of_the_last(store: TensorStore) -> None:
    model = torch.nn.Linear(512, 512)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    manager = CheckpointManager(store, "deltas", keep_last=None)
    first = manager.save(model=model, optimizer=optimizer, step=0)
    full = store.snapshot(first.snapshot_id).stored_bytes
    _train_linear(model, optimizer)
    second = manager.save(model=model, optimizer=optimizer, step=1)
    snapshot = store.snapshot(second.snapshot_id)
    assert snapshot.parent == first.snapshot_id
    assert any(ref.bases for entry in snapshot.tensors.values() for ref in entry.chunks)
    new_bytes = store.sharing(first.snapshot_id, second.snapshot_id).only_second_bytes
    assert new_bytes < 0.8 * full


def _train_linear(model: Any, optimizer: Any) -> None:
    optimizer.zero_grad()
    model(torch.randn(2, 512)).sum().backward()
    optimizer.step()


def test_retention_keeps_last_and_best(store: TensorStore) -> None:
    model = _mlp()
    manager = CheckpointManager(store, "keep", keep_last=2, monitor="val", mode="min")
    for step, val in enumerate([0.9, 0.2, 0.5, 0.6, 0.7]):
        manager.save(model=model, step=step, metrics={"val": val})
    assert [c.step for c in manager.list()] == [1, 3, 4]
    best = manager.best()
    assert best is not None
    assert best.step == 1
    manager_max = CheckpointManager(store, "keep-max", keep_last=1, monitor="acc", mode="max")
    for step, acc in enumerate([0.1, 0.9, float("nan"), 0.3]):
        manager_max.save(model=model, step=step, metrics={"acc": acc})
    assert [c.step for c in manager_max.list()] == [1, 3]
    # pruned checkpoints are garbage once their refs are gone; kept ones still load
    store.gc(grace_seconds=0)
    assert store.fsck().ok
    manager.load("best", model=_mlp(seed=3), rng=False)


def test_load_refuses_another_architecture(store: TensorStore) -> None:
    manager = CheckpointManager(store, "arch")
    manager.save(model=_mlp(hidden=16), step=1)
    wider = _mlp(seed=1, hidden=32)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(ValidationError, match="another architecture: shapes or dtypes differ"):
        manager.load(model=wider)
    for name, value in wider.state_dict().items():
        assert torch.equal(value, before[name])
    with pytest.raises(ValidationError, match="the model lacks"):
        manager.load(model=torch.nn.Sequential(torch.nn.Linear(8, 16)))


def test_bad_arguments(store: TensorStore) -> None:
    with pytest.raises(NotFound, match="no checkpoints"):
        CheckpointManager(store, "empty").load(model=_mlp())
    with pytest.raises(ValidationError, match="keep_last"):
        CheckpointManager(store, "x", keep_last=0)
    with pytest.raises(ValidationError, match="not a safe relative name"):
        CheckpointManager(store, "../escape")
    with pytest.raises(ValidationError, match="step"):
        CheckpointManager(store, "x").save(model=_mlp(), step=-1)
    manager = CheckpointManager(store, "no-opt")
    manager.save(model=_mlp(), step=1)
    model = _mlp()
    with pytest.raises(ValidationError, match="no optimizer state"):
        manager.load(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(tmp_path: Path) -> None:
    def run(store: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(JOB), str(store), str(out), "4", *extra],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    straight = run(tmp_path / "a", tmp_path / "straight.bin")
    assert straight.returncode == 0, straight.stderr
    killed = run(tmp_path / "b", tmp_path / "never.bin", "--kill-after", "2")
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "never.bin").exists()
    resumed = run(tmp_path / "b", tmp_path / "resumed.bin", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "resumed.bin").read_bytes() == (tmp_path / "straight.bin").read_bytes()
    # resuming really started from the epoch-2 checkpoint, not from scratch
    assert "start epoch 2 step 16" in resumed.stdout
