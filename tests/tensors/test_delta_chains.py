"""Delta chains stay short, deltas are kept only where they pay, and write stats add up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weightbase.errors import ValidationError
from weightbase.tensors import Snapshot, TensorStore, WriteOptions, WriteStats

CHUNK = 64 * 1024
Array = np.ndarray[Any, Any]


@pytest.fixture
def store(tmp_path: Path) -> TensorStore:
    return TensorStore.open(tmp_path / "store", chunk_size=CHUNK)


def _step(array: Array, seed: int) -> Array:
    """Every weight nudged, as an optimizer step nudges them."""
    rng = np.random.default_rng(seed)
    return (array + rng.standard_normal(array.shape, np.float32) * 1e-4).astype(np.float32)


def _depth(snapshot: Snapshot) -> int:
    return max(len(ref.bases) for entry in snapshot.tensors.values() for ref in entry.chunks)


def _same(store: TensorStore, ref: str, expected: dict[str, Array]) -> bool:
    found = store.read(ref)
    return found.keys() == expected.keys() and all(
        found[name].tobytes() == value.tobytes() for name, value in expected.items()
    )


def test_the_default_chain_is_short_and_reads_back_exactly(store: TensorStore) -> None:
    bound = WriteOptions().max_delta_chain
    assert bound <= 4  # each level costs every later read a fetch, a hash and a decode
    state = {"w": np.random.default_rng(0).standard_normal(CHUNK // 2, np.float32)}
    parent = store.write(state, ref="step-0")
    depths = [0]
    for step in range(1, 3 * bound):
        state = {"w": _step(state["w"], step)}
        parent = store.write(state, parent=parent, ref=f"step-{step}", codec="delta")
        depths.append(_depth(parent))
    assert max(depths) == bound
    assert depths[bound + 1] == 0  # a keyframe once the bound is reached
    assert _same(store, f"step-{3 * bound - 1}", state)


def test_a_delta_that_barely_saves_is_stored_as_a_keyframe(store: TensorStore) -> None:
    rng = np.random.default_rng(1)
    base = rng.standard_normal(CHUNK, np.float32)
    store.write({"w": base}, ref="base")
    # 15 % of the values kept: the XOR delta is about 97 % of a keyframe's size
    other = rng.standard_normal(CHUNK, np.float32)
    kept = rng.random(CHUNK) < 0.15
    other[kept] = base[kept]
    stats = WriteStats()
    child = store.write({"w": other}, parent="base", ref="child", stats=stats)
    assert stats.delta_chunks == 0
    assert _depth(child) == 0
    assert _same(store, "child", {"w": other})


def test_a_delta_that_pays_is_kept(store: TensorStore) -> None:
    base = np.random.default_rng(2).standard_normal(CHUNK, np.float32)
    store.write({"w": base}, ref="base")
    stats = WriteStats()
    store.write({"w": _step(base, 3)}, parent="base", stats=stats)
    assert stats.delta_chunks == stats.new_chunks > 0


def test_max_delta_chain_zero_stores_no_deltas(tmp_path: Path) -> None:
    with TensorStore.open(tmp_path / "s", chunk_size=CHUNK, max_delta_chain=0) as store:
        base = np.random.default_rng(4).standard_normal(CHUNK, np.float32)
        parent = store.write({"w": base})
        stats = WriteStats()
        store.write({"w": _step(base, 5)}, parent=parent, codec="delta", stats=stats)
        assert stats.delta_chunks == 0
    with pytest.raises(ValidationError):
        WriteOptions(max_delta_chain=-1)


def test_new_bytes_of_equal_tensors_in_one_write_are_counted_once(store: TensorStore) -> None:
    tied = np.random.default_rng(6).standard_normal(8 * CHUNK // 4, np.float32)
    state = {"embed": tied, "lm_head": tied.copy(), "decoder": tied.copy()}
    stats = WriteStats()
    snapshot = store.write(state, stats=stats)
    assert stats.new_bytes == snapshot.stored_bytes
    assert stats.new_chunks == len(snapshot.chunk_sizes())


@pytest.mark.parametrize("with_parent", [False, True])
def test_new_bytes_never_exceed_stored_bytes(store: TensorStore, with_parent: bool) -> None:
    rng = np.random.default_rng(7)
    zeros = np.zeros(3 * CHUNK // 4, np.float32)
    base = {
        "a": rng.standard_normal(CHUNK, np.float32),
        "b": zeros,
        "c": zeros.copy(),
        "bias": rng.standard_normal(64, np.float32),
        "bias2": np.zeros(64, np.float32),
    }
    first = store.write(base, ref="base")
    changed = {**base, "a": _step(base["a"], 8), "d": zeros.copy()}
    stats = WriteStats()
    second = store.write(changed, parent=first if with_parent else None, stats=stats)
    assert 0 < stats.new_bytes <= second.stored_bytes
    again = WriteStats()
    store.write(changed, parent=second, stats=again)
    assert again.new_bytes == again.new_chunks == 0
