"""The tensor store: snapshots of named tensors over an object store, with refs.

store = TensorStore.open()                     # WEIGHTBASE_STORE_URL or ~/.weightbase/store
snap = store.write({"w": array}, ref="my-model")
store.read(snap)["w"]                          # verified, bit-exact
store.read_tensor(snap, "w", rows=slice(0, 8)) # reads only the chunks it needs

The store resolves names, refs and snapshots; the work is done by
``weightbase.tensors.write`` (``write_snapshot``) and ``weightbase.tensors.read``
(``plan_reads``, ``read_ranges``), and by ``weightbase.tensors.gpu`` onto a device.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from weightbase.config import settings
from weightbase.errors import NotFound, ValidationError
from weightbase.tensors.dtypes import get_dtype
from weightbase.tensors.maintenance import DEFAULT_GRACE_SECONDS, FsckReport, GcReport, fsck, gc
from weightbase.tensors.manifest import Snapshot, TensorEntry, validate_name
from weightbase.tensors.objects import ObjectStore, open_object_store
from weightbase.tensors.read import ChunkReader, TensorRange, read_ranges, spans
from weightbase.tensors.sources import TensorSource, sources_from_mapping
from weightbase.tensors.write import FileSource, WriteOptions, WriteStats, write_snapshot

if TYPE_CHECKING:
    import torch

__all__ = ["Sharing", "TensorStore"]

SnapshotLike = Snapshot | str


@dataclass(frozen=True, slots=True)
class Sharing:
    """How much storage two snapshots share (stored bytes, after compression)."""

    shared_bytes: int
    only_first_bytes: int
    only_second_bytes: int


class TensorStore:
    """Content-addressed snapshots of tensors, stored once chunk by chunk, read verified."""

    def __init__(self, objects: ObjectStore, *, options: WriteOptions | None = None) -> None:
        self.objects = objects
        self.options = options or WriteOptions()
        self.reader = ChunkReader(objects)
        self._manifests: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str | Path | None = None, **options: Any) -> TensorStore:
        """Open (creating if needed) the store at ``url``, by default from the settings."""
        target = url if url is not None else settings().store_url
        return cls(open_object_store(target), options=WriteOptions(**options))

    def __repr__(self) -> str:
        return f"TensorStore({self.objects.url!r})"

    def close(self) -> None:
        self.objects.close()

    def __enter__(self) -> TensorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------

    def write(
        self,
        tensors: Mapping[str, Any] | Iterable[TensorSource],
        *,
        ref: str | None = None,
        parent: SnapshotLike | None = None,
        files: Iterable[FileSource] = (),
        metadata: Mapping[str, str] | None = None,
        codec: str | None = None,
        progress: Callable[[int], None] | None = None,
        stats: WriteStats | None = None,
    ) -> Snapshot:
        """Store tensors (NumPy arrays, a torch state dict, or sources) as a snapshot.

        With ``parent``, unchanged tensors are shared with it and changed ones
        may be stored as XOR-deltas of it (``codec="auto"`` decides per chunk).
        The snapshot is pinned by ``ref`` (default ``snapshots/<id>``) once all
        of it is durable. What the write cost (bytes newly stored, chunks new
        and reused) is added into ``stats``, a ``WriteStats`` the caller owns.
        """
        sources = sources_from_mapping(tensors)
        options = self.options
        if codec is not None and codec != options.codec:
            options = WriteOptions(**{**_fields(options), "codec": codec})
        parent_snapshot = self.snapshot(parent) if parent is not None else None
        if ref is not None:
            validate_name(ref, what="ref")
        # one hold of the store's lock from the first chunk to the ref: gc waits for both
        with self.objects.lock(exclusive=False):
            snapshot = write_snapshot(
                self.objects,
                sources,
                files=files,
                parent=parent_snapshot,
                metadata=metadata,
                options=options,
                progress=progress,
                stats=stats,
            )
            self.set_ref(ref or f"snapshots/{snapshot.id}", snapshot)
        return snapshot

    def derive(
        self,
        snapshot: SnapshotLike,
        tensors: Mapping[str, str],
        *,
        files: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        ref: str | None = None,
    ) -> Snapshot:
        """A snapshot of ``snapshot``'s tensors (and files) renamed ``{new: old}``, sharing
        every chunk: no decode, no encode, no chunk written (see ``tensors.derive``).

        Pinned by ``ref`` when given; without one only gc's grace period keeps it
        until a ref names it. A store that cannot write manifests (a remote
        workspace's) raises ``NotSupported``.
        """
        from weightbase.tensors.derive import commit_snapshot, derive_snapshot

        derived = derive_snapshot(self.snapshot(snapshot), tensors, files=files, metadata=metadata)
        # one hold of the store's lock from the manifest to the ref, as ``write`` does: a
        # gc in between would find the manifest unreferenced
        with self.objects.lock(exclusive=False):
            commit_snapshot(self.objects, derived)
            if ref is not None:
                self.set_ref(ref, derived)
        return derived

    # -- snapshots and refs --------------------------------------------------------------

    def snapshot(self, snapshot: SnapshotLike) -> Snapshot:
        """The snapshot with this id (or a ref name, or a unique id prefix), verified."""
        if isinstance(snapshot, Snapshot):
            return snapshot
        snapshot_id = self.resolve(snapshot)
        with self._lock:
            cached = self._manifests.get(snapshot_id)
        if cached is not None:
            return cached
        try:
            data = self.objects.get(f"snapshots/{snapshot_id}")
        except NotFound:
            raise NotFound(f"no snapshot {snapshot_id} in {self.objects.url}") from None
        loaded = Snapshot.from_json(bytes(data), expected_id=snapshot_id)
        with self._lock:
            self._manifests[snapshot_id] = loaded
            while len(self._manifests) > 64:
                self._manifests.popitem(last=False)
        return loaded

    def resolve(self, name: str) -> str:
        """A snapshot id from an id, a unique id prefix (≥ 6 digits) or a ref name."""
        if _is_digest(name):
            return name
        try:
            return self.get_ref(name)
        except NotFound:
            pass
        if len(name) >= 6 and all(c in "0123456789abcdef" for c in name):
            matches = [info.key.split("/")[-1] for info in self.objects.list(f"snapshots/{name}")]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ValidationError(f"snapshot prefix {name!r} is ambiguous")
        raise NotFound(f"no snapshot or ref called {name!r} in {self.objects.url}", name=name)

    def snapshots(self) -> Iterator[str]:
        """Ids of every snapshot manifest in the store, referenced or not."""
        for info in self.objects.list("snapshots/"):
            yield info.key.rsplit("/", 1)[-1]

    def set_ref(self, name: str, snapshot: SnapshotLike) -> None:
        """Point ``name`` at a snapshot; a ref keeps its snapshot from garbage collection."""
        validate_name(name, what="ref")
        snapshot_id = snapshot.id if isinstance(snapshot, Snapshot) else self.resolve(snapshot)
        with self.objects.lock(exclusive=False):  # no gc between the check and the ref
            if not self.objects.exists(f"snapshots/{snapshot_id}"):
                raise NotFound(f"no snapshot {snapshot_id} to point ref {name!r} at")
            self.objects.put(f"refs/{name}", f"{snapshot_id}\n".encode())
            self.objects.sync()

    def get_ref(self, name: str) -> str:
        validate_name(name, what="ref")
        try:
            return bytes(self.objects.get(f"refs/{name}")).decode().strip()
        except NotFound:
            raise NotFound(f"no ref {name!r} in {self.objects.url}", ref=name) from None

    def delete_ref(self, name: str) -> None:
        validate_name(name, what="ref")
        if not self.objects.exists(f"refs/{name}"):
            raise NotFound(f"no ref {name!r} in {self.objects.url}", ref=name)
        self.objects.delete(f"refs/{name}")
        self.objects.sync()

    def refs(self, prefix: str = "") -> dict[str, str]:
        """Every ref (whose name starts with ``prefix``) and the snapshot id it points at."""
        found = {}
        for info in self.objects.list(f"refs/{prefix}"):
            try:
                target = bytes(self.objects.get(info.key)).decode().strip()
            except NotFound:
                continue  # deleted since it was listed, by another process
            found[info.key.removeprefix("refs/")] = target
        return found

    def sharing(self, first: SnapshotLike, second: SnapshotLike) -> Sharing:
        """Stored bytes two snapshots share and hold alone."""
        a = self.snapshot(first).chunk_sizes()
        b = self.snapshot(second).chunk_sizes()
        shared = sum(size for digest, size in a.items() if digest in b)
        return Sharing(
            shared,
            sum(a.values()) - shared,
            sum(size for digest, size in b.items() if digest not in a),
        )

    # -- maintenance -------------------------------------------------------------------

    def fsck(self, *, progress: Callable[[int], None] | None = None) -> FsckReport:
        """Re-hash every chunk and manifest; see ``weightbase.tensors.maintenance.fsck``."""
        return fsck(self, progress=progress)

    def gc(
        self, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False
    ) -> GcReport:
        """Remove what no ref reaches; see ``weightbase.tensors.maintenance.gc``."""
        return gc(self, grace_seconds=grace_seconds, dry_run=dry_run)

    # -- reading ----------------------------------------------------------------------

    def _entry(self, snapshot: Snapshot, name: str) -> TensorEntry:
        try:
            return snapshot.tensors[name]
        except KeyError:
            raise NotFound(
                f"snapshot {snapshot.id[:12]} has no tensor {name!r}", tensor=name
            ) from None

    def read_tensor(
        self,
        snapshot: SnapshotLike,
        name: str,
        *,
        rows: slice | None = None,
        device: str | None = None,
    ) -> Any:
        """One tensor, or the rows ``rows`` of its first dimension, reading only their chunks.

        Returns a NumPy array (read-only where it maps a raw chunk in place), or a
        torch tensor when ``device`` is given.
        """
        snap = self.snapshot(snapshot)
        wanted = _row_range(self._entry(snap, name), rows)
        if device is not None:
            from weightbase.tensors.gpu import read_to_device

            return read_to_device(
                self.reader, {name: wanted}, device, workers=self.options.workers
            )[name]
        return self._read_numpy(wanted, name)

    def read(
        self,
        snapshot: SnapshotLike,
        names: Iterable[str] | None = None,
        *,
        device: str | None = None,
    ) -> dict[str, Any]:
        """Tensors of a snapshot as NumPy arrays, or torch tensors on ``device``."""
        snap = self.snapshot(snapshot)
        wanted = list(snap.tensors) if names is None else list(names)
        ranges = {name: TensorRange.whole(self._entry(snap, name)) for name in wanted}
        if device is not None:
            from weightbase.tensors.gpu import read_to_device

            return read_to_device(self.reader, ranges, device, workers=self.options.workers)
        return read_ranges(self.reader, ranges, workers=self.options.workers)

    def read_torch(
        self, snapshot: SnapshotLike, names: Iterable[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Tensors of a snapshot as CPU torch tensors (every torch dtype, bf16 and fp8 too)."""
        from weightbase.tensors.formats.torch import to_torch

        snap = self.snapshot(snapshot)
        arrays = self.read(snap, names)
        return {name: to_torch(array, snap.tensors[name].dtype) for name, array in arrays.items()}

    def _read_numpy(self, wanted: TensorRange, name: str) -> np.ndarray[Any, Any]:
        pieces = list(spans(wanted.entry, wanted.start, wanted.stop))
        if len(pieces) == 1 and pieces[0][2] == wanted.nbytes:
            # one chunk holds it all: hand out the decoded buffer itself (for a raw
            # chunk on a local store, a read-only view of the memory-mapped file)
            ref, offset, length, _ = pieces[0]
            raw = self.reader.raw(ref, tensor=name)
            flat = np.frombuffer(raw, dtype=np.uint8, count=length, offset=offset)
            return flat.view(get_dtype(wanted.entry.dtype).numpy).reshape(wanted.shape)
        return read_ranges(self.reader, {name: wanted}, workers=self.options.workers)[name]

    def iter_tensor_bytes(self, snapshot: SnapshotLike, name: str) -> Iterator[memoryview]:
        """A tensor's raw bytes, chunk by chunk, for streaming it into a file."""
        snap = self.snapshot(snapshot)
        entry = self._entry(snap, name)
        for ref, offset, length, _ in spans(entry, 0, entry.nbytes):
            raw = memoryview(self.reader.raw(ref, tensor=name)).cast("B")
            yield raw[offset : offset + length]

    def file_bytes(self, snapshot: SnapshotLike, name: str) -> bytes:
        """The stored bytes of a file (for a safetensors file: its header)."""
        snap = self.snapshot(snapshot)
        try:
            entry = snap.files[name]
        except KeyError:
            raise NotFound(f"snapshot {snap.id[:12]} has no file {name!r}", file=name) from None
        return b"".join(
            bytes(memoryview(self.reader.raw(ref, tensor=name)).cast("B")[o : o + n])
            for ref, o, n in ((r, r.offset, r.length) for r in entry.chunks)
        )


def _row_range(entry: TensorEntry, rows: slice | None) -> TensorRange:
    if rows is None:
        return TensorRange.whole(entry)
    if not entry.shape:
        raise ValidationError("a 0-d tensor has no rows to slice")
    if rows.step not in (None, 1):
        raise ValidationError("row slices must be contiguous (step 1)")
    first, last, _ = rows.indices(entry.shape[0])
    last = max(first, last)
    row_bytes = entry.nbytes // entry.shape[0] if entry.shape[0] else 0
    return TensorRange(entry, first * row_bytes, last * row_bytes, (last - first, *entry.shape[1:]))


def _is_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _fields(options: WriteOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}
