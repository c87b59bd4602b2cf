"""Training checkpoints: torch files holding tensors and plain values, pushed and pulled back."""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import remote_variants
from typer.testing import CliRunner

from weightbase.cli import app
from weightbase.errors import ValidationError
from weightbase.tensors import TensorStore, export_path, import_path
from weightbase.tensors.formats.tree import build_tree, encode_tree
from weightbase.workspace import Workspace


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def workspace(remote_or_embedded: Workspace) -> Workspace:
    """Embedded and through a server: both pull a checkpoint back whole."""
    return remote_or_embedded


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TensorStore]:
    with TensorStore.open(tmp_path / "store", chunk_size=64 << 10) as opened:
        yield opened


def _bits(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def assert_same_tree(got: Any, expected: Any, path: str = "") -> None:
    """Equal in structure, container types, key order and types, and tensors bit for bit."""
    assert type(got) is type(expected), (path, type(got), type(expected))
    if isinstance(expected, torch.Tensor):
        assert (got.dtype, got.shape) == (expected.dtype, expected.shape), path
        assert _bits(got) == _bits(expected), path
    elif isinstance(expected, dict):
        assert [(type(k), k) for k in got] == [(type(k), k) for k in expected], path
        for key, value in expected.items():
            assert_same_tree(got[key], value, f"{path}.{key}")
        assert getattr(got, "_metadata", None) == getattr(expected, "_metadata", None), path
    elif isinstance(expected, list | tuple):
        assert len(got) == len(expected), path
        for index, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
            assert_same_tree(mine, theirs, f"{path}[{index}]")
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got), path
    else:
        assert got == expected, path


def _trained() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 2)
    )
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 8)).sum().backward()
    optim.step()
    return model, optim


def lightning_checkpoint() -> dict[str, Any]:
    model, optim = _trained()
    return {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": model.state_dict(),
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4}}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
                "best_model_score": torch.tensor(0.25),
                "best_model_path": "/ckpts/epoch=2.ckpt",
                "kth_value": float("inf"),
                "dirpath": None,
            }
        },
        "optimizer_states": [optim.state_dict()],
        "lr_schedulers": [{"last_epoch": 3, "base_lrs": [1e-3], "_step_count": 4}],
        "hparams_name": "kwargs",
        "hyper_parameters": {"lr": 1e-3, "layers": (8, 16, 2), "dropout": float("nan")},
    }


def optimizer_checkpoint() -> dict[str, Any]:
    model, optim = _trained()
    return {"model": model.state_dict(), "optimizer": optim.state_dict(), "step": 1200}


def trainer_optimizer() -> dict[str, Any]:
    return _trained()[1].state_dict()


CHECKPOINTS = {
    "lightning.ckpt": lightning_checkpoint,
    "checkpoint.pt": optimizer_checkpoint,
    "optimizer.pt": trainer_optimizer,
}


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_checkpoint_round_trips(workspace: Workspace, tmp_path: Path, name: str) -> None:
    checkpoint = CHECKPOINTS[name]()
    path = tmp_path / name
    torch.save(checkpoint, path)
    version = workspace.models.push("ckpt", path)
    assert_same_tree(workspace.models.pull_torch("ckpt"), checkpoint)

    out = workspace.models.export(version, tmp_path / "out" / name)
    assert_same_tree(torch.load(out, weights_only=True), checkpoint)
    # pushing the exported file finds the same version: same tensors, same tree
    assert not workspace.models.push("ckpt", out).created

    arrays = workspace.models.pull("ckpt")
    assert type(arrays) is type(checkpoint)
    folder = workspace.models.export(version, tmp_path / "folder", format="folder")
    assert [p.name for p in folder.iterdir()] == [name]
    assert_same_tree(torch.load(folder / name, weights_only=True), checkpoint)


def test_tensors_are_stored_as_tensors_named_by_their_path(
    store: TensorStore, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoint.pt"
    checkpoint = optimizer_checkpoint()
    torch.save(checkpoint, path)
    snapshot = import_path(store, path)
    assert set(snapshot.tensors) >= {
        "model.0.weight",
        "model.1.running_mean",
        "optimizer.state[0].exp_avg",
        "optimizer.state[5].exp_avg_sq",
        "optimizer.state[0].step",
    }
    assert snapshot.files["checkpoint.pt"].kind == "torch"
    # the same weights as a state dict are the same content (large ones share their chunks)
    again = store.write(checkpoint["model"])
    for name, entry in again.tensors.items():
        assert snapshot.tensors[f"model.{name}"].digest == entry.digest
    assert import_path(store, path).id == snapshot.id


def test_plain_state_dict_files_are_stored_as_before(store: TensorStore, tmp_path: Path) -> None:
    model, _ = _trained()
    path = tmp_path / "model.pth"
    torch.save(model.state_dict(), path)
    snapshot = import_path(store, path)
    assert snapshot.files == {}
    assert dict(snapshot.metadata) == {"format": "torch"}
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    assert snapshot.id == store.write(state, metadata={"format": "torch"}).id


def test_values_of_every_kind_keep_their_types(store: TensorStore, tmp_path: Path) -> None:
    tree = collections.OrderedDict(
        [
            ("z", (1, -(2**70), 0.5, -0.0, float("-inf"), float("nan"), True, None, "é")),
            ("a", {3: [torch.ones(2)], "3": [], "a.b[c]": {"": torch.zeros(1)}}),
            ("empty", ({}, [], ())),
        ]
    )
    path = tmp_path / "values.pt"
    torch.save(tree, path)
    import_path(store, path, ref="v")
    out = export_path(store, "v", tmp_path / "back.pt")
    assert_same_tree(torch.load(out, weights_only=True), tree)
    assert set(store.snapshot("v").tensors) == {"a[3][0]", "a.a.b%5Bc%5D.%"}


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (lambda: {"w": torch.ones(2), "seen": collections.Counter("aab")}, "seen"),
        (
            lambda: {"optimizer_state": {"param_groups": [{"betas": {0.9, 0.99}}]}},
            "optimizer_state.param_groups[0].betas",
        ),
        (lambda: {"hyper_parameters": {"shape": torch.Size([2, 3])}}, "hyper_parameters.shape"),
        (lambda: {"meta": [b"raw bytes"]}, "meta[0]"),
        (lambda: {"keys": {(1, 2): torch.ones(1)}}, "keys"),
    ],
    ids=["counter", "set", "size", "bytes", "tuple-key"],
)
def test_values_outside_the_tree_types_are_refused_with_their_path(
    store: TensorStore, tmp_path: Path, content: Any, where: str
) -> None:
    path = tmp_path / "odd.ckpt"
    torch.save(content(), path)
    with pytest.raises(ValidationError) as caught:
        import_path(store, path)
    assert caught.value.path == where
    assert where in str(caught.value)
    assert list(store.snapshots()) == []


def test_plain_torch_file_pulled_into_a_folder(workspace: Workspace, tmp_path: Path) -> None:
    state = {"w": torch.randn(3, 3), "b": torch.zeros(3)}
    torch.save(state, tmp_path / "weights.pth")
    version = workspace.models.push("plain", tmp_path / "weights.pth")
    folder = workspace.models.export(version, tmp_path / "out", format="folder")
    (written,) = folder.iterdir()
    # a plain state dict comes back as its tensors by name (in name order, as it always did)
    assert_same_tree(torch.load(written, weights_only=True), dict(sorted(state.items())))


def test_cli_push_and_pull_a_checkpoint(
    weightbase_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = lightning_checkpoint()
    torch.save(checkpoint, tmp_path / "last.ckpt")
    runner = CliRunner()
    pushed = runner.invoke(app, ["models", "push", "run", str(tmp_path / "last.ckpt")])
    assert pushed.exit_code == 0, pushed.output
    pulled = runner.invoke(app, ["models", "pull", "run@latest", str(tmp_path / "out.ckpt")])
    assert pulled.exit_code == 0, pulled.output
    assert_same_tree(torch.load(tmp_path / "out.ckpt", weights_only=True), checkpoint)
    helped = runner.invoke(app, ["models", "pull", "--help"], env={"TERMINAL_WIDTH": "200"})
    assert "bit for bit" in helped.output


def test_numpy_pull_of_a_checkpoint_needs_no_torch_types(
    workspace: Workspace, tmp_path: Path
) -> None:
    torch.save({"w": torch.arange(4.0), "step": 7, "groups": [(0.9, 0.99)]}, tmp_path / "c.pt")
    workspace.models.push("np", tmp_path / "c.pt")
    pulled = workspace.models.pull("np")
    assert pulled["step"] == 7
    assert pulled["groups"] == [(0.9, 0.99)]
    assert isinstance(pulled["w"], np.ndarray)
    assert pulled["w"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert workspace.models.pull("np", names=["w"])["w"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_checkpoint_in_a_model_folder(store: TensorStore, tmp_path: Path) -> None:
    model, optim = _trained()
    source = tmp_path / "checkpoint-1200"
    source.mkdir()
    torch.save(model.state_dict(), source / "pytorch_model.bin")
    torch.save(optim.state_dict(), source / "optimizer.pt")
    scheduler = {"last_epoch": 1200, "base_lrs": [1e-3], "_get_lr_called_within_step": False}
    torch.save(scheduler, source / "scheduler.pt")
    (source / "trainer_state.json").write_text('{"global_step": 1200}')
    snapshot = import_path(store, source)
    assert snapshot.files["pytorch_model.bin"].chunks == ()  # a state dict: no tree
    out = export_path(store, snapshot, tmp_path / "out")
    assert_same_tree(torch.load(out / "optimizer.pt", weights_only=True), optim.state_dict())
    assert_same_tree(torch.load(out / "scheduler.pt", weights_only=True), scheduler)
    back = torch.load(out / "pytorch_model.bin", weights_only=True)
    assert_same_tree(back, dict(model.state_dict()))  # a state dict: its tensors, by name


def test_a_file_of_one_tensor(store: TensorStore, tmp_path: Path) -> None:
    tensor = torch.randn(3, 2, dtype=torch.bfloat16)
    torch.save(tensor, tmp_path / "embedding.pt")
    import_path(store, tmp_path / "embedding.pt", ref="e")
    assert set(store.snapshot("e").tensors) == {"tensor"}
    back = torch.load(export_path(store, "e", tmp_path / "back.pt"), weights_only=True)
    assert_same_tree(back, tensor)


_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_keys = st.text(max_size=6) | st.integers(-3, 3)


def _trees(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3)
            | st.lists(children, max_size=3).map(tuple)
            | st.dictionaries(_keys, children, max_size=3)
            | st.dictionaries(_keys, children, max_size=3).map(collections.OrderedDict)
        ),
        max_leaves=12,
    )


@settings(max_examples=200, deadline=None)
@given(_trees(_leaves | st.integers(0, 5).map(lambda n: np.arange(n, dtype=np.int16))))
def test_tree_encoding_round_trips(tree: Any) -> None:
    def is_array(value: Any) -> bool:
        return isinstance(value, np.ndarray)

    try:
        data, arrays = encode_tree(tree, is_tensor=is_array, where="t")
    except ValidationError as refused:
        refusal = str(refused)
    else:
        refusal = ""
    if refusal:  # only two paths naming one array may be refused
        assert "same name" in refusal
        return
    back = build_tree(data, {name: array.copy() for name, array in arrays.items()})
    assert data == encode_tree(back, is_tensor=is_array, where="t")[0]
    assert_same_structure(back, tree)


def assert_same_structure(got: Any, expected: Any) -> None:
    assert type(got) is type(expected)
    if isinstance(expected, np.ndarray):
        assert got.tobytes() == expected.tobytes()
    elif isinstance(expected, dict):
        assert [(type(k), k) for k in got] == [(type(k), k) for k in expected]
        for key in expected:
            assert_same_structure(got[key], expected[key])
    elif isinstance(expected, list | tuple):
        assert len(got) == len(expected)
        for mine, theirs in zip(got, expected, strict=True):
            assert_same_structure(mine, theirs)
    elif isinstance(expected, float):
        assert repr(got) == repr(expected)  # -0.0, nan and inf included
    else:
        assert got == expected
