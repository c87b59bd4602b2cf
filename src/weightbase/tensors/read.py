"""Verified reads: fetch a chunk, check its digest, decode it, resolve delta chains.

Every byte handed out has been hashed against the digest it is addressed by;
a mismatch raises ``IntegrityError`` naming the tensor and the chunk. A read
of many tensors is planned first (``plan_reads``: each chunk once, with the
slices of it each tensor needs), then read into host memory (``read_ranges``)
or, by ``weightbase.tensors.gpu``, into pinned buffers bound for a device.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from weightbase.errors import IntegrityError, NotFound
from weightbase.tensors.chunks import chunk_digest, decode_frame, decode_frame_into, parse_header
from weightbase.tensors.codecs import Buffer, codec_by_id
from weightbase.tensors.codecs.basic import RawCodec
from weightbase.tensors.dtypes import get_dtype
from weightbase.tensors.manifest import ChunkRef, TensorEntry
from weightbase.tensors.objects import ObjectStore

__all__ = [
    "ChunkRead",
    "ChunkReader",
    "ChunkSlice",
    "TensorRange",
    "chunk_key",
    "new_buffer",
    "plan_reads",
    "read_ranges",
    "spans",
]

# Outputs this large are mapped afresh (glibc does so anyway from 32 MiB); smaller
# ones come from NumPy, which recycles them from the heap, already backed.
_MAP_FROM = 32 << 20


def new_buffer(size: int) -> npt.NDArray[np.uint8]:
    """A fresh writable buffer for ``size`` decoded bytes.

    Large ones are private anonymous mappings in 4 KiB pages, faulted in as the
    reader threads decode into them; freed like any array, when the last view
    of it goes. Measured in a Firecracker VM, per GiB:

    - NumPy's own large arrays ask for huge pages: 0.1 s to back when the guest
      freed them a moment ago, but 1-2.6 s once it has reported them free to the
      host (seconds later), or beside other work holding memory in 4 KiB pages.
    - 4 KiB pages: 0.35-0.45 s whatever came before.
    - Populating them ahead with ``MADV_POPULATE_WRITE`` runs under the
      address-space lock, which the other threads' chunk unmaps also take (page
      faults need only the mapping's own lock): a full 1 GiB read then took
      0.7-2.3 s, against 0.63-0.88 s faulting pages in as they are written.
    """
    if size < _MAP_FROM or not hasattr(mmap, "MAP_ANONYMOUS"):
        return np.empty(size, dtype=np.uint8)
    mapping = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(mapping, dtype=np.uint8)


def chunk_key(digest: str) -> str:
    """The object key of a chunk: fanned out by its first two hex digits."""
    return f"chunks/{digest[:2]}/{digest}"


def spans(entry: TensorEntry, start: int, stop: int) -> Iterator[tuple[ChunkRef, int, int, int]]:
    """For the byte range ``[start, stop)`` of a tensor: (chunk, offset in chunk, length, offset
    in the range) for every chunk that overlaps it."""
    position = 0
    for ref in entry.chunks:
        chunk_start, chunk_stop = position, position + ref.length
        position = chunk_stop
        lo, hi = max(start, chunk_start), min(stop, chunk_stop)
        if lo < hi:
            yield ref, ref.offset + lo - chunk_start, hi - lo, lo - start
        if chunk_start >= stop:
            break


@dataclass(frozen=True, slots=True)
class TensorRange:
    """Bytes ``start .. stop`` of a tensor, to be read and shaped as ``shape``."""

    entry: TensorEntry
    start: int
    stop: int
    shape: tuple[int, ...]

    @classmethod
    def whole(cls, entry: TensorEntry) -> TensorRange:
        return cls(entry, 0, entry.nbytes, entry.shape)

    @property
    def nbytes(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, slots=True)
class ChunkSlice:
    """``length`` decoded bytes of a chunk from ``offset``, bound for byte ``at`` of a range."""

    tensor: str
    offset: int
    length: int
    at: int


@dataclass(frozen=True, slots=True)
class ChunkRead:
    """One chunk to fetch and decode once, and the slices of it that tensors need."""

    ref: ChunkRef
    slices: tuple[ChunkSlice, ...]

    @property
    def nbytes(self) -> int:
        """Bytes this read hands out: the sum of its slices."""
        return sum(piece.length for piece in self.slices)

    def read_into(self, reader: ChunkReader, outs: Sequence[npt.NDArray[np.uint8]]) -> None:
        """Decode the chunk into ``outs``: one buffer per slice, each as long as its slice."""
        if len(self.slices) == 1:  # decoded straight into its output: no buffer of its own
            piece = self.slices[0]
            reader.read_into(self.ref, piece.offset, outs[0], tensor=piece.tensor)
            return
        # a pack of small tensors (or a chunk a tensor repeats): decoded once, then placed
        raw = reader.raw(self.ref, tensor=self.slices[0].tensor)
        for piece, out in zip(self.slices, outs, strict=True):
            out[:] = np.frombuffer(raw, dtype=np.uint8, count=piece.length, offset=piece.offset)


def plan_reads(ranges: Mapping[str, TensorRange]) -> list[ChunkRead]:
    """The chunks to read for ``ranges`` (tensor name → range), each chunk once."""
    slices: dict[str, tuple[ChunkRef, list[ChunkSlice]]] = {}
    for name, wanted in ranges.items():
        for ref, offset, length, at in spans(wanted.entry, wanted.start, wanted.stop):
            slices.setdefault(ref.digest, (ref, []))[1].append(ChunkSlice(name, offset, length, at))
    return [ChunkRead(ref, tuple(pieces)) for ref, pieces in slices.values()]


def read_ranges(
    reader: ChunkReader, ranges: Mapping[str, TensorRange], *, workers: int
) -> dict[str, np.ndarray[Any, Any]]:
    """``ranges`` as NumPy arrays of their dtypes and shapes; chunks decoded on ``workers``
    threads, each straight into the arrays."""
    outputs = {name: new_buffer(wanted.nbytes) for name, wanted in ranges.items()}

    def job(read: ChunkRead) -> None:
        read.read_into(reader, [outputs[p.tensor][p.at : p.at + p.length] for p in read.slices])

    reads = plan_reads(ranges)
    if len(reads) <= 1:
        for read in reads:
            job(read)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="wb-read") as pool:
            for future in [pool.submit(job, read) for read in reads]:
                future.result()
    return {
        name: outputs[name].view(get_dtype(wanted.entry.dtype).numpy).reshape(wanted.shape)
        for name, wanted in ranges.items()
    }


class ChunkReader:
    """Reads and verifies chunks from an object store; memory-maps them where it can."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    def frame(self, digest: str, *, tensor: str | None = None) -> Buffer:
        """The verified frame of chunk ``digest``."""
        key = chunk_key(digest)
        try:
            data = self.objects.map(key)
            if data is None:
                data = self.objects.get(key)
        except NotFound:
            raise IntegrityError(
                f"chunk {digest[:16]}… of {_what(tensor)} is missing from the store",
                tensor=tensor,
                chunk=digest,
                missing=True,
            ) from None
        if chunk_digest(data) != digest:
            raise IntegrityError(
                f"chunk {digest[:16]}… of {_what(tensor)} is corrupt: its bytes do not match "
                "its digest",
                tensor=tensor,
                chunk=digest,
                missing=False,
            )
        return data

    def raw(self, ref: ChunkRef, *, tensor: str | None = None) -> Buffer:
        """The decoded bytes of a whole chunk, resolving its delta chain.

        A chunk stored raw comes as a view of its frame (for a local store, a
        read-only view of the mapped file); any other is decoded into a fresh buffer.
        """
        return self._whole(self._chain(ref, tensor), tensor)

    def read_into(
        self, ref: ChunkRef, start: int, out: npt.NDArray[np.uint8], *, tensor: str | None = None
    ) -> None:
        """Bytes ``start .. start + out.size`` of a chunk's raw bytes, into ``out``.

        A whole chunk is decoded straight into ``out`` (its delta chain XORed in
        place): no buffer of its own, no copy. Part of one is decoded, then copied.
        """
        chain = self._chain(ref, tensor)
        if start == 0 and parse_header(chain[-1][1]).raw_size == out.size:
            self._decode_into(chain, out, tensor)
            return
        data = self._whole(chain, tensor)
        out[:] = np.frombuffer(data, dtype=np.uint8, count=out.size, offset=start)

    def _whole(self, chain: list[tuple[str, Buffer]], tensor: str | None) -> Buffer:
        header = parse_header(chain[-1][1])
        if len(chain) == 1 and isinstance(codec_by_id(header.codec_id), RawCodec):
            digest, frame = chain[0]
            with _decoding(digest, tensor):
                return decode_frame(frame)
        out = new_buffer(header.raw_size)
        self._decode_into(chain, out, tensor)
        return out.data

    def _chain(self, ref: ChunkRef, tensor: str | None) -> list[tuple[str, Buffer]]:
        """The verified frames of a chunk's delta chain, keyframe first."""
        chain = (ref.digest, *ref.bases)
        frames = [self.frame(digest, tensor=tensor) for digest in chain]
        ordered = list(zip(reversed(chain), reversed(frames), strict=True))
        for index, (digest, frame) in enumerate(ordered):
            header = parse_header(frame)
            if header.is_delta != (index > 0):
                raise IntegrityError(
                    f"chunk {digest[:16]}… of {_what(tensor)} does not match its delta chain",
                    tensor=tensor,
                    chunk=digest,
                )
            if index and header.base_digest != ordered[index - 1][0]:
                raise IntegrityError(
                    f"delta chunk {digest[:16]}… names another base than its manifest",
                    tensor=tensor,
                    chunk=digest,
                )
        return ordered

    def _decode_into(
        self, chain: list[tuple[str, Buffer]], out: npt.NDArray[np.uint8], tensor: str | None
    ) -> None:
        for digest, frame in chain:
            with _decoding(digest, tensor):
                decode_frame_into(frame, out)


@contextmanager
def _decoding(digest: str, tensor: str | None) -> Iterator[None]:
    """Name the tensor and the chunk in a decoding error."""
    try:
        yield
    except IntegrityError as exc:
        raise IntegrityError(
            f"chunk {digest[:16]}… of {_what(tensor)} does not decode: {exc}",
            tensor=tensor,
            chunk=digest,
        ) from exc


def _what(tensor: str | None) -> str:
    return f"tensor {tensor!r}" if tensor else "an object"
