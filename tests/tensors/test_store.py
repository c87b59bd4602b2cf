"""The tensor store on every backend: bit-exact round trips, dedup, deltas, lazy reads, refs.

Every test takes ``store_url`` and so runs against a local folder and an S3
bucket (moto); a few at the end check what only the local backend does.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightbase.errors import NotFound, ValidationError
from weightbase.tensors import Snapshot, TensorStore, WriteOptions, WriteStats
from weightbase.tensors.chunks import parse_header
from weightbase.tensors.codecs import CODEC_NAMES, Buffer, codec_by_name
from weightbase.tensors.dtypes import _ALL, DType, dtype_from_numpy
from weightbase.tensors.manifest import TensorEntry
from weightbase.tensors.objects import ObjectInfo, ObjectStore, open_object_store
from weightbase.tensors.read import TensorRange, chunk_key, plan_reads, read_ranges

KiB = 1024
CHUNK = 64 * KiB  # small chunks keep multi-chunk tensors small


def _numpy_native(dtype: DType) -> bool:
    """Whether NumPy arrays of this dtype are stored as this dtype (not torch-only types)."""
    try:
        return dtype_from_numpy(dtype.numpy) is dtype
    except ValidationError:
        return False


NUMPY_DTYPES = [d for d in _ALL if _numpy_native(d)]
TORCH_DTYPES = [d for d in _ALL if d.torch_name is not None and hasattr(torch, d.torch_name)]
CODECS = list(CODEC_NAMES)


@pytest.fixture
def store(store_url: str) -> Iterator[TensorStore]:
    with TensorStore.open(store_url, chunk_size=CHUNK) as opened:
        yield opened


def _random_array(rng: np.random.Generator, dtype: np.dtype[Any], shape: tuple[int, ...]) -> Any:
    """Random bytes viewed as ``dtype``: NaNs, infinities and odd bit patterns included."""
    count = int(np.prod(shape, dtype=np.int64))
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    raw = rng.integers(0, 256, size=count * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


def _random_tensor(rng: np.random.Generator, dtype: torch.dtype, shape: tuple[int, ...]) -> Any:
    itemsize = torch.empty(0, dtype=dtype).element_size()
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:
        return torch.empty(shape, dtype=dtype)  # torch cannot view an empty byte tensor
    if dtype == torch.bool:
        raw = rng.integers(0, 2, size=count, dtype=np.uint8)
    else:
        raw = rng.integers(0, 256, size=count * itemsize, dtype=np.uint8)
    return torch.from_numpy(raw).view(dtype).reshape(shape)


def _bits(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _same_bytes(actual: Any, expected: Any) -> bool:
    """Same type, dtype, shape and bits (NaN payloads and all)."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor)
        as_bytes = _bits
    else:
        assert isinstance(actual, np.ndarray)
        as_bytes = np.ndarray.tobytes
    return (
        actual.dtype == expected.dtype
        and actual.shape == expected.shape
        and as_bytes(actual) == as_bytes(expected)
    )


def _assert_reads_back(
    store: TensorStore, snapshot: Snapshot | str, arrays: dict[str, Any]
) -> None:
    out = store.read(snapshot)
    assert set(out) == set(arrays)
    for name, array in arrays.items():
        assert _same_bytes(out[name], array), name


def _perturbed(array: np.ndarray[Any, Any], seed: int) -> np.ndarray[Any, Any]:
    """A copy with a few elements changed, the way a small fine-tuning step changes weights."""
    copy = array.copy()
    flat = copy.reshape(-1).view(np.uint8)
    rng = np.random.default_rng(seed)
    flat[rng.integers(0, flat.size, size=max(1, flat.size // 4000))] ^= 0x5A
    return copy


def _objects(store: TensorStore) -> list[str]:
    return sorted(info.key for info in store.objects.list())


# -- round trips, dtype by dtype ----------------------------------------------------------


def test_numpy_round_trip_every_dtype(store: TensorStore) -> None:
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {}
    for dtype in NUMPY_DTYPES:
        np_dtype = dtype.numpy
        rows = 2 * CHUNK // (7 * np_dtype.itemsize) + 1  # spans several chunks
        arrays[f"{dtype.name}.large"] = _random_array(rng, np_dtype, (rows, 7))
        arrays[f"{dtype.name}.small"] = _random_array(rng, np_dtype, (3, 5))
        arrays[f"{dtype.name}.scalar"] = _random_array(rng, np_dtype, ())
        arrays[f"{dtype.name}.empty"] = _random_array(rng, np_dtype, (0, 4))
    snapshot = store.write(arrays)
    for dtype in NUMPY_DTYPES:
        assert snapshot.tensors[f"{dtype.name}.small"].dtype == dtype.name
        assert len(snapshot.tensors[f"{dtype.name}.large"].chunks) > 1
    _assert_reads_back(store, snapshot, arrays)
    # and through a second store object, so nothing comes from a cache
    with TensorStore.open(store.objects.url) as again:
        _assert_reads_back(again, snapshot.id, arrays)


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")
def test_torch_round_trip_every_dtype(store: TensorStore) -> None:
    rng = np.random.default_rng(1)
    state: dict[str, Any] = {}
    for dtype in TORCH_DTYPES:
        torch_dtype = getattr(torch, str(dtype.torch_name))
        itemsize = torch.empty(0, dtype=torch_dtype).element_size()
        rows = 2 * CHUNK // (8 * itemsize) + 3
        state[f"{dtype.name}.weight"] = _random_tensor(rng, torch_dtype, (rows, 8))
        state[f"{dtype.name}.bias"] = _random_tensor(rng, torch_dtype, (8,))
        state[f"{dtype.name}.step"] = _random_tensor(rng, torch_dtype, ())
        state[f"{dtype.name}.nothing"] = _random_tensor(rng, torch_dtype, (0,))
    snapshot = store.write(state)
    out = store.read_torch(snapshot)
    assert set(out) == set(state)
    for name, tensor in state.items():
        assert _same_bytes(out[name], tensor), name
    # the NumPy view of the same snapshot holds the same bits
    arrays = store.read(snapshot)
    for dtype in TORCH_DTYPES:
        assert snapshot.tensors[f"{dtype.name}.bias"].dtype == dtype.name
        for part in ("weight", "bias", "step", "nothing"):
            name = f"{dtype.name}.{part}"
            raw = _bits(state[name])
            assert arrays[name].dtype == dtype.numpy
            assert arrays[name].tobytes() == raw, name


def test_read_on_cpu_device_gives_torch_tensors(store: TensorStore) -> None:
    state = {"w": torch.randn(300, 100), "b": torch.randn(100).to(torch.bfloat16)}
    snapshot = store.write(state)
    out = store.read(snapshot, device="cpu")
    for name, tensor in state.items():
        assert _same_bytes(out[name], tensor)
    rows = store.read_tensor(snapshot, "w", rows=slice(5, 9), device="cpu")
    assert torch.equal(rows, state["w"][5:9])


def test_a_read_plan_reads_each_chunk_once(store: TensorStore) -> None:
    rng = np.random.default_rng(7)
    arrays = {
        "big": rng.standard_normal(3 * CHUNK // 4).astype(np.float32),
        "zeros": np.zeros(3 * CHUNK // 4, np.float32),  # three chunks, one digest
        **{f"small.{i}": rng.standard_normal(10).astype(np.float32) for i in range(5)},
    }
    snapshot = store.write(arrays, ref="planned")
    ranges = {name: TensorRange.whole(entry) for name, entry in snapshot.tensors.items()}
    reads = plan_reads(ranges)
    digests = [read.ref.digest for read in reads]
    assert len(digests) == len(set(digests)) == len(snapshot.chunk_sizes())
    (zeros,) = (r for r in reads if {p.tensor for p in r.slices} == {"zeros"})
    assert [p.at for p in zeros.slices] == [0, CHUNK, 2 * CHUNK]
    assert sum(read.nbytes for read in reads) == snapshot.nbytes
    out = read_ranges(store.reader, ranges, workers=2)
    for name, array in arrays.items():
        assert _same_bytes(out[name], array), name
    rows = TensorRange(snapshot.tensors["big"], 4 * (CHUNK // 4 - 3), 4 * (CHUNK // 4 + 5), (8,))
    assert [len(read.slices) for read in plan_reads({"big": rows})] == [1, 1]
    part = read_ranges(store.reader, {"big": rows}, workers=1)["big"]
    assert _same_bytes(part, arrays["big"][CHUNK // 4 - 3 : CHUNK // 4 + 5])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_read_to_cuda_is_bit_exact(store: TensorStore) -> None:
    state = {
        "w": torch.randn(1000, 100),
        "h": torch.randn(64).to(torch.bfloat16),
        "e": torch.empty(0, 3),
        "s": torch.tensor(3.0),
    }
    snapshot = store.write(state)
    out = store.read(snapshot, device="cuda")
    for name, tensor in state.items():
        assert out[name].device.type == "cuda"
        assert _same_bytes(out[name].cpu(), tensor), name
    rows = store.read_tensor(snapshot, "w", rows=slice(100, 700), device="cuda")
    assert torch.equal(rows.cpu(), state["w"][100:700])


def test_empty_and_zero_dimensional_tensors(store: TensorStore) -> None:
    arrays = {
        "scalar": np.float32(3.5),
        "zero_d": np.array(-7, dtype=np.int64),
        "empty": np.zeros((0,), dtype=np.float32),
        "empty_2d": np.zeros((4, 0, 3), dtype=np.float16),
    }
    snapshot = store.write(arrays)
    out = store.read(snapshot)
    assert out["scalar"].shape == ()
    assert out["scalar"] == np.float32(3.5)
    assert out["zero_d"].shape == ()
    assert out["zero_d"] == -7
    assert out["empty"].shape == (0,)
    assert out["empty"].dtype == np.float32
    assert out["empty_2d"].shape == (4, 0, 3)
    assert out["empty_2d"].dtype == np.float16
    assert snapshot.tensors["empty"].chunks == ()
    assert store.read_tensor(snapshot, "scalar") == np.float32(3.5)
    assert store.read_tensor(snapshot, "empty_2d").shape == (4, 0, 3)
    assert store.read_tensor(snapshot, "empty_2d", rows=slice(1, 3)).shape == (2, 0, 3)
    with pytest.raises(ValidationError):
        store.read_tensor(snapshot, "scalar", rows=slice(0, 1))


def test_snapshot_of_nothing(store: TensorStore) -> None:
    snapshot = store.write({}, ref="empty")
    assert store.read("empty") == {}
    assert store.snapshot("empty") == snapshot


def test_small_tensors_are_packed_and_large_ones_chunked(store: TensorStore) -> None:
    rng = np.random.default_rng(1)
    arrays = {f"bias.{i}": rng.standard_normal(50 + i).astype(np.float32) for i in range(40)}
    arrays["big"] = rng.standard_normal(5 * CHUNK // 4).astype(np.float32)
    snapshot = store.write(arrays)
    packs = {snapshot.tensors[f"bias.{i}"].chunks[0].digest for i in range(40)}
    assert len(packs) < 40  # several small tensors share each pack
    assert any(snapshot.tensors[f"bias.{i}"].chunks[0].offset > 0 for i in range(40))
    big = snapshot.tensors["big"]
    assert len(big.chunks) == 5
    assert all(ref.length == CHUNK and ref.offset == 0 for ref in big.chunks)
    _assert_reads_back(store, snapshot, arrays)
    for name in ("bias.7", "big"):
        assert _same_bytes(store.read_tensor(snapshot, name), arrays[name])


@st.composite
def _arrays(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(
        st.lists(
            st.text(
                st.characters(codec="utf-8", exclude_characters="/\\\x00"), min_size=1, max_size=8
            ).filter(lambda n: n not in (".", "..")),
            max_size=5,
            unique=True,
        )
    )
    arrays = {}
    for name in names:
        dtype = draw(st.sampled_from(NUMPY_DTYPES)).numpy
        shape = draw(
            st.one_of(
                st.lists(st.integers(0, 6), max_size=4).map(tuple),
                st.integers(CHUNK // dtype.itemsize - 2, 3 * CHUNK // dtype.itemsize).map(
                    lambda n: (n,)
                ),
            )
        )
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        arrays[name] = _random_array(rng, dtype, shape)
    return arrays


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(arrays=_arrays(), codec=st.sampled_from(CODECS))
def test_random_arrays_round_trip(store: TensorStore, arrays: dict[str, Any], codec: str) -> None:
    snapshot = store.write(arrays, codec=codec)
    _assert_reads_back(store, snapshot.id, arrays)


# -- codecs, dedup, deltas ------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_round_trips(store: TensorStore, codec: str) -> None:
    rng = np.random.default_rng(7)
    arrays = {
        "weights": rng.standard_normal((400, 100)).astype(np.float32),
        "half": rng.standard_normal(50_000).astype(np.float16),
        "ids": rng.integers(0, 50, 40_000, dtype=np.int64),
        "zeros": np.zeros(70_000, dtype=np.uint8),
        "fp8": _random_array(rng, np.dtype("float8_e4m3fn"), (100_000,)),
        "bias": rng.standard_normal(30).astype(np.float32),
    }
    base = store.write(arrays, codec=codec)
    tuned = {**arrays, "weights": _perturbed(arrays["weights"], 1)}
    child = store.write(tuned, codec=codec, parent=base)
    _assert_reads_back(store, base, arrays)
    _assert_reads_back(store, child, tuned)
    if codec not in ("auto", "delta"):
        expected_id = codec_by_name(codec).codec_id
        for snapshot in (base, child):
            for entry in snapshot.tensors.values():
                for ref in entry.chunks:
                    frame = store.objects.get(chunk_key(ref.digest))
                    assert parse_header(frame).codec_id == expected_id
                    assert not ref.bases  # deltas only where the codec policy allows them


def test_unknown_codec_is_refused(store: TensorStore) -> None:
    with pytest.raises(ValidationError, match="unknown codec"):
        store.write({"w": np.zeros(4, np.float32)}, codec="gzip")
    assert _objects(store) == []


@pytest.mark.parametrize("codec", ["auto", "raw", "zstd"])
def test_identical_second_write_stores_nothing_new(store: TensorStore, codec: str) -> None:
    rng = np.random.default_rng(3)
    arrays = {
        "big": rng.standard_normal(3 * CHUNK // 4).astype(np.float32),
        **{f"small.{i}": rng.standard_normal(10).astype(np.float32) for i in range(12)},
    }
    first_stats = WriteStats()
    first = store.write(arrays, codec=codec, stats=first_stats)
    assert first_stats.new_bytes > 0
    before = _objects(store)
    stats = WriteStats()
    second = store.write(
        {name: array.copy() for name, array in arrays.items()}, codec=codec, stats=stats
    )
    assert second.id == first.id
    assert stats.new_bytes == 0
    assert stats.new_chunks == 0
    assert stats.reused_chunks > 0
    assert _objects(store) == before


def test_concurrent_writes_count_into_their_own_stats(store: TensorStore) -> None:
    rng = np.random.default_rng(6)
    batches = [{"w": rng.standard_normal(CHUNK).astype(np.float32)} for _ in range(4)]
    stats = [WriteStats() for _ in batches]
    with ThreadPoolExecutor(len(batches)) as pool:
        written = list(pool.map(lambda b, s: store.write(b, stats=s), batches, stats))
    for snapshot, counted in zip(written, stats, strict=True):
        assert counted.raw_bytes == CHUNK * 4
        assert counted.new_bytes == snapshot.stored_bytes
        assert counted.new_chunks == len(snapshot.tensors["w"].chunks)
        assert counted.reused_chunks == 0
    both = WriteStats()
    store.write(batches[0], stats=both)
    store.write(batches[1], stats=both)
    assert (both.raw_bytes, both.new_bytes, both.reused_tensors) == (2 * CHUNK * 4, 0, 2)


@pytest.mark.parametrize("damage", ["garbage", "wrong shape", "another tensor", "empty"])
def test_a_damaged_index_entry_is_only_a_missed_shortcut(store: TensorStore, damage: str) -> None:
    """Index entries are written without fsync: whatever a crash leaves of one, the next
    write of that content stores it right."""
    rng = np.random.default_rng(4)
    first = rng.standard_normal(CHUNK).astype(np.float32)
    other = rng.standard_normal(CHUNK).astype(np.float32)
    store.write({"w": first, "v": other})
    keys = [info.key for info in store.objects.list("index/")]
    assert len(keys) == 2
    entries = {key: json.loads(bytes(store.objects.get(key))) for key in keys}
    for key, entry in entries.items():
        if damage == "garbage":
            text = b"[1, 2"
        elif damage == "empty":
            text = b""
        elif damage == "wrong shape":
            text = json.dumps({**entry, "shape": [7]}).encode()
        else:  # each entry swapped for the other's: valid, but of other content
            (swap,) = (e for k, e in entries.items() if k != key)
            text = json.dumps(swap).encode()
        store.objects.put(key, text)
    stats = WriteStats()
    again = store.write({"w": first.copy(), "v": other.copy()}, stats=stats)
    assert stats.reused_tensors == 0
    assert _same_bytes(store.read_tensor(again, "w"), first)
    assert _same_bytes(store.read_tensor(again, "v"), other)
    assert store.fsck().ok


def test_unchanged_tensors_are_shared_with_another_snapshot(store: TensorStore) -> None:
    rng = np.random.default_rng(4)
    shared = rng.standard_normal(2 * CHUNK // 4).astype(np.float32)
    first = store.write({"a": shared, "b": rng.standard_normal(CHUNK // 2).astype(np.float32)})
    second = store.write({"renamed": shared, "c": rng.standard_normal(CHUNK).astype(np.float32)})
    assert second.tensors["renamed"].stored_digests == first.tensors["a"].stored_digests


def test_delta_against_parent(store: TensorStore) -> None:
    rng = np.random.default_rng(5)
    base_arrays = {
        "w": rng.standard_normal((600, 100)).astype(np.float32),
        "frozen": rng.standard_normal(CHUNK // 2).astype(np.float32),
    }
    base = store.write(base_arrays, ref="base")
    base_stored = base.stored_bytes
    tuned = {**base_arrays, "w": _perturbed(base_arrays["w"], 2)}
    stats = WriteStats()
    child = store.write(tuned, parent="base", ref="tuned", stats=stats)
    assert child.parent == base.id
    assert stats.delta_chunks == len(child.tensors["w"].chunks) > 1
    assert all(ref.bases for ref in child.tensors["w"].chunks)
    assert child.tensors["w"].base == base.tensors["w"].digest
    assert child.tensors["frozen"] == base.tensors["frozen"]
    assert stats.new_bytes < base_stored / 10  # deltas of a sparse change are tiny
    with TensorStore.open(store.objects.url) as fresh:
        _assert_reads_back(fresh, "tuned", tuned)
        _assert_reads_back(fresh, "base", base_arrays)
        rows = fresh.read_tensor("tuned", "w", rows=slice(123, 321))
        assert _same_bytes(rows, tuned["w"][123:321])


def test_delta_chains_are_capped_and_read_exactly(store_url: str) -> None:
    with TensorStore.open(store_url, chunk_size=CHUNK, max_delta_chain=2) as store:
        rng = np.random.default_rng(6)
        versions = [rng.standard_normal(3 * CHUNK // 4).astype(np.float32)]
        snapshots = [store.write({"w": versions[0]})]
        for step in range(1, 7):
            versions.append(_perturbed(versions[-1], step))
            snapshots.append(store.write({"w": versions[-1]}, parent=snapshots[-1], codec="delta"))
        depths = [max(len(ref.bases) for ref in s.tensors["w"].chunks) for s in snapshots]
        assert max(depths) == 2
        assert depths == [0, 1, 2, 0, 1, 2, 0]  # a fresh keyframe once the cap is reached
    with TensorStore.open(store_url) as fresh:
        for snapshot, version in zip(snapshots, versions, strict=True):
            assert _same_bytes(fresh.read(snapshot.id)["w"], version)


def test_delta_on_a_changed_shape_falls_back_to_a_keyframe(store: TensorStore) -> None:
    rng = np.random.default_rng(8)
    base = store.write({"w": rng.standard_normal((300, 100)).astype(np.float32)})
    grown = rng.standard_normal((301, 100)).astype(np.float32)
    child = store.write({"w": grown}, parent=base, codec="delta")
    assert all(not ref.bases for ref in child.tensors["w"].chunks)
    assert _same_bytes(store.read(child)["w"], grown)


# -- lazy reads -------------------------------------------------------------------------------


class CountingObjectStore(ObjectStore):
    """A real object store that records which keys are read."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.reads: list[str] = []

    def put(self, key: str, data: Buffer, *, durable: bool = True) -> None:
        self.inner.put(key, data, durable=durable)

    def get(self, key: str) -> Buffer:
        self.reads.append(key)
        return self.inner.get(key)

    def get_range(self, key: str, start: int, length: int) -> Buffer:
        self.reads.append(key)
        return self.inner.get_range(key, start, length)

    def map(self, key: str) -> Buffer | None:
        self.reads.append(key)
        return self.inner.map(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def sync(self) -> None:
        self.inner.sync()

    def touch(self, key: str) -> None:
        self.inner.touch(key)

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)

    def lock(self, *, exclusive: bool) -> AbstractContextManager[None]:
        return self.inner.lock(exclusive=exclusive)

    def close(self) -> None:
        self.inner.close()

    def chunks_read(self) -> set[str]:
        return {key for key in self.reads if key.startswith("chunks/")}


def _chunks_for_rows(entry: TensorEntry, first: int, stop: int) -> set[str]:
    row_bytes = entry.nbytes // entry.shape[0]
    lo, hi = first * row_bytes, stop * row_bytes
    needed, position = set(), 0
    for ref in entry.chunks:
        if lo < hi and position < hi and position + ref.length > lo:
            needed.add(chunk_key(ref.digest))
        position += ref.length
    return needed


@pytest.mark.parametrize("codec", ["auto", "raw"])
def test_row_reads_fetch_only_their_chunks(store_url: str, codec: str) -> None:
    counting = CountingObjectStore(open_object_store(store_url))
    store = TensorStore(counting, options=WriteOptions(chunk_size=CHUNK))
    rng = np.random.default_rng(9)
    weights = rng.standard_normal((1000, 50)).astype(np.float32)  # 200 kB, 4 chunks
    snapshot = store.write({"w": weights, "b": np.ones(3, np.float32)}, codec=codec)
    entry = snapshot.tensors["w"]
    assert len(entry.chunks) == 4
    bounds = [None, -1200, -1000, -7, 0, 1, 327, 328, 500, 999, 1000, 1500]
    cases = [(a, b) for a in bounds for b in bounds if rng.random() < 0.35] + [(0, 1000), (5, 5)]
    for start, stop in cases:
        counting.reads.clear()
        rows = store.read_tensor(snapshot, "w", rows=slice(start, stop))
        expected = weights[start:stop]
        assert _same_bytes(rows, expected), (start, stop)
        first, last, _ = slice(start, stop).indices(1000)
        assert counting.chunks_read() == _chunks_for_rows(entry, first, max(first, last))
    counting.reads.clear()
    store.read_tensor(snapshot, "w", rows=slice(0, 10))
    assert len(counting.chunks_read()) == 1
    with pytest.raises(ValidationError, match="step"):
        store.read_tensor(snapshot, "w", rows=slice(0, 10, 2))
    store.close()


def test_reading_some_tensors_fetches_only_theirs(store_url: str) -> None:
    counting = CountingObjectStore(open_object_store(store_url))
    store = TensorStore(counting, options=WriteOptions(chunk_size=CHUNK))
    rng = np.random.default_rng(10)
    arrays = {name: rng.standard_normal(CHUNK // 2).astype(np.float32) for name in "abcd"}
    snapshot = store.write(arrays)
    counting.reads.clear()
    out = store.read(snapshot, ["b", "d"])
    assert set(out) == {"b", "d"}
    expected = {chunk_key(r.digest) for n in "bd" for r in snapshot.tensors[n].chunks}
    assert counting.chunks_read() == expected
    store.close()


# -- refs, names, lookups ----------------------------------------------------------------------


def test_refs_set_get_list_delete(store: TensorStore) -> None:
    one = store.write({"w": np.arange(10, dtype=np.int32)}, ref="models/bert/v1")
    two = store.write({"w": np.arange(11, dtype=np.int32)})
    assert store.get_ref("models/bert/v1") == one.id
    assert store.refs() == {"models/bert/v1": one.id, f"snapshots/{two.id}": two.id}
    store.set_ref("production", one)
    store.set_ref("production", two.id)  # moving a ref
    store.set_ref("latest", "production")  # by ref name
    assert store.get_ref("latest") == two.id
    assert store.snapshot("production") == two
    store.delete_ref("production")
    with pytest.raises(NotFound):
        store.get_ref("production")
    assert set(store.refs()) == {"models/bert/v1", f"snapshots/{two.id}", "latest"}
    assert sorted(store.snapshots()) == sorted([one.id, two.id])


def test_resolve_by_id_prefix(store: TensorStore) -> None:
    snapshot = store.write({"w": np.arange(5, dtype=np.int8)}, ref="x")
    assert store.resolve(snapshot.id) == snapshot.id
    assert store.resolve(snapshot.id[:6]) == snapshot.id
    assert store.snapshot(snapshot.id[:12]) == snapshot
    assert store.resolve("x") == snapshot.id
    with pytest.raises(NotFound):
        store.resolve(snapshot.id[:5])  # too short to be taken for an id
    other = "0" * 64 if snapshot.id[0] != "0" else "1" * 64
    with pytest.raises(NotFound):
        store.resolve(other[:10])


def test_unknown_names_raise_not_found(store: TensorStore) -> None:
    snapshot = store.write({"w": np.zeros(3, np.float32)})
    missing_id = "f" * 64 if snapshot.id != "f" * 64 else "e" * 64
    attempts = [
        lambda: store.get_ref("nope"),
        lambda: store.delete_ref("nope"),
        lambda: store.snapshot("nope"),
        lambda: store.snapshot(missing_id),
        lambda: store.read(missing_id),
        lambda: store.set_ref("r", missing_id),
        lambda: store.read_tensor(snapshot, "absent"),
        lambda: store.read(snapshot, ["w", "absent"]),
        lambda: store.file_bytes(snapshot, "config.json"),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound) as caught:
            attempt()
        assert isinstance(caught.value, KeyError)
        assert "Traceback" not in str(caught.value)
    with pytest.raises(NotFound) as caught:
        store.read_tensor(snapshot, "absent")
    assert caught.value.context["tensor"] == "absent"
    assert "r" not in store.refs()


BAD_TENSOR_NAMES = ["a/b", "/abs", "..", ".", "a\x00b", "", "a\\b", "../escape"]


@pytest.mark.parametrize("name", BAD_TENSOR_NAMES)
def test_bad_tensor_names_are_refused_before_writing(store: TensorStore, name: str) -> None:
    arrays = {"fine": np.ones(CHUNK, np.float32), name: np.ones(3, np.float32)}
    with pytest.raises(ValidationError):
        store.write(arrays, ref="r")
    with pytest.raises(ValidationError):
        store.write({name: torch.ones(3), "fine": torch.ones(CHUNK)})
    assert list(store.snapshots()) == []
    assert store.refs() == {}
    assert _objects(store) == []


@pytest.mark.parametrize("ref", ["", "a/../b", "/abs", "a//b", "x/", "..", "a\x00"])
def test_bad_ref_names_are_refused(store: TensorStore, ref: str) -> None:
    with pytest.raises(ValidationError):
        store.write({"w": np.ones(CHUNK, np.float32)}, ref=ref)
    assert list(store.snapshots()) == []
    assert _objects(store) == []
    snapshot = store.write({"w": np.ones(3, np.float32)})
    with pytest.raises(ValidationError):
        store.set_ref(ref, snapshot)


@pytest.mark.parametrize(
    "value",
    [
        np.array([1, "two", None], dtype=object),
        np.array(["ab", "cd"]),
        np.zeros(3, dtype=[("x", np.int32), ("y", np.float32)]),
        np.arange(6, dtype=">i4"),
        np.arange(12, dtype=np.float32).reshape(3, 4).T,
        np.arange(12, dtype=np.float32)[::2],
        np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
        torch.arange(12.0).reshape(3, 4).t(),
        torch.arange(12.0)[::3],
        torch.ones(3, 3).to_sparse(),
        [1.0, 2.0],
        "not a tensor",
    ],
    ids=[
        "object",
        "unicode",
        "structured",
        "big-endian",
        "transposed",
        "strided",
        "fortran",
        "torch-transposed",
        "torch-strided",
        "torch-sparse",
        "list",
        "str",
    ],
)
def test_unstorable_values_are_refused(store: TensorStore, value: Any) -> None:
    with pytest.raises(ValidationError):
        store.write({"fine": np.ones(CHUNK, np.float32), "bad": value}, ref="r")
    assert list(store.snapshots()) == []
    assert _objects(store) == []


def test_duplicate_names_in_sources_are_refused(store: TensorStore) -> None:
    from weightbase.tensors.sources import sources_from_numpy

    sources = sources_from_numpy({"w": np.ones(3, np.float32)}) * 2
    with pytest.raises(ValidationError, match="twice"):
        store.write(sources)
    assert _objects(store) == []


def test_sharing_counts_stored_bytes(store: TensorStore) -> None:
    rng = np.random.default_rng(11)
    common = rng.standard_normal(2 * CHUNK // 4).astype(np.float32)
    only_a = rng.standard_normal(3 * CHUNK // 4).astype(np.float32)
    only_b = rng.standard_normal(CHUNK // 4 + 10).astype(np.float32)
    a = store.write({"common": common, "mine": only_a}, codec="zstd")
    b = store.write({"common": common, "theirs": only_b}, codec="zstd")
    sizes = {info.key.rsplit("/", 1)[-1]: info.size for info in store.objects.list("chunks/")}

    def stored(snapshot: Snapshot, name: str) -> int:
        return sum(sizes[ref.digest] for ref in snapshot.tensors[name].chunks)

    sharing = store.sharing(a, b)
    assert sharing.shared_bytes == stored(a, "common") == stored(b, "common") > 0
    assert sharing.only_first_bytes == stored(a, "mine")
    assert sharing.only_second_bytes == stored(b, "theirs")
    swapped = store.sharing(b.id, a.id)
    assert swapped.shared_bytes == sharing.shared_bytes
    assert swapped.only_first_bytes == sharing.only_second_bytes
    assert store.sharing(a, a).only_first_bytes == 0
    assert (
        store.sharing(a, a).shared_bytes
        == a.stored_bytes
        == sum(sizes.values()) - stored(b, "theirs")
    )


def test_metadata_and_parent_are_kept(store: TensorStore) -> None:
    base = store.write({"w": np.ones(3, np.float32)}, metadata={"step": "1", "note": "ünïcode"})
    child = store.write({"w": np.ones(3, np.float32)}, parent=base.id, metadata={"step": "2"})
    with TensorStore.open(store.objects.url) as fresh:
        assert dict(fresh.snapshot(base.id).metadata) == {"step": "1", "note": "ünïcode"}
        assert fresh.snapshot(child.id).parent == base.id
    assert child.id != base.id


# -- local backend only ------------------------------------------------------------------------


def test_raw_chunks_on_a_local_store_are_memory_mapped(tmp_path: Path) -> None:
    store = TensorStore.open(tmp_path / "store")
    weights = np.random.default_rng(12).standard_normal((200, 100)).astype(np.float32)
    snapshot = store.write({"w": weights}, codec="raw")
    assert len(snapshot.tensors["w"].chunks) == 1
    out = store.read_tensor(snapshot, "w")
    assert _same_bytes(out, weights)
    assert not out.flags.writeable
    base: Any = out
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview)
    assert isinstance(base.obj, mmap.mmap)
    with pytest.raises(ValueError, match="read-only"):
        out[0, 0] = 1.0
    rows = store.read_tensor(snapshot, "w", rows=slice(10, 20))
    assert not rows.flags.writeable
    assert _same_bytes(rows, weights[10:20])
    # compressed chunks cannot be mapped, but must read just the same
    zstd = store.write({"w": weights}, codec="zstd")
    assert _same_bytes(store.read_tensor(zstd, "w"), weights)


@pytest.mark.parametrize("codec", ["bytegroup", "zstd", "raw"])
def test_whole_reads_give_fresh_writable_arrays(
    tmp_path: Path, codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large outputs are decoded straight into mapped memory; it must behave like any array."""
    monkeypatch.setattr("weightbase.tensors.read._MAP_FROM", 1 << 20)
    store = TensorStore.open(tmp_path / "store", chunk_size=1 << 20)
    rng = np.random.default_rng(13)
    weights = (rng.standard_normal((700, 1024)) * 0.02).astype(np.float32)  # 2.7 MiB, 3 chunks
    tuned = weights + np.float32(1e-4)
    base = store.write({"w": weights, "b": weights[0]}, codec=codec)
    snapshot = store.write({"w": tuned, "b": weights[0]}, parent=base)
    mapped: Any = store.read(base)["w"]
    while isinstance(mapped, np.ndarray):
        mapped = mapped.base
    assert isinstance(mapped, memoryview)
    assert isinstance(mapped.obj, mmap.mmap)  # the mapped path is the one under test
    for expected, got in (
        (weights, store.read(base)["w"]),
        (tuned, store.read(snapshot)["w"]),
        (tuned, store.read_torch(snapshot)["w"].numpy()),
        (tuned[100:600], store.read_tensor(snapshot, "w", rows=slice(100, 600))),
    ):
        assert _same_bytes(got, expected)
        assert got.flags.writeable
        got[0, 0] = 7.0  # no other read sees it
    assert _same_bytes(store.read(snapshot)["w"], tuned)
    assert _same_bytes(store.read_tensor(base, "b"), weights[0])


def test_store_opened_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTBASE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WEIGHTBASE_STORE_URL", raising=False)
    with TensorStore.open() as store:
        first = store.write({"w": np.ones(2, np.int8)}, ref="r")
    with TensorStore.open(tmp_path / "home" / "store") as store:
        assert store.refs() == {"r": first.id}
    monkeypatch.setenv("WEIGHTBASE_STORE_URL", (tmp_path / "elsewhere").as_uri())
    with TensorStore.open() as store:
        assert store.refs() == {}
        second = store.write({"w": np.ones(3, np.int8)}, ref="r")
    with TensorStore.open(tmp_path / "elsewhere") as store:
        assert store.refs() == {"r": second.id}


@pytest.mark.parametrize(
    "options",
    [{"chunk_size": 1000}, {"chunk_size": 4096 + 8}, {"codec": "brotli"}],
)
def test_bad_write_options_are_refused(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TensorStore.open(tmp_path / "store", **options)
