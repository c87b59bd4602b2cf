"""Deriving a snapshot from another's entries: renamed tensors, the same chunks, nothing written.

Runs on every store backend (a local folder and an S3 bucket).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from weightbase.errors import NotFound, ValidationError
from weightbase.tensors import TensorStore
from weightbase.tensors.derive import derive_snapshot, select_prefix
from weightbase.tensors.read import chunk_key
from weightbase.tensors.write import FileSource

CHUNK = 64 * 1024


@pytest.fixture
def store(store_url: str) -> Iterator[TensorStore]:
    with TensorStore.open(store_url, chunk_size=CHUNK) as opened:
        yield opened


def _chunks(store: TensorStore) -> tuple[int, int]:
    infos = list(store.objects.list("chunks/"))
    return len(infos), sum(info.size for info in infos)


def _state(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "model.big": rng.standard_normal((300, 200)).astype(np.float32),  # several chunks
        "model.bias": rng.standard_normal(200).astype(np.float32),  # packed with others
        "optimizer.state.0.exp_avg": rng.standard_normal((300, 200)).astype(np.float32),
        "optimizer.step": np.array([seed], dtype=np.int64),
    }


def test_a_derived_snapshot_reads_back_the_selected_tensors_and_writes_no_chunk(
    store: TensorStore,
) -> None:
    first = store.write(_state(0), ref="checkpoints/a/1")
    nudged = {k: v + np.float32(1e-3) if v.dtype == np.float32 else v for k, v in _state(0).items()}
    second = store.write(nudged, ref="checkpoints/a/2", parent=first, codec="auto")
    before = _chunks(store)

    derived = store.derive(second, select_prefix(second, "model."), metadata={"framework": "x"})

    assert _chunks(store) == before
    assert set(derived.tensors) == {"big", "bias"}
    assert derived.metadata == {"framework": "x"}
    got = store.read(derived.id)
    for name in ("big", "bias"):
        np.testing.assert_array_equal(got[name], nudged[f"model.{name}"])
        assert derived.tensors[name] == second.tensors[f"model.{name}"]
    # the manifest is stored: a fresh store over the same objects finds and verifies it
    with TensorStore.open(store.objects.url) as again:
        assert again.snapshot(derived.id).tensors == derived.tensors


def test_a_derived_snapshot_pinned_by_a_ref_survives_gc_after_its_source_goes(
    store: TensorStore,
) -> None:
    source = store.write(_state(1), ref="checkpoints/b/1")
    derived = store.derive(source, select_prefix(source, "model."), ref="models/b")
    store.delete_ref("checkpoints/b/1")
    store.gc(grace_seconds=0)
    np.testing.assert_array_equal(store.read(derived.id)["big"], _state(1)["model.big"])
    with pytest.raises(NotFound):
        store.read(source.id)


def test_files_can_be_carried_and_renamed(store: TensorStore) -> None:
    source = store.write(
        _state(2), ref="checkpoints/c/1", files=[FileSource("model_config.json", b"{}")]
    )
    before = _chunks(store)
    derived = store.derive(source, {"w": "model.big"}, files={"config.json": "model_config.json"})
    assert _chunks(store) == before
    assert store.file_bytes(derived, "config.json") == b"{}"


def test_a_missing_chunk_refuses_the_manifest(store: TensorStore) -> None:
    source = store.write(_state(3), ref="checkpoints/d/1")
    gone = source.tensors["model.big"].chunks[0].digest
    store.objects.delete(chunk_key(gone))
    wanted = derive_snapshot(source, {"big": "model.big"})
    with pytest.raises(NotFound, match=gone):
        store.derive(source, {"big": "model.big"})
    assert not store.objects.exists(f"snapshots/{wanted.id}")


def test_names_that_are_not_there_are_refused(store: TensorStore) -> None:
    source = store.write(_state(4), ref="checkpoints/e/1")
    with pytest.raises(NotFound, match=r"model\.nothing"):
        store.derive(source, {"x": "model.nothing"})
    with pytest.raises(ValidationError, match="no tensors under"):
        select_prefix(source, "scheduler.")
    with pytest.raises(ValidationError):
        store.derive(source, {"a/b": "model.big"})
