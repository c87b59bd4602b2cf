"""Writing snapshots: chunk, encode, deduplicate and commit tensors crash-safely.

Large tensors are split into fixed-size chunks on element boundaries, so a
tensor and its fine-tuned successor line up chunk for chunk and a delta can be
taken per chunk. Small tensors are packed together (fewer objects); pack
boundaries are chosen by the tensor names' hashes, so changing one small tensor
rewrites one pack, not all of them. Chunks are encoded on a thread pool and
written before the manifest; the manifest is written before the ref that makes
the snapshot reachable.

``write_snapshot`` needs only an object store: the ``TensorStore`` resolves
the parent and sets the ref. What a write cost is counted into a ``WriteStats``
the caller owns, so concurrent writes never share one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import blake3

from weightbase.errors import IntegrityError, NotFound, ValidationError
from weightbase.tensors.chunks import HEADER_SIZE, chunk_digest, encode_frame
from weightbase.tensors.codecs import CODEC_NAMES, Buffer, Codec, codec_by_name
from weightbase.tensors.dtypes import DType, get_dtype
from weightbase.tensors.manifest import ChunkRef, FileEntry, Snapshot, TensorEntry, validate_name
from weightbase.tensors.read import ChunkReader, chunk_key
from weightbase.tensors.sources import TensorSource

if TYPE_CHECKING:
    from weightbase.tensors.objects import ObjectStore

__all__ = ["FileSource", "WriteOptions", "WriteStats", "write_snapshot"]

_U8 = get_dtype("U8")
# Encoded sizes above this fraction of raw are not worth decoding: store raw.
_RAW_IF_ABOVE = 0.98
# A delta this small is kept without trying the full encoding as well.
_DELTA_GOOD_ENOUGH = 0.5
# A delta adds a level to every later read of its chunk: it must save this much of a keyframe.
_DELTA_PAYS_BELOW = 0.9
# Large tensors hashed and looked up side by side: mostly waiting, on a remote store.
_PLANNERS = 16


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """How a snapshot is written. ``codec`` is a codec name, ``"auto"`` or ``"delta"``."""

    codec: str = "auto"
    chunk_size: int = 4 << 20
    pack_threshold: int = 64 << 10
    pack_size: int = 1 << 20
    #: Delta levels a read of any chunk may resolve; past it a write stores a keyframe.
    max_delta_chain: int = 4
    workers: int = 4

    def __post_init__(self) -> None:
        if self.codec not in CODEC_NAMES:
            codec_by_name(self.codec)  # raises with the list of choices
        if self.chunk_size < 4096 or self.chunk_size % 16:
            raise ValidationError("chunk_size must be a multiple of 16 bytes, at least 4 KiB")
        if self.max_delta_chain < 0:
            raise ValidationError("max_delta_chain must be 0 (no deltas) or more")


@dataclass(frozen=True, slots=True)
class FileSource:
    """A non-tensor file to keep in a snapshot; ``tensors`` marks a safetensors header."""

    name: str
    data: Buffer
    tensors: tuple[str, ...] = ()
    kind: str = "blob"
    size: int | None = None  # of the whole file, where ``data`` is only its header
    digest: str | None = None


@dataclass(slots=True)
class WriteStats:
    """What writes did: logical bytes, bytes newly stored, chunks new and reused.

    Owned by the caller and passed as ``stats=`` to a write, which adds its
    counts as it goes; one object may gather several writes, even concurrent ones.
    ``new_bytes`` counts each chunk a write stored once, and a write stores only
    chunks its snapshot references, so for one write into fresh stats
    ``new_bytes <= snapshot.stored_bytes``.
    """

    raw_bytes: int = 0
    new_bytes: int = 0
    new_chunks: int = 0
    reused_chunks: int = 0
    reused_tensors: int = 0
    delta_chunks: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_raw(self, nbytes: int) -> None:
        """Count ``nbytes`` logical bytes written."""
        with self._lock:
            self.raw_bytes += nbytes

    def add_chunk(self, stored: int, *, new: bool, delta: bool) -> None:
        with self._lock:
            if new:
                self.new_bytes += stored
                self.new_chunks += 1
            else:
                self.reused_chunks += 1
            self.delta_chunks += int(delta)

    def add_reused_tensor(self, chunks: int) -> None:
        """Count a tensor whose ``chunks`` were all stored before."""
        with self._lock:
            self.reused_tensors += 1
            self.reused_chunks += chunks


@dataclass(frozen=True, slots=True)
class _Encoded:
    frame: bytes
    digest: str
    bases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Planned:
    """A large tensor hashed, its delta base chosen, before anything of it is encoded."""

    source: TensorSource
    digest: str
    base: TensorEntry | None
    index_key: str
    #: the parent's entry for the same content, reused without an index lookup
    same: TensorEntry | None


def _index_key(digest: str, dtype: DType, shape: tuple[int, ...], policy: str) -> str:
    token = blake3.blake3(f"{digest}|{dtype.name}|{shape}|{policy}".encode()).hexdigest()
    return f"index/{token[:2]}/{token}"


class _Writer:
    def __init__(
        self,
        objects: ObjectStore,
        options: WriteOptions,
        parent: Snapshot | None,
        progress: Callable[[int], None] | None,
        stats: WriteStats,
    ) -> None:
        self.objects = objects
        self.reader = ChunkReader(objects)  # for the parent chunks deltas are taken against
        self.options = options
        self.parent = parent
        self.progress = progress
        self.stats = stats
        self.pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="wb-write")
        self.in_flight = threading.BoundedSemaphore(options.workers * 2 + 2)
        self.claimed: set[str] = set()  # chunk digests this write has stored or found
        self.claim_lock = threading.Lock()
        # parent tensors by content digest, to reuse entries for unchanged tensors
        self.parent_by_digest: dict[tuple[str, str, tuple[int, ...]], TensorEntry] = {}
        if parent is not None:
            for entry in parent.tensors.values():
                self.parent_by_digest[(entry.digest, entry.dtype, entry.shape)] = entry

    # -- chunks --------------------------------------------------------------------

    def _codec_for(self, dtype: DType) -> Codec:
        name = self.options.codec
        if name in ("auto", "delta"):
            name = "bytegroup" if dtype.is_float and dtype.itemsize > 1 else "zstd"
        return codec_by_name(name)

    def _encode(self, raw: Buffer, dtype: DType, base: tuple[ChunkRef, Buffer] | None) -> _Encoded:
        codec = self._codec_for(dtype)
        explicit = self.options.codec not in ("auto", "delta")
        delta: _Encoded | None = None
        if base is not None:
            ref, base_raw = base
            frame = encode_frame(raw, dtype, codec, base=(ref.digest, base_raw))
            delta = _Encoded(frame, "", (ref.digest, *ref.bases))
            if self.options.codec == "delta" or len(frame) <= _DELTA_GOOD_ENOUGH * len(raw):
                return _finish(delta)
        best = _Encoded(encode_frame(raw, dtype, codec), "", ())
        if delta is not None and len(delta.frame) <= _DELTA_PAYS_BELOW * len(best.frame):
            best = delta
        if not explicit and len(best.frame) - HEADER_SIZE > _RAW_IF_ABOVE * len(raw):
            best = _Encoded(encode_frame(raw, dtype, codec_by_name("raw")), "", ())
        return _finish(best)

    def _store_chunk(
        self,
        raw: Buffer,
        dtype: DType,
        base: tuple[ChunkRef, Buffer] | None,
        offset: int,
        length: int,
    ) -> ChunkRef:
        encoded = self._encode(raw, dtype, base)
        key = chunk_key(encoded.digest)
        # Equal chunks of one write (tied weights, zero tensors) run side by side: only the
        # first to claim a digest may count it new, or new_bytes would count it twice.
        with self.claim_lock:
            first = encoded.digest not in self.claimed
            self.claimed.add(encoded.digest)
        new = first and not self._refresh(key)
        if new:
            self.objects.put(key, encoded.frame)
        self.stats.add_chunk(len(encoded.frame), new=new, delta=bool(encoded.bases))
        if self.progress is not None:
            self.progress(len(raw))
        return ChunkRef(encoded.digest, offset, length, len(encoded.frame), encoded.bases)

    def _refresh(self, key: str) -> bool:
        """Whether ``key`` exists; if so, mark it fresh so a concurrent gc keeps it."""
        with self.objects.lock(exclusive=False):
            try:
                self.objects.touch(key)
            except NotFound:
                return False
            return True

    def _submit(self, fn: Callable[[], ChunkRef]) -> Future[ChunkRef]:
        self.in_flight.acquire()
        future = self.pool.submit(fn)
        future.add_done_callback(lambda _: self.in_flight.release())
        return future

    # -- tensors -------------------------------------------------------------------

    def _content_digest(self, source: TensorSource) -> str:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        step = self.options.chunk_size * 4
        for offset in range(0, source.nbytes, step):
            hasher.update(source.read(offset, min(step, source.nbytes - offset)))
        return hasher.hexdigest()

    def _reuse(
        self, entry: TensorEntry | None, source: TensorSource, digest: str
    ) -> TensorEntry | None:
        """An entry already stored for the same content, if all its chunks are still there."""
        if entry is None or not _describes(entry, source, digest):
            return None
        digests = {d for ref in entry.chunks for d in (ref.digest, *ref.bases)}
        if not all(self._refresh(chunk_key(d)) for d in digests):
            return None
        self.stats.add_reused_tensor(len(entry.chunks))
        if self.progress is not None:
            self.progress(entry.nbytes)
        return entry

    def _delta_base(self, source: TensorSource) -> TensorEntry | None:
        if self.parent is None or self.options.codec not in ("auto", "delta"):
            return None
        base = self.parent.tensors.get(source.name)
        if base is None or base.dtype != source.dtype.name or base.shape != source.shape:
            return None
        if any(ref.offset for ref in base.chunks):
            return None  # packed: too small to be worth a delta
        if [ref.length for ref in base.chunks] != list(self._lengths(source)):
            return None
        if any(len(ref.bases) >= self.options.max_delta_chain for ref in base.chunks):
            return None  # start a fresh keyframe rather than lengthen the chain
        return base

    def _lengths(self, source: TensorSource) -> Iterable[int]:
        step = self.options.chunk_size // source.dtype.itemsize * source.dtype.itemsize
        for offset in range(0, source.nbytes, step):
            yield min(step, source.nbytes - offset)

    def plan(self, source: TensorSource) -> _Planned:
        """Hash a large tensor and choose its delta base: what its index entry is keyed by."""
        digest = self._content_digest(source)
        base = self._delta_base(source)
        policy = f"{self.options.codec}/{self.options.chunk_size}/{base.digest if base else '-'}"
        index_key = _index_key(digest, source.dtype, source.shape, policy)
        same = self.parent_by_digest.get((digest, source.dtype.name, source.shape))
        return _Planned(source, digest, base, index_key, same)

    def tensor(self, planned: _Planned, indexed: Buffer | None) -> Callable[[], TensorEntry]:
        """Start writing a large tensor; the returned function waits for its entry.

        ``indexed`` is the index entry stored under ``planned.index_key``, if any.
        """
        source, digest, base, index_key = (
            planned.source,
            planned.digest,
            planned.base,
            planned.index_key,
        )
        reused = self._reuse(planned.same, source, digest) or self._reuse(
            _index_entry(indexed), source, digest
        )
        if reused is not None:
            return lambda: reused

        futures: list[Future[ChunkRef]] = []
        offset = 0
        for index, length in enumerate(self._lengths(source)):
            raw = source.read(offset, length)
            base_ref = base.chunks[index] if base is not None else None
            futures.append(self._submit(self._chunk_job(raw, source.dtype, base_ref, length)))
            offset += length
        codec = self.options.codec

        def finish() -> TensorEntry:
            refs = tuple(f.result() for f in futures)
            entry = TensorEntry(
                source.dtype.name,
                source.shape,
                source.nbytes,
                codec,
                digest,
                refs,
                base.digest if base is not None and any(r.bases for r in refs) else None,
            )
            # the index is a shortcut: a crash may lose an entry, never the snapshot
            self.objects.put(index_key, json.dumps(entry.to_dict()).encode(), durable=False)
            return entry

        return finish

    def _chunk_job(
        self, raw: Buffer, dtype: DType, base_ref: ChunkRef | None, length: int
    ) -> Callable[[], ChunkRef]:
        def job() -> ChunkRef:
            base = None
            # Refresh the base's chain as any reused chunk is refreshed: the delta will need
            # it, and a gc would collect it if the parent is unreferenced. Gone: a keyframe.
            if base_ref is not None and all(
                self._refresh(chunk_key(d)) for d in (base_ref.digest, *base_ref.bases)
            ):
                base = (base_ref, self.reader.raw(base_ref))
            return self._store_chunk(raw, dtype, base, 0, length)

        return job

    # -- packs of small tensors --------------------------------------------------------

    def packs(self, sources: list[TensorSource]) -> dict[str, Callable[[], TensorEntry]]:
        """Pack small tensors; a pack ends where a name's hash says so, or when it is full."""
        pending: dict[str, Callable[[], TensorEntry]] = {}
        group: list[tuple[TensorSource, bytes, str]] = []
        size = 0

        def flush() -> None:
            nonlocal group, size
            if group:
                members, group, size = group, [], 0
                future = self._submit(self._pack_job(b"".join(m[1] for m in members)))
                offset = 0
                for source, data, digest in members:
                    pending[source.name] = _pack_entry(future, source, digest, offset, self.options)
                    offset += len(data)

        for source in sources:
            data = bytes(source.read(0, source.nbytes))
            group.append((source, data, blake3.blake3(data).hexdigest()))
            size += len(data)
            boundary = blake3.blake3(source.name.encode()).digest()[0] % 8 == 0
            if boundary or size >= self.options.pack_size:
                flush()
        flush()
        return pending

    def _pack_job(self, data: bytes) -> Callable[[], ChunkRef]:
        return lambda: self._store_chunk(data, _U8, None, 0, len(data))

    # -- files ---------------------------------------------------------------------------

    def file(self, source: FileSource) -> Callable[[], FileEntry]:
        view = memoryview(source.data).cast("B")
        futures = []
        step = self.options.chunk_size
        for offset in range(0, len(view), step):
            piece = view[offset : offset + step]
            futures.append(
                self._submit(partial(self._store_chunk, piece, _U8, None, 0, len(piece)))
            )
        digest = source.digest or blake3.blake3(view).hexdigest()
        size = len(view) if source.size is None else source.size

        def finish() -> FileEntry:
            refs = tuple(f.result() for f in futures)
            return FileEntry(size, digest, refs, source.tensors, source.kind)

        return finish


def _describes(entry: TensorEntry, source: TensorSource, digest: str) -> bool:
    """Whether ``entry`` is one of ``source``'s content: a cheap check against a bad index entry."""
    return (
        entry.digest == digest
        and entry.dtype == source.dtype.name
        and entry.shape == source.shape
        and entry.nbytes == source.nbytes
        and sum(ref.length for ref in entry.chunks) == source.nbytes
    )


def _index_entry(data: Buffer | None) -> TensorEntry | None:
    """The entry an index object holds; a damaged one is only a missed shortcut."""
    if data is None:
        return None
    try:
        return TensorEntry.from_dict(json.loads(bytes(data)))
    except (ValueError, LookupError, TypeError, AttributeError, IntegrityError):
        return None


def _finish(encoded: _Encoded) -> _Encoded:
    return _Encoded(encoded.frame, chunk_digest(encoded.frame), encoded.bases)


def _pack_entry(
    future: Future[ChunkRef], source: TensorSource, digest: str, offset: int, options: WriteOptions
) -> Callable[[], TensorEntry]:
    def finish() -> TensorEntry:
        pack = future.result()
        ref = ChunkRef(pack.digest, offset, source.nbytes, pack.stored)
        chunks = (ref,) if source.nbytes else ()
        return TensorEntry(
            source.dtype.name, source.shape, source.nbytes, options.codec, digest, chunks
        )

    return finish


def write_snapshot(
    objects: ObjectStore,
    sources: list[TensorSource],
    *,
    files: Iterable[FileSource] = (),
    parent: Snapshot | None = None,
    metadata: Mapping[str, str] | None = None,
    options: WriteOptions | None = None,
    progress: Callable[[int], None] | None = None,
    stats: WriteStats | None = None,
) -> Snapshot:
    """Write every chunk to ``objects``, then the manifest; return the snapshot.

    What the write cost is added into ``stats``, when given. Nothing refers to
    the snapshot until the caller sets a ref on it; the manifest is written only
    once every chunk is durable. The write holds the store's lock shared; a
    caller that sets a ref holds it across both, or a gc with no grace period
    may take the unreferenced manifest in between. Delta bases are read from ``parent``'s chunks
    in the same object store.
    """
    options = options or WriteOptions()
    files = list(files)
    _check_names(sources, files)
    # Held shared from the first chunk to the manifest (the caller holds it on to the ref):
    # gc takes it exclusively, so it never sweeps chunks this write stored or reuses.
    with objects.lock(exclusive=False):
        return _write(objects, sources, files, parent, metadata, options, progress, stats)


def _write(
    objects: ObjectStore,
    sources: list[TensorSource],
    files: list[FileSource],
    parent: Snapshot | None,
    metadata: Mapping[str, str] | None,
    options: WriteOptions,
    progress: Callable[[int], None] | None,
    stats: WriteStats | None,
) -> Snapshot:
    writer = _Writer(
        objects, options, parent, progress, stats if stats is not None else WriteStats()
    )
    try:
        small = [s for s in sources if s.nbytes <= options.pack_threshold]
        large = [s for s in sources if s.nbytes > options.pack_threshold]
        pending: dict[str, Callable[[], TensorEntry]] = {}
        # Each large tensor is hashed, then all are looked up at once (is this content stored
        # already?): on a store across a network that is one round trip, not one a tensor.
        # The manifest keeps the sources' order all the same.
        with ThreadPoolExecutor(max_workers=_PLANNERS) as planner:
            planned = list(planner.map(writer.plan, large))
        indexed = objects.get_many(sorted({p.index_key for p in planned if p.same is None}))
        for plan in planned:
            pending[plan.source.name] = writer.tensor(plan, indexed.get(plan.index_key))
        pending.update(writer.packs(small))
        pending_files = {f.name: writer.file(f) for f in files}
        tensors = {name: finish() for name, finish in pending.items()}
        file_entries = {name: finish() for name, finish in pending_files.items()}
    finally:
        writer.pool.shutdown(wait=True, cancel_futures=True)
    writer.stats.add_raw(sum(s.nbytes for s in sources) + sum(len(f.data) for f in files))
    snapshot = Snapshot(
        tensors=tensors,
        files=file_entries,
        parent=parent.id if parent is not None else None,
        metadata=dict(metadata or {}),
    )
    objects.sync()  # every chunk's name is durable before the manifest exists
    objects.put(f"snapshots/{snapshot.id}", snapshot.to_json())
    objects.sync()
    return snapshot


def _check_names(sources: list[TensorSource], files: list[FileSource]) -> None:
    seen: set[str] = set()
    for source in sources:
        validate_name(source.name)
        if source.name in seen:
            raise ValidationError(f"tensor {source.name!r} is given twice", name=source.name)
        seen.add(source.name)
    names: set[str] = set()
    for file in files:
        validate_name(file.name, what="file")
        if file.name in names:
            raise ValidationError(f"file {file.name!r} is given twice", name=file.name)
        names.add(file.name)
        missing = [t for t in file.tensors if t not in seen]
        if missing:
            raise ValidationError(f"file {file.name!r} names unknown tensors {missing[:3]}")
