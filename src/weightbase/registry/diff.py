"""Compare two snapshots tensor by tensor: what was added, removed, changed and by how much.

Unchanged tensors are known from their content digests in the manifests, so
they cost nothing; only changed tensors of equal dtype and shape are read, a
block at a time, to measure how far they moved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from weightbase.tensors.dtypes import get_dtype
from weightbase.tensors.store import Sharing

if TYPE_CHECKING:
    from weightbase.registry.records import ModelVersion
    from weightbase.tensors.manifest import Snapshot, TensorEntry
    from weightbase.tensors.store import TensorStore

__all__ = [
    "MetricChange",
    "SnapshotDiff",
    "TensorChange",
    "TensorSummary",
    "ValueDiff",
    "diff_snapshots",
    "diff_to_dict",
]

# Elements compared per block: two float64 copies of 1 Mi elements are 16 MiB.
_BLOCK_ELEMENTS = 1 << 20
# Tensors up to this size are read together, so a pack of small tensors is
# fetched and decoded once for all of them rather than once per tensor.
_SMALL_TENSOR_BYTES = 1 << 20
_SMALL_BATCH_BYTES = 64 << 20
# Element types whose NumPy view is raw bits, not numbers: values are not compared.
_BITS_ONLY = frozenset({"C32", "F4_E2M1_X2", "B8", "B16"})


@dataclass(frozen=True, slots=True)
class TensorSummary:
    """A tensor present in only one of the two snapshots."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "nbytes": self.nbytes,
        }


@dataclass(frozen=True, slots=True)
class ValueDiff:
    """How far a tensor's values moved from ``a`` to ``b``, computed in float64.

    ``relative_l2`` is ||b - a|| / ||a|| (``inf`` when ``a`` is all zeros and ``b``
    is not); ``cosine`` is <a, b> / (||a|| ||b||), 1.0 when both are all zeros and
    0.0 when only one is. ``changed_elements`` counts elements whose values
    differ (NaN equals NaN here).
    """

    max_abs_diff: float
    relative_l2: float
    cosine: float
    changed_elements: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "relative_l2": self.relative_l2,
            "cosine": self.cosine,
            "changed_elements": self.changed_elements,
        }


@dataclass(frozen=True, slots=True)
class TensorChange:
    """A tensor in both snapshots whose content differs.

    ``values`` is ``None`` when dtype or shape changed, when the dtype has no
    numeric view, or when the diff was asked for without reading values.
    """

    name: str
    dtype_before: str
    dtype_after: str
    shape_before: tuple[int, ...]
    shape_after: tuple[int, ...]
    nbytes_before: int
    nbytes_after: int
    values: ValueDiff | None = None

    @property
    def dtype_changed(self) -> bool:
        return self.dtype_before != self.dtype_after

    @property
    def shape_changed(self) -> bool:
        return self.shape_before != self.shape_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype_before": self.dtype_before,
            "dtype_after": self.dtype_after,
            "shape_before": list(self.shape_before),
            "shape_after": list(self.shape_after),
            "nbytes_before": self.nbytes_before,
            "nbytes_after": self.nbytes_after,
            "values": None if self.values is None else self.values.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class MetricChange:
    """A metric of the two versions; ``None`` where a side does not have it."""

    name: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "before": self.before, "after": self.after, "delta": self.delta}


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    """What changed from snapshot ``a`` to snapshot ``b``; every list is sorted by name.

    ``unchanged_bytes`` is the logical size of the unchanged tensors;
    ``sharing`` the stored (compressed) bytes the two snapshots share and hold alone.
    """

    a: str
    b: str
    added: tuple[TensorSummary, ...]
    removed: tuple[TensorSummary, ...]
    changed: tuple[TensorChange, ...]
    unchanged: tuple[str, ...]
    unchanged_bytes: int
    sharing: Sharing
    metrics: tuple[MetricChange, ...] = ()

    @property
    def identical(self) -> bool:
        """The same tensors with the same contents (files and metadata aside)."""
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: the two snapshot ids, ``identical``, then every list and total."""
        return {
            "snapshot_a": self.a,
            "snapshot_b": self.b,
            "identical": self.identical,
            "changed": [change.to_dict() for change in self.changed],
            "added": [summary.to_dict() for summary in self.added],
            "removed": [summary.to_dict() for summary in self.removed],
            "unchanged": list(self.unchanged),
            "unchanged_bytes": self.unchanged_bytes,
            "sharing": {
                "shared_bytes": self.sharing.shared_bytes,
                "only_a_bytes": self.sharing.only_first_bytes,
                "only_b_bytes": self.sharing.only_second_bytes,
            },
            "metrics": [metric.to_dict() for metric in self.metrics],
        }


def diff_to_dict(diff: SnapshotDiff, a: ModelVersion, b: ModelVersion) -> dict[str, Any]:
    """A diff of two model versions as JSON-ready data, led by the versions it compares."""
    return {"a": a.ref, "b": b.ref, **diff.to_dict()}


def diff_snapshots(
    store: TensorStore,
    a: Snapshot | str,
    b: Snapshot | str,
    *,
    metrics_a: Mapping[str, float] | None = None,
    metrics_b: Mapping[str, float] | None = None,
    read_values: bool = True,
) -> SnapshotDiff:
    """Compare snapshot ``a`` (before) with ``b`` (after).

    A tensor is unchanged when its dtype, shape and content digest match;
    that is decided from the manifests alone. Changed tensors of equal dtype
    and shape are read block by block (unless ``read_values`` is false) and
    compared in float64; ``metrics_a`` and ``metrics_b`` are compared by name.
    """
    first, second = store.snapshot(a), store.snapshot(b)
    before, after = first.tensors, second.tensors

    added = tuple(_summary(name, after[name]) for name in sorted(after.keys() - before.keys()))
    removed = tuple(_summary(name, before[name]) for name in sorted(before.keys() - after.keys()))
    unchanged: list[str] = []
    differing: list[str] = []
    for name in sorted(before.keys() & after.keys()):
        old, new = before[name], after[name]
        same = old.digest == new.digest and old.dtype == new.dtype and old.shape == new.shape
        (unchanged if same else differing).append(name)

    comparable = [
        name
        for name in differing
        if read_values
        and before[name].dtype == after[name].dtype
        and before[name].shape == after[name].shape
        and before[name].dtype not in _BITS_ONLY
    ]
    values = _compare_values(store, first, second, comparable)

    changed = tuple(
        TensorChange(
            name=name,
            dtype_before=before[name].dtype,
            dtype_after=after[name].dtype,
            shape_before=before[name].shape,
            shape_after=after[name].shape,
            nbytes_before=before[name].nbytes,
            nbytes_after=after[name].nbytes,
            values=values.get(name),
        )
        for name in differing
    )
    return SnapshotDiff(
        a=first.id,
        b=second.id,
        added=added,
        removed=removed,
        changed=changed,
        unchanged=tuple(unchanged),
        unchanged_bytes=sum(before[name].nbytes for name in unchanged),
        sharing=store.sharing(first, second),
        metrics=_metric_changes(metrics_a or {}, metrics_b or {}),
    )


def _summary(name: str, entry: TensorEntry) -> TensorSummary:
    return TensorSummary(name, entry.dtype, entry.shape, entry.nbytes)


def _metric_changes(
    before: Mapping[str, float], after: Mapping[str, float]
) -> tuple[MetricChange, ...]:
    return tuple(
        MetricChange(
            name,
            float(before[name]) if name in before else None,
            float(after[name]) if name in after else None,
        )
        for name in sorted(before.keys() | after.keys())
    )


# -- values ----------------------------------------------------------------------------


class _Accumulator:
    """Running sums over blocks of a tensor pair, in float64 (complex128 for complex).

    Each block is widened into two scratch buffers that are reused from block to
    block, so comparing a tensor costs two block-sized float64 arrays, not copies
    of the whole tensor (and no fresh pages to fault in for every block).
    """

    def __init__(self, complex_values: bool = False) -> None:
        self.wide = np.dtype(np.complex128 if complex_values else np.float64)
        self.scratch: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None = None
        self.max_abs = 0.0
        self.aa = self.bb = self.ab = self.dd = 0.0
        self.changed = 0

    def _widen(
        self, block_a: np.ndarray[Any, Any], block_b: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        size = block_a.size
        if self.scratch is None or self.scratch[0].size < size:
            self.scratch = (np.empty(size, self.wide), np.empty(size, self.wide))
        a, b = self.scratch[0][:size], self.scratch[1][:size]
        np.copyto(a, block_a.reshape(-1), casting="unsafe")
        np.copyto(b, block_b.reshape(-1), casting="unsafe")
        return a, b

    def add(self, block_a: np.ndarray[Any, Any], block_b: np.ndarray[Any, Any]) -> None:
        if block_a.size == 0:
            return
        a, b = self._widen(block_a, block_b)
        if self.wide.kind == "c":
            aa, bb = float(np.vdot(a, a).real), float(np.vdot(b, b).real)
            self.ab += float(np.vdot(a, b).real)
        else:
            # matmul of two vectors is BLAS ddot: faster here than np.vdot or np.dot
            aa, bb = float(a @ a), float(b @ b)
            self.ab += float(a @ b)
        self.aa, self.bb = self.aa + aa, self.bb + bb
        exact = math.isfinite(aa + bb)
        if not exact:  # NaN or inf around: b - a == 0 no longer means a == b
            both_nan = np.isnan(a) & np.isnan(b)
            self.changed += int(np.count_nonzero((a != b) & ~both_nan))
        np.subtract(b, a, out=b)  # b now holds the difference
        if exact:  # finite doubles differ exactly when their difference is non-zero
            self.changed += int(np.count_nonzero(b))
        magnitude = np.abs(b) if self.wide.kind == "c" else np.abs(b, out=b)
        self.dd += float(magnitude @ magnitude)
        block_max = float(magnitude.max())
        # a NaN anywhere makes the maximum NaN (Python's max() would skip it)
        if math.isnan(block_max) or math.isnan(self.max_abs):
            self.max_abs = math.nan
        else:
            self.max_abs = max(self.max_abs, block_max)

    def result(self) -> ValueDiff:
        norm_a, norm_b = math.sqrt(self.aa), math.sqrt(self.bb)
        relative = math.sqrt(self.dd) / norm_a if norm_a > 0 else 0.0 if self.dd == 0 else math.inf
        if norm_a > 0 and norm_b > 0:
            cosine = max(-1.0, min(1.0, self.ab / (norm_a * norm_b)))
        else:
            cosine = 1.0 if norm_a == norm_b else 0.0
        return ValueDiff(self.max_abs, relative, cosine, self.changed)


def _compare_values(
    store: TensorStore, first: Snapshot, second: Snapshot, names: list[str]
) -> dict[str, ValueDiff]:
    if not names:
        return {}
    small = [n for n in names if first.tensors[n].nbytes <= _SMALL_TENSOR_BYTES]
    large = [n for n in names if first.tensors[n].nbytes > _SMALL_TENSOR_BYTES]
    batches: list[list[str]] = []
    size = _SMALL_BATCH_BYTES
    for name in small:
        if size + first.tensors[name].nbytes > _SMALL_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(name)
        size += first.tensors[name].nbytes

    def compare_batch(batch: list[str]) -> dict[str, ValueDiff]:
        arrays_a, arrays_b = store.read(first, batch), store.read(second, batch)
        out = {}
        for name in batch:
            accumulator = _Accumulator(arrays_a[name].dtype.kind == "c")
            flat_a, flat_b = arrays_a[name].reshape(-1), arrays_b[name].reshape(-1)
            for start in range(0, flat_a.size, _BLOCK_ELEMENTS):
                stop = start + _BLOCK_ELEMENTS
                accumulator.add(flat_a[start:stop], flat_b[start:stop])
            out[name] = accumulator.result()
        return out

    def compare_large(name: str) -> dict[str, ValueDiff]:
        entry = first.tensors[name]
        numpy_dtype = get_dtype(entry.dtype).numpy
        block_bytes = _BLOCK_ELEMENTS * numpy_dtype.itemsize
        accumulator = _Accumulator(numpy_dtype.kind == "c")
        pairs = zip(
            _blocks(store.iter_tensor_bytes(first, name), block_bytes),
            _blocks(store.iter_tensor_bytes(second, name), block_bytes),
            strict=True,
        )
        for raw_a, raw_b in pairs:
            accumulator.add(
                np.frombuffer(raw_a, dtype=numpy_dtype), np.frombuffer(raw_b, dtype=numpy_dtype)
            )
        return {name: accumulator.result()}

    jobs: list[tuple[Any, Any]] = [(compare_batch, batch) for batch in batches]
    jobs += [(compare_large, name) for name in large]
    results: dict[str, ValueDiff] = {}
    workers = min(store.options.workers, len(jobs))
    if workers <= 1:
        for function, argument in jobs:
            results.update(function(argument))
    else:
        # decoding and float64 arithmetic release the GIL: tensors compare in parallel
        with ThreadPoolExecutor(workers, thread_name_prefix="wb-diff") as pool:
            for future in [pool.submit(function, argument) for function, argument in jobs]:
                results.update(future.result())
    return results


def _blocks(pieces: Iterable[memoryview], size: int) -> Iterator[memoryview | bytes]:
    """Re-cut a stream of byte pieces into blocks of ``size`` bytes (the last may be shorter),
    so two tensors chunked differently still line up element for element."""
    pending = bytearray()
    for piece in pieces:
        start = 0
        if pending:
            start = min(size - len(pending), len(piece))
            pending += piece[:start]
            if len(pending) < size:
                continue
            yield bytes(pending)
            pending = bytearray()
        while len(piece) - start >= size:
            yield piece[start : start + size]
            start += size
        pending += piece[start:]
    if pending:
        yield bytes(pending)
