"""Hostile and odd real-world inputs: each is refused with a typed error, fast, storing nothing.

Through ``import_path`` (what ``weightbase store put`` calls) and ``wb.models.push``; the
symlink rule also through a remote push, which imports the folder on the client.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import weightbase
from weightbase import Workspace
from weightbase.errors import (
    MalformedFileError,
    UnsafeFormatError,
    ValidationError,
    WeightbaseError,
)
from weightbase.tensors import TensorStore, import_path

safetensors_numpy = pytest.importorskip("safetensors.numpy")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TensorStore]:
    opened = TensorStore.open(str(tmp_path / "store"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def wb(tmp_path: Path, weightbase_home: Path) -> Iterator[Workspace]:
    opened = weightbase.open(weightbase_home)
    try:
        yield opened
    finally:
        opened.close()


def _nothing_stored(store: TensorStore) -> None:
    assert list(store.snapshots()) == []
    assert store.refs() == {}


def _nothing_pushed(wb: Workspace) -> None:
    assert list(wb.models.list()) == []
    _nothing_stored(wb.store)


def _weights(path: Path) -> Path:
    safetensors_numpy.save_file({"w": np.arange(4, dtype=np.float32)}, str(path))
    return path


def _model_folder(root: Path) -> Path:
    root.mkdir()
    _weights(root / "model.safetensors")
    (root / "config.json").write_text('{"model_type": "tiny"}')
    return root


def _within(seconds: float, call: Callable[[], object], unblock: Path | None = None) -> Any:
    """What ``call`` raised, failing the test if it had not returned after ``seconds``."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        if unblock is not None:  # a reader blocked on the FIFO: give it a writer, then EOF
            os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(seconds)
        pytest.fail(f"still running after {seconds} s")
    return outcome[0]


# -- safetensors headers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
    ids=["arrays", "objects"],
)
def test_a_deeply_nested_header_is_malformed(
    store: TensorStore, tmp_path: Path, header: bytes
) -> None:
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(
        MalformedFileError, match=r"deep\.safetensors: header nests JSON too deeply"
    ):
        import_path(store, path)
    _nothing_stored(store)


# -- shard indexes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "weight_map",
    [["w"], {"w": 1}, {"w": None}, {"w": ["model.safetensors"]}, "model.safetensors", 7],
    ids=["list", "int", "null", "list-value", "string", "number"],
)
def test_a_shard_index_whose_weight_map_is_not_names_to_files_is_malformed(
    store: TensorStore, tmp_path: Path, weight_map: object
) -> None:
    folder = _model_folder(tmp_path / "sharded")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(MalformedFileError, match=r"model\.safetensors\.index\.json") as caught:
        import_path(store, folder)
    assert caught.value.path == str(folder / "model.safetensors.index.json")
    _nothing_stored(store)


def test_a_shard_index_nested_too_deeply_is_malformed(store: TensorStore, tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "sharded")
    (folder / "model.safetensors.index.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MalformedFileError, match="not a valid shard index"):
        import_path(store, folder)
    _nothing_stored(store)


# -- symlinks --------------------------------------------------------------------------


def test_a_symlink_loop_in_a_folder_is_refused_naming_it(
    store: TensorStore, tmp_path: Path
) -> None:
    folder = _model_folder(tmp_path / "model")
    os.symlink("b", folder / "a")
    os.symlink("a", folder / "b")
    with pytest.raises(ValidationError, match="is a symlink that loops") as caught:
        import_path(store, folder)
    assert caught.value.path == str(folder / "a")
    _nothing_stored(store)


def test_a_dangling_symlink_in_a_folder_is_refused_naming_it(
    store: TensorStore, tmp_path: Path
) -> None:
    folder = _model_folder(tmp_path / "model")
    os.symlink("gone.json", folder / "tokenizer.json")
    with pytest.raises(ValidationError, match=r"tokenizer\.json is a symlink that dangles"):
        import_path(store, folder)
    _nothing_stored(store)


@pytest.fixture
def leaking_folder(tmp_path: Path) -> Path:
    """A model folder whose ``tokenizer.json`` links to a file elsewhere on the machine."""
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not part of any model")
    folder = _model_folder(tmp_path / "model")
    os.symlink(secret, folder / "tokenizer.json")
    return folder


def test_a_symlink_out_of_the_folder_is_refused(store: TensorStore, leaking_folder: Path) -> None:
    with pytest.raises(
        ValidationError, match=r"tokenizer\.json is a symlink to .*outside"
    ) as caught:
        import_path(store, leaking_folder)
    assert caught.value.path == str(leaking_folder / "tokenizer.json")
    _nothing_stored(store)


def test_a_relative_symlink_climbing_out_of_the_folder_is_refused(
    store: TensorStore, tmp_path: Path
) -> None:
    folder = _model_folder(tmp_path / "model")
    _weights(tmp_path / "other.safetensors")
    (folder / "sub").mkdir()
    os.symlink("../../other.safetensors", folder / "sub" / "extra.safetensors")
    with pytest.raises(ValidationError, match="outside"):
        import_path(store, folder)
    _nothing_stored(store)


def test_a_symlinked_folder_out_of_the_folder_is_refused(
    store: TensorStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_text("elsewhere")
    folder = _model_folder(tmp_path / "model")
    os.symlink(outside, folder / "extra")
    with pytest.raises(ValidationError, match=r"extra is a symlink to .*outside"):
        import_path(store, folder)
    _nothing_stored(store)


def test_a_symlink_inside_the_folder_is_followed(store: TensorStore, tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model")
    (folder / "vocab").mkdir()
    (folder / "vocab" / "tokenizer.json").write_text('{"version": "1.0"}')
    os.symlink("vocab/tokenizer.json", folder / "tokenizer.json")
    os.symlink("vocab", folder / "vocab-link")  # a linked folder inside is not walked twice
    snapshot = import_path(store, folder)
    assert store.file_bytes(snapshot, "tokenizer.json") == b'{"version": "1.0"}'
    assert sorted(snapshot.files) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab/tokenizer.json",
    ]


def test_a_push_never_stores_a_file_from_outside_the_folder(
    wb: Workspace, leaking_folder: Path
) -> None:
    with pytest.raises(ValidationError, match="outside"):
        wb.models.push("leaky", leaking_folder)
    _nothing_pushed(wb)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_a_push_never_scans_a_file_from_outside_the_folder(wb: Workspace, tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"w": Pwned()}, protocol=2))
    folder = _model_folder(tmp_path / "model")
    os.symlink(evil, folder / "extra.pt")
    with pytest.raises(ValidationError, match=r"extra\.pt is a symlink to .*outside") as caught:
        wb.models.push("leaky", folder)
    assert not isinstance(caught.value, UnsafeFormatError)
    _nothing_pushed(wb)


def test_a_remote_push_never_sends_a_file_from_outside_the_folder(
    live_server: Any, wb: Workspace, leaking_folder: Path
) -> None:
    with live_server.serving(wb) as remote:
        with pytest.raises(ValidationError, match=r"tokenizer\.json is a symlink to .*outside"):
            remote.models.push("leaky", leaking_folder)
        assert list(remote.models.list()) == []
    _nothing_pushed(wb)


# -- special files ---------------------------------------------------------------------


def test_a_fifo_named_safetensors_is_refused_at_once(store: TensorStore, tmp_path: Path) -> None:
    fifo = tmp_path / "x.safetensors"
    os.mkfifo(fifo)
    error = _within(10, lambda: import_path(store, fifo), unblock=fifo)
    assert isinstance(error, ValidationError), error
    assert "is not a regular file (a FIFO)" in str(error)
    _nothing_stored(store)


@pytest.mark.parametrize("name", ["x.safetensors", "x.pt", "tokenizer.json"])
def test_a_fifo_in_a_folder_is_refused_at_once(
    store: TensorStore, wb: Workspace, tmp_path: Path, name: str
) -> None:
    folder = _model_folder(tmp_path / "model")
    fifo = folder / name
    os.mkfifo(fifo)
    for attempt in (lambda: import_path(store, folder), lambda: wb.models.push("m", folder)):
        error = _within(10, attempt, unblock=fifo)
        assert isinstance(error, ValidationError), error
        assert f"{name} is not a regular file (a FIFO)" in str(error)
    _nothing_stored(store)
    _nothing_pushed(wb)


def test_a_device_is_refused(store: TensorStore, tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model")
    os.symlink("/dev/zero", folder / "weights.safetensors")  # outside the folder anyway
    with pytest.raises(ValidationError, match="outside"):
        import_path(store, folder)
    link = tmp_path / "zero.safetensors"
    os.symlink("/dev/zero", link)
    with pytest.raises(ValidationError, match=r"not a regular file \(a device\)"):
        import_path(store, link)
    _nothing_stored(store)


# -- torch files -----------------------------------------------------------------------


def test_a_meta_device_tensor_is_malformed(store: TensorStore, tmp_path: Path) -> None:
    path = tmp_path / "meta.pt"
    torch.save({"w": torch.ones(2), "lazy": torch.empty(3, device="meta")}, path)
    with pytest.raises(MalformedFileError, match=r"'lazy' is on the meta device"):
        import_path(store, path)
    folder = _model_folder(tmp_path / "model")
    torch.save({"head": torch.empty(3, device="meta")}, folder / "extra.bin")
    with pytest.raises(MalformedFileError, match="meta device"):
        import_path(store, folder)
    _nothing_stored(store)


_NO_UNSAFE_ADVICE = ("weights_only", "arbitrary code", "trusted source")


def _no_unsafe_advice(error: BaseException) -> None:
    for words in _NO_UNSAFE_ADVICE:
        assert words not in str(error)


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(3).bytes(4096),
        b"\x9f" + np.random.default_rng(4).bytes(4095),  # starts with no pickle opcode
        b"hello, this is not a checkpoint\n" * 20,  # printable: walked, and unreadable
        b"PK\x03\x04" + bytes(60),  # a zip that is no archive
        b"",
    ],
    ids=["random", "binary", "text", "broken-zip", "empty"],
)
def test_random_bytes_as_pt_are_not_a_torch_archive(
    store: TensorStore, tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(data)
    with pytest.raises(MalformedFileError, match=r"not a (readable )?torch archive") as caught:
        import_path(store, path)
    _no_unsafe_advice(caught.value)
    _nothing_stored(store)


class Pwned:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, ("echo pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("suffix", [".ckpt", ".pt"])
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_a_pickled_callable_is_named_and_the_unsafe_load_never_advised(
    store: TensorStore, tmp_path: Path, suffix: str, protocol: int
) -> None:
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps({"w": Pwned()}, protocol=protocol))
    with pytest.raises(UnsafeFormatError, match=r"holds a callable `os\.system`") as caught:
        import_path(store, path)
    _no_unsafe_advice(caught.value)
    _nothing_stored(store)


def test_a_torch_archive_with_a_callable_names_it(store: TensorStore, tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"w": torch.ones(2), "hook": Pwned()}, path)
    with pytest.raises(UnsafeFormatError, match=r"holds a callable `os\.system`") as caught:
        import_path(store, path)
    _no_unsafe_advice(caught.value)
    _nothing_stored(store)


def test_escape_codes_in_a_file_name_never_reach_the_message(
    store: TensorStore, tmp_path: Path
) -> None:
    path = tmp_path / "\x1b[31mred\x1b[0m\x07.ckpt"
    path.write_bytes(b"\x9f not a checkpoint")
    with pytest.raises(MalformedFileError) as caught:
        import_path(store, path)
    assert "red.ckpt is not a torch archive" in str(caught.value)
    assert not any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in str(caught.value))


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("\x1b[1;31mbold red\x1b[0m text", "bold red text"),
        ("a\nb\r\nc\td", "a b c d"),
        ("read:\n  a.csv: bad\n  b.csv: worse", "read: a.csv: bad b.csv: worse"),
        ("bell\x07 null\x00 del\x7f c1\x85end", "bell null del c1 end"),
        ("csi\x9b31m c1 \x9d0;title\x9c done", "csi c1  done"),
        ("title \x1b]0;pwned\x07 link \x1b]8;;http://x\x1b\\ end", "title  link  end"),
        ("cursor\x1b[2J\x1b[H moves\x1bc", "cursor moves"),
        ("plain, ünïcode ✓", "plain, ünïcode ✓"),
    ],
)
def test_error_messages_carry_no_control_characters(message: str, shown: str) -> None:
    for error in (WeightbaseError(message), MalformedFileError(message, path="p")):
        assert str(error) == shown
        assert error.message == shown
        assert error.args == (shown,)


# -- empty sources ---------------------------------------------------------------------


@pytest.mark.parametrize("content", [{}, {"config.json": '{"model_type": "tiny"}'}])
def test_a_folder_without_weights_is_refused_like_an_empty_state_dict(
    store: TensorStore, wb: Workspace, tmp_path: Path, content: dict[str, str]
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name, text in content.items():
        (folder / name).write_text(text)
    with pytest.raises(ValidationError, match="no tensors"):
        import_path(store, folder)
    with pytest.raises(ValidationError, match="no tensors"):
        wb.models.push("empty", folder)
    with pytest.raises(ValidationError, match="no tensors"):
        wb.models.push("empty", {})
    _nothing_stored(store)
    _nothing_pushed(wb)
    assert import_path(store, folder, allow_empty=True).tensors == {}  # asked for


def test_a_weights_file_without_tensors_is_refused(store: TensorStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty.safetensors"
    safetensors_numpy.save_file({}, str(empty))
    with pytest.raises(ValidationError, match="no tensors"):
        import_path(store, empty)
    torch.save({}, tmp_path / "empty.pt")
    with pytest.raises(ValidationError, match="no tensors"):
        import_path(store, tmp_path / "empty.pt")
    _nothing_stored(store)
