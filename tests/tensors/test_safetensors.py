"""safetensors files in and out: bit-exact round trips, streaming reads, strict header checks."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weightbase.errors import MalformedFileError, ValidationError
from weightbase.tensors import (
    Snapshot,
    TensorEntry,
    TensorStore,
    WriteStats,
    export_path,
    import_path,
)
from weightbase.tensors.dtypes import _ALL
from weightbase.tensors.formats import safetensors as st_format
from weightbase.tensors.formats.safetensors import (
    MAX_HEADER_BYTES,
    build_header,
    open_safetensors,
    parse_header,
)

KiB = 1024
CHUNK = 64 * KiB


@pytest.fixture
def store(store_url: str) -> Iterator[TensorStore]:
    with TensorStore.open(store_url, chunk_size=CHUNK) as opened:
        yield opened


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[TensorStore]:
    with TensorStore.open(tmp_path / "store", chunk_size=CHUNK) as opened:
        yield opened


def _bits(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _file(path: Path, header: bytes | dict[str, Any], data: bytes = b"") -> Path:
    """A safetensors-like file from a header (raw JSON bytes, or a dict to encode) and data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def _assert_nothing_stored(store: TensorStore) -> None:
    assert list(store.snapshots()) == []
    assert store.refs() == {}
    assert list(store.objects.list()) == []


# -- bit-exact round trips --------------------------------------------------------------------


def _numpy_file(path: Path) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "encoder.weight": rng.standard_normal((300, 200)).astype(np.float32),  # ~4 chunks
        "encoder.bias": rng.standard_normal(200).astype(np.float32),
        "ids": rng.integers(0, 1000, 5000, dtype=np.int64),
        "mask": rng.integers(0, 2, 77).astype(np.bool_),
        "half": rng.standard_normal((9, 7)).astype(np.float16),
        "scalar": np.array(2.5, dtype=np.float64),
        "empty": np.zeros((0, 3), dtype=np.int32),
    }
    safetensors.numpy.save_file(arrays, str(path), metadata={"format": "np", "note": "ünï"})
    return path


def _torch_file(path: Path) -> Path:
    torch.manual_seed(0)
    state = {
        "w.bf16": torch.randn(256, 130).to(torch.bfloat16),
        "w.e4m3": torch.randn(70_000).to(torch.float8_e4m3fn),
        "w.e5m2": torch.randn(33).to(torch.float8_e5m2),
        "w.f16": torch.randn(4, 4).to(torch.float16),
        "counts": torch.arange(10, dtype=torch.int16),
        "flag": torch.tensor(True),
    }
    safetensors.torch.save_file(state, str(path), metadata={"format": "pt"})
    return path


@pytest.mark.parametrize("make", [_numpy_file, _torch_file], ids=["numpy", "torch"])
def test_import_export_is_bit_exact(store: TensorStore, tmp_path: Path, make: Any) -> None:
    original = make(tmp_path / "model.safetensors")
    snapshot = import_path(store, original, ref="model")
    assert store.get_ref("model") == snapshot.id
    assert snapshot.metadata["format"] == "safetensors"
    (layout,) = snapshot.files.values()
    assert layout.kind == "safetensors"
    assert layout.size == original.stat().st_size
    out = export_path(store, "model", tmp_path / "out" / "copy.safetensors")
    assert _sha256(out) == _sha256(original)
    # what the snapshot holds is what the safetensors package reads from the file
    expected = safetensors.torch.load_file(str(original))
    got = store.read_torch(snapshot)
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype
        assert got[name].shape == tensor.shape
        assert _bits(got[name]) == _bits(tensor), name


def test_reimport_of_a_changed_file_with_parent_is_bit_exact(
    store: TensorStore, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    weights = rng.standard_normal((400, 100)).astype(np.float32)
    first = tmp_path / "v1.safetensors"
    safetensors.numpy.save_file({"w": weights, "b": np.ones(4, np.float32)}, str(first))
    tuned = weights.copy()
    tuned[::50, 3] += 1e-3
    second = tmp_path / "v2.safetensors"
    safetensors.numpy.save_file({"w": tuned, "b": np.ones(4, np.float32)}, str(second))
    base = import_path(store, first, ref="v1")
    stats = WriteStats()
    child = import_path(store, second, ref="v2", parent=base, stats=stats)
    assert stats.delta_chunks > 0
    assert child.parent == base.id
    for ref, source in (("v1", first), ("v2", second)):
        out = export_path(store, ref, tmp_path / f"out-{ref}.safetensors")
        assert _sha256(out) == _sha256(source)


def test_identical_reimport_stores_nothing_new(store: TensorStore, tmp_path: Path) -> None:
    original = _numpy_file(tmp_path / "model.safetensors")
    first = import_path(store, original)
    stats = WriteStats()
    again = import_path(store, original, stats=stats)
    assert again.id == first.id
    assert stats.new_bytes == 0


def test_export_of_numpy_snapshot_loads_with_safetensors(
    store: TensorStore, tmp_path: Path
) -> None:
    rng = np.random.default_rng(2)
    arrays = {
        "z.last": rng.standard_normal((200, 300)).astype(np.float32),
        "a.first": rng.integers(-5, 5, (3, 4), dtype=np.int8),
        "m.scalar": np.array(7, dtype=np.uint32),
        "e.empty": np.zeros((2, 0), dtype=np.float64),
        "u.unicode-ñame": np.arange(5, dtype=np.int16),
    }
    snapshot = store.write(arrays)
    out = export_path(store, snapshot, tmp_path / "out.safetensors")
    loaded = safetensors.numpy.load_file(str(out))
    assert set(loaded) == set(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype
        assert loaded[name].shape == array.shape
        assert np.array_equal(loaded[name], array), name
    # a format given explicitly needs no suffix
    plain = export_path(store, snapshot, tmp_path / "weights", format="safetensors")
    assert plain.read_bytes() == out.read_bytes()


def test_export_of_torch_snapshot_loads_with_safetensors(
    store: TensorStore, tmp_path: Path
) -> None:
    state = {
        "bf16": torch.randn(100, 100).to(torch.bfloat16),
        "e4m3": torch.randn(64).to(torch.float8_e4m3fn),
        "e5m2": torch.randn(3, 3).to(torch.float8_e5m2),
        "c64": torch.randn(5, dtype=torch.complex64),
    }
    snapshot = store.write(state)
    out = export_path(store, snapshot, tmp_path / "out.safetensors")
    loaded = safetensors.torch.load_file(str(out))
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype
        assert _bits(loaded[name]) == _bits(tensor), name


def test_header_only_parse_needs_no_data(tmp_path: Path) -> None:
    path = _numpy_file(tmp_path / "model.safetensors")
    content = path.read_bytes()
    (length,) = struct.unpack("<Q", content[:8])
    head = content[: 8 + length]  # the data section is not handed over at all
    header = parse_header(path, len(content), head)
    assert header.raw == head
    assert header.data_start == 8 + length
    assert header.metadata == {"format": "np", "note": "ünï"}
    names = [t.name for t in header.tensors]
    assert set(names) == set(safetensors.numpy.load_file(str(path)))
    assert [t.begin for t in header.tensors] == sorted(t.begin for t in header.tensors)
    assert header.tensors[-1].end == len(content) - header.data_start


class _CountingOS:
    """``os`` as the safetensors module sees it, with every ``pread`` recorded."""

    def __init__(self) -> None:
        self.reads: list[tuple[int, int]] = []  # (offset, length)

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        self.reads.append((offset, length))
        return os.pread(fd, length, offset)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def test_tensor_bytes_are_read_on_demand_and_in_bounded_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    big = rng.standard_normal(256 * KiB).astype(np.float32)  # 1 MiB, 16 chunks
    path = tmp_path / "big.safetensors"
    safetensors.numpy.save_file({"big": big, "small": np.ones(3, np.float32)}, str(path))
    size = path.stat().st_size
    counting = _CountingOS()
    monkeypatch.setattr(st_format, "os", counting)
    with open_safetensors(path) as (sources, layout):
        data_start = len(bytes(layout.data))
        opened = list(counting.reads)
        # opening reads the header, and the file once more to hash it, in bounded pieces
        assert all(length <= 64 << 20 for _, length in opened)
        assert sum(length for offset, length in opened if offset >= data_start) <= size
        counting.reads.clear()
        by_name = {s.name: s for s in sources}
        begin = next(
            t.begin for t in parse_header(path, size, bytes(layout.data)).tensors if t.name == "big"
        )
        piece = by_name["big"].read(4000, 1000)
        assert counting.reads == [(data_start + begin + 4000, 1000)]
        assert bytes(piece) == big.view(np.uint8)[4000:5000].tobytes()
        counting.reads.clear()
        with TensorStore.open(tmp_path / "store", chunk_size=CHUNK) as store:
            snapshot = store.write(sources, files=[layout])
        # the writer streams: no read is larger than a few chunks, however large the tensor
        assert counting.reads
        assert max(length for _, length in counting.reads) <= 4 * CHUNK
    assert len(snapshot.tensors["big"].chunks) == 16


# -- malformed files ------------------------------------------------------------------------


def _f32(begin: int, end: int, shape: list[int] | None = None) -> dict[str, Any]:
    return {
        "dtype": "F32",
        "shape": shape if shape is not None else [(end - begin) // 4],
        "data_offsets": [begin, end],
    }


MALFORMED: dict[str, bytes] = {
    "empty": b"",
    "shorter-than-8": b"\x02\x00\x00",
    "header-past-end": struct.pack("<Q", 1000) + b"{}",
    "header-over-limit": struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}" + b" " * 30,
    "header-length-huge": struct.pack("<Q", 2**63 + 5) + b"{}",
}
MALFORMED_HEADERS: dict[str, tuple[bytes | dict[str, Any], bytes]] = {
    "not-json": (b"{this is not json", b""),
    "not-utf8": (b'{"\xff\xfe": 1}', b""),
    "json-array": (b"[1, 2, 3]", b""),
    "json-string": (b'"hello"', b""),
    "json-null": (b"null", b""),
    "unknown-dtype": ({"w": {"dtype": "F17", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)),
    "lowercase-dtype": ({"w": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)),
    "shape-size-mismatch": ({"w": _f32(0, 8, [3])}, bytes(8)),
    "overlap": ({"a": _f32(0, 8), "b": _f32(4, 12)}, bytes(12)),
    "same-range-twice": ({"a": _f32(0, 8), "b": _f32(0, 8)}, bytes(8)),
    "offsets-past-data": ({"a": _f32(0, 8)}, bytes(4)),
    "begin-after-end": ({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}}, bytes(8)),
    "negative-offset": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}, b""),
    "float-offset": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0.0, 4.0]}}, bytes(4)),
    "three-offsets": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 4]}}, bytes(4)),
    "negative-dim": ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b""),
    "bool-dim": ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, bytes(4)),
    "shape-not-list": ({"a": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}}, bytes(4)),
    "hole": ({"a": _f32(0, 4), "b": _f32(8, 12)}, bytes(12)),
    "hole-at-start": ({"a": _f32(4, 8)}, bytes(8)),
    "trailing-bytes": ({"a": _f32(0, 4)}, bytes(8)),
    "missing-field": ({"a": {"dtype": "F32", "shape": [1]}}, bytes(4)),
    "extra-field": ({"a": {**_f32(0, 4), "extra": 1}}, bytes(4)),
    "entry-not-object": ({"a": [1, 2]}, b""),
    "metadata-not-strings": ({"__metadata__": {"k": 1}, "a": _f32(0, 4)}, bytes(4)),
    "metadata-not-object": ({"__metadata__": ["k"], "a": _f32(0, 4)}, bytes(4)),
    "name-with-slash": ({"a/b": _f32(0, 4)}, bytes(4)),
    "name-dotdot": ({"..": _f32(0, 4)}, bytes(4)),
    "name-escapes": ({"../../etc/passwd": _f32(0, 4)}, bytes(4)),
    "name-with-nul": ({"a\x00b": _f32(0, 4)}, bytes(4)),
    "name-empty": ({"": _f32(0, 4)}, bytes(4)),
    "name-backslash": ({"a\\b": _f32(0, 4)}, bytes(4)),
}


def _malformed_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.safetensors"
    if case in MALFORMED:
        path.write_bytes(MALFORMED[case])
        return path
    header, data = MALFORMED_HEADERS[case]
    return _file(path, header, data)


@pytest.mark.parametrize("case", [*MALFORMED, *MALFORMED_HEADERS])
def test_malformed_file_is_refused_and_nothing_stored(
    local_store: TensorStore, tmp_path: Path, case: str
) -> None:
    path = _malformed_file(tmp_path, case)
    with pytest.raises(MalformedFileError) as caught:
        import_path(local_store, path, ref="model")
    assert isinstance(caught.value, ValidationError)
    assert str(path) in str(caught.value)
    _assert_nothing_stored(local_store)
    with pytest.raises(MalformedFileError), open_safetensors(path):
        pass


def test_the_malformed_cases_differ_from_a_valid_file_only_in_their_flaw(
    local_store: TensorStore, tmp_path: Path
) -> None:
    """The helper that builds the malformed files builds valid ones too."""
    valid = {"a": _f32(0, 4), "b": _f32(4, 12), "__metadata__": {"k": "v"}}
    path = _file(tmp_path / "ok.safetensors", valid, struct.pack("<3f", 1.0, 2.0, 3.0))
    snapshot = import_path(local_store, path)
    assert list(local_store.read(snapshot)["b"]) == [2.0, 3.0]
    assert safetensors.numpy.load_file(str(path))["a"].tolist() == [1.0]


def test_header_limit_is_inclusive(local_store: TensorStore, tmp_path: Path) -> None:
    # exactly at the limit is allowed (and here fails only because the file is short)
    path = tmp_path / "limit.safetensors"
    path.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES) + b"{}")
    with pytest.raises(MalformedFileError, match="past the end"):
        import_path(local_store, path)
    over = tmp_path / "over.safetensors"
    over.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}")
    with pytest.raises(MalformedFileError, match="limit"):
        import_path(local_store, over)


def test_a_file_that_is_not_there(local_store: TensorStore, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        import_path(local_store, tmp_path / "absent.safetensors")
    with pytest.raises(ValidationError), open_safetensors(tmp_path / "absent.safetensors"):
        pass
    _assert_nothing_stored(local_store)


# -- header round trips ---------------------------------------------------------------------

_NAMES = st.text(
    st.characters(codec="utf-8", exclude_characters="/\\\x00"), min_size=1, max_size=10
).filter(lambda n: n not in (".", "..", "__metadata__"))


@st.composite
def _headers(draw: st.DrawFn) -> tuple[list[tuple[str, str, list[int]]], dict[str, str]]:
    names = draw(st.lists(_NAMES, max_size=6, unique=True))
    tensors = [
        (
            name,
            draw(st.sampled_from([d.name for d in _ALL])),
            draw(st.lists(st.integers(0, 5), max_size=3)),
        )
        for name in names
    ]
    metadata = draw(st.dictionaries(st.text(max_size=5), st.text(max_size=8), max_size=3))
    return tensors, metadata


def _canonical(tensors: list[tuple[str, str, list[int]]], metadata: dict[str, str]) -> bytes:
    from weightbase.tensors.dtypes import get_dtype

    doc: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    position = 0
    for name, dtype, shape in tensors:
        size = int(np.prod(shape, dtype=np.int64)) * get_dtype(dtype).itemsize
        doc[name] = {"dtype": dtype, "shape": shape, "data_offsets": [position, position + size]}
        position += size
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"\x00" * position


def _snapshot_of(header: st_format.SafetensorsHeader) -> Snapshot:
    return Snapshot(
        tensors={
            t.name: TensorEntry(t.dtype.name, t.shape, t.end - t.begin, "raw", "0" * 64, ())
            for t in header.tensors
        }
    )


@settings(max_examples=60, deadline=None)
@given(_headers(), st.randoms(use_true_random=False))
def test_parse_and_build_header_agree(
    drawn: tuple[list[tuple[str, str, list[int]]], dict[str, str]], random: Any
) -> None:
    tensors, metadata = drawn
    content = _canonical(tensors, metadata)
    (length,) = struct.unpack("<Q", content[:8])
    header = parse_header("drawn", len(content), content[: 8 + length])
    assert header.metadata == metadata
    # zero-size tensors may sit anywhere among others at the same offset; compare as sets
    parsed = {(t.name, t.dtype.name, t.shape) for t in header.tensors}
    assert parsed == {(n, d, tuple(s)) for n, d, s in tensors}
    ends = [0] + [t.end for t in header.tensors]
    assert all(t.begin == end for t, end in zip(header.tensors, ends, strict=False))
    # build_header writes what it parsed back, byte for byte
    names = [name for name, _, _ in tensors]
    assert build_header(_snapshot_of(header), names, metadata) == content[: 8 + length]
    # keys in another order in the JSON describe the same layout
    doc = json.loads(content[8 : 8 + length])
    keys = list(doc)
    random.shuffle(keys)
    shuffled = json.dumps({k: doc[k] for k in keys}).encode()
    again = parse_header(
        "shuffled",
        8 + len(shuffled) + len(content) - 8 - length,
        struct.pack("<Q", len(shuffled)) + shuffled,
    )
    assert {(t.name, t.begin, t.end) for t in again.tensors} == {
        (t.name, t.begin, t.end) for t in header.tensors
    }
    assert again.metadata == metadata
