"""Fuzzing the tensor formats: safetensors headers, shard indexes, torch archives, HF folders.

Whatever the bytes, an import gives a snapshot or raises a ``WeightbaseError``: never
another exception, never a hang, never a file written outside its folder, never a payload
run (torch files go through the safe loader alone).
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import event, example, given
from hypothesis import strategies as st
from tests.fuzz.conftest import Sandbox, fuzz_settings, refused_or
from tests.fuzz.strategies import (
    DEEP_JSON,
    JSON,
    bytes_like,
    dumps_json,
    is_valid_pickle,
    mutated,
    mutated_zip,
    pickle_streams,
    zip_members,
    zip_of,
)

from weightbase.tensors import TensorStore, import_path
from weightbase.tensors.formats.safetensors import parse_header

# torch warns (a warning, not an error) on a pickle of another protocol than its own
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")

_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1, "BOOL": 1, "F64": 8}


def _safetensors(tensors: dict[str, tuple[str, list[int]]], metadata: Any = None) -> bytes:
    """A safetensors file (valid when the arguments are) with zeroed data."""
    header: dict[str, Any] = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = int(np.prod(shape, dtype=np.int64)) * _DTYPES.get(dtype, 1)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if metadata is not None:
        header["__metadata__"] = metadata
    text = dumps_json(header)
    return struct.pack("<Q", len(text)) + text + bytes(offset)


def _with_length(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header


VALID_TENSORS = st.dictionaries(
    st.sampled_from(["w", "layer.0.weight", "b", "emb"]),
    st.tuples(st.sampled_from(sorted(_DTYPES)), st.lists(st.integers(0, 4), max_size=3)),
    max_size=3,
)


@st.composite
def _mutated_header(draw: st.DrawFn) -> bytes:
    """A valid file whose header JSON has one value swapped for random JSON, or one key gone."""
    tensors = draw(VALID_TENSORS)
    data = _safetensors(tensors, draw(st.none() | st.just({"format": "pt"})))
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    body = data[8 + length :]
    if header:
        name = draw(st.sampled_from(sorted(header)))
        how = draw(st.sampled_from(["value", "field", "drop", "offsets", "add"]))
        entry = header[name]
        if how == "value":
            header[name] = draw(JSON)
        elif how == "field" and isinstance(entry, dict) and entry:
            entry[draw(st.sampled_from(sorted(entry)))] = draw(JSON)
        elif how == "drop":
            del header[name]
        elif how == "offsets" and isinstance(entry, dict) and "data_offsets" in entry:
            entry["data_offsets"] = draw(st.lists(st.integers(-(2**70), 2**70), max_size=3))
        else:
            header[draw(st.text(max_size=6))] = draw(JSON)
    text = dumps_json(header)
    length = draw(st.just(len(text)) | st.integers(0, 2**64 - 1) | st.integers(0, len(text) + 8))
    return struct.pack("<Q", length) + text + body


SAFETENSORS_FILES = (
    _mutated_header()
    | VALID_TENSORS.map(_safetensors).flatmap(bytes_like)
    | st.binary(max_size=64).map(_with_length)
    | JSON.map(dumps_json).map(_with_length)
    | DEEP_JSON.map(_with_length)
)


@contextmanager
def _store(folder: Path) -> Iterator[TensorStore]:
    store = TensorStore.open(str(folder / "store"))
    try:
        yield store
    finally:
        store.close()


def _import(folder: Path, path: Path) -> Any:
    with _store(folder) as store:
        return refused_or(lambda: import_path(store, path))


@fuzz_settings(deadline_s=2)
@given(head=st.binary(max_size=96) | SAFETENSORS_FILES, extra=st.integers(-8, 2**64))
@example(head=b"\x02\x00\x00\x00\x00\x00\x00\x00{}", extra=0)
@example(head=b"", extra=8)  # was struct.error: a head shorter than the size says
# was a header read from the cut head, its data starting one byte early
@example(head=b"\x03\x00\x00\x00\x00\x00\x00\x00{}", extra=1)
# was TypeError (unhashable type: 'list') from a dtype that is a JSON list
@example(head=_with_length(b'{"w":{"dtype":[],"shape":[],"data_offsets":[0,0]}}'), extra=0)
def test_a_safetensors_header_parses_or_is_refused(head: bytes, extra: int) -> None:
    for size in {len(head), max(0, len(head) + extra)}:
        header = refused_or(lambda size=size: parse_header("x.safetensors", size, head))
        if header is not None:
            covered = sum(t.end - t.begin for t in header.tensors)
            assert covered == size - header.data_start


@fuzz_settings(deadline_s=3, scale=0.6)
@given(data=SAFETENSORS_FILES)
def test_a_safetensors_file_imports_or_is_refused(sandbox: Sandbox, data: bytes) -> None:
    with sandbox.folder() as folder:
        source = folder / "model.safetensors"
        source.write_bytes(data)
        snapshot = _import(folder, source)
        event("imported" if snapshot is not None else "refused")


_SHARDS = {
    "model-00001-of-00002.safetensors": {"a": ("F32", [2])},
    "model-00002-of-00002.safetensors": {"b": ("U8", [3])},
}
_WEIGHT_MAP = st.dictionaries(
    st.sampled_from(["a", "b", "c", ""]) | st.text(max_size=4),
    st.sampled_from([*_SHARDS, "missing.safetensors", "../model-00001-of-00002.safetensors", ""])
    | JSON,
    max_size=4,
)
SHARD_INDEXES = (
    JSON.map(dumps_json)
    | DEEP_JSON
    | st.fixed_dictionaries({"weight_map": _WEIGHT_MAP}, optional={"metadata": JSON}).map(
        dumps_json
    )
    | st.binary(max_size=64)
)


@fuzz_settings(deadline_s=4, scale=0.6)
@given(index=SHARD_INDEXES)
@example(index=b'{"weight_map": {"a": "model-00001-of-00002.safetensors"}}')
def test_a_shard_index_of_any_shape_imports_or_is_refused(sandbox: Sandbox, index: bytes) -> None:
    with sandbox.folder() as folder:
        model = folder / "model"
        model.mkdir()
        for name, tensors in _SHARDS.items():
            (model / name).write_bytes(_safetensors(tensors))
        (model / "model.safetensors.index.json").write_bytes(index)
        _import(folder, model)


def _torch_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


_STATE_DICT = _torch_bytes({"w": torch.arange(4, dtype=torch.float32), "b": torch.ones(2)})
_CHECKPOINT = _torch_bytes(
    {"model": {"w": torch.zeros(3)}, "step": 7, "lr": [0.1, 0.01], "name": "run"}
)


@fuzz_settings(deadline_s=4, scale=0.6)
@given(data=st.sampled_from([_STATE_DICT, _CHECKPOINT]).flatmap(mutated_zip))
def test_a_torch_archive_with_a_mutated_member_imports_or_is_refused(
    sandbox: Sandbox, data: bytes
) -> None:
    with sandbox.folder() as folder:
        source = folder / "model.pt"
        source.write_bytes(data)
        _import(folder, source)


@fuzz_settings(deadline_s=4, scale=0.6)
@given(data=st.sampled_from([_STATE_DICT, _CHECKPOINT]).flatmap(bytes_like))
@example(data=b"S'\\K'\n.")  # was DeprecationWarning: describing the refusal, invalid escape
def test_a_damaged_torch_file_imports_or_is_refused(sandbox: Sandbox, data: bytes) -> None:
    with sandbox.folder() as folder:
        source = folder / "pytorch_model.bin"
        source.write_bytes(data)
        _import(folder, source)


@fuzz_settings(deadline_s=4, scale=0.6)
@given(stream=pickle_streams(), in_archive=st.booleans())
# was LookupError: the allowed _codecs.encode called with an unknown encoding
@example(
    stream=b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00matin1\x86R.",
    in_archive=False,
)
def test_a_pickle_opcode_stream_goes_through_the_safe_loader_or_is_refused(
    sandbox: Sandbox, stream: bytes, in_archive: bool
) -> None:
    event("pickletools-valid" if is_valid_pickle(stream) else "invalid stream")
    if in_archive:
        members = [
            (n, stream if n.endswith("data.pkl") else c) for n, c in zip_members(_STATE_DICT)
        ]
        data = zip_of(members)
    else:
        data = stream  # a legacy (pre-zip) torch file is a run of pickles
    with sandbox.folder() as folder:
        source = folder / "model.pt"
        source.write_bytes(data)
        _import(folder, source)


# -- Hugging Face folders ------------------------------------------------------------------

_VALID_FILE = _safetensors({"w": ("F32", [2])})
_FILE_NAMES = st.sampled_from(
    [
        "config.json",
        "model.safetensors",
        "model-00001-of-00002.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "tokenizer.json",
        "sub/extra.safetensors",
        "sub/deeper/notes.txt",
        ".git/HEAD",
        "__pycache__/x.pyc",
        "weird name%[].safetensors",
        "training_args.bin",
    ]
)
_CONTENTS = st.sampled_from([_VALID_FILE, _STATE_DICT, b"", b"{}", b'{"weight_map": {}}']) | (
    st.sampled_from([_VALID_FILE, _STATE_DICT]).flatmap(mutated)
)
_LINKS = st.lists(
    st.tuples(
        st.sampled_from(["link.safetensors", "sub/link.bin", "linked_dir", "loop", "config.json"]),
        st.sampled_from(
            [
                "model.safetensors",  # inside
                "sub",  # a folder inside
                "../outside/secret.safetensors",  # out of the folder
                "../outside",
                "/nonexistent/target",  # dangles
                "loop",  # loops on itself
                ".",
            ]
        ),
    ),
    max_size=3,
)


@fuzz_settings(deadline_s=5, scale=0.6)
@given(
    files=st.dictionaries(_FILE_NAMES, _CONTENTS, max_size=6),
    links=_LINKS,
    fifo=st.sampled_from([None, "pipe.safetensors", "sub/pytorch_model.bin"]),
)
def test_a_folder_of_any_files_and_links_imports_or_is_refused(
    sandbox: Sandbox, files: dict[str, bytes], links: list[tuple[str, str]], fifo: str | None
) -> None:
    with sandbox.folder() as folder:
        outside = folder / "outside"
        outside.mkdir()
        (outside / "secret.safetensors").write_bytes(_safetensors({"secret": ("U8", [1])}))
        model = folder / "model"
        model.mkdir()
        for name, content in files.items():
            (model / name).parent.mkdir(parents=True, exist_ok=True)
            (model / name).write_bytes(content)
        if fifo is not None and not (model / fifo).exists():  # a reader would block on it
            (model / fifo).parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(model / fifo)
        for name, target in links:
            link = model / name
            if not link.exists() and not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, link)
        before = sorted(p.name for p in outside.iterdir())
        snapshot = _import(folder, model)
        assert sorted(p.name for p in outside.iterdir()) == before
        if snapshot is not None:  # nothing of the folder outside was read
            assert not any("secret" in name for name in snapshot.tensors)
            assert not any(name.startswith("..") for name in snapshot.files)


@pytest.mark.parametrize("name", ["model.safetensors", "model.pt", "model.bin", "model"])
def test_an_empty_file_is_refused(sandbox: Sandbox, name: str) -> None:
    with sandbox.folder() as folder:
        (folder / name).write_bytes(b"")
        assert _import(folder, folder / name) is None


def test_the_sandbox_sees_a_file_written_outside_the_example(sandbox: Sandbox) -> None:
    with pytest.raises(AssertionError, match="outside"), sandbox.folder() as folder:
        (folder.parent / "stray").write_bytes(b"")
