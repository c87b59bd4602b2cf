"""Verified reads: fetch a chunk, check its digest, decode it, resolve delta chains.

Every byte handed out has been hashed against the digest it is addressed by;
a mismatch raises ``IntegrityError`` naming the tensor and the chunk.
"""

from __future__ import annotations

from collections.abc import Iterator

from weightbase.errors import IntegrityError, NotFound
from weightbase.tensors.chunks import chunk_digest, decode_frame, parse_header
from weightbase.tensors.codecs import Buffer
from weightbase.tensors.manifest import ChunkRef, TensorEntry
from weightbase.tensors.objects import ObjectStore

__all__ = ["ChunkReader", "chunk_key", "spans"]


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
        """The decoded bytes of a whole chunk, resolving its delta chain."""
        chain = (ref.digest, *ref.bases)
        frames = [self.frame(digest, tensor=tensor) for digest in chain]
        data: Buffer | None = None
        for digest, frame in zip(reversed(chain), reversed(frames), strict=True):
            header = parse_header(frame)
            if header.is_delta != (data is not None):
                raise IntegrityError(
                    f"chunk {digest[:16]}… of {_what(tensor)} does not match its delta chain",
                    tensor=tensor,
                    chunk=digest,
                )
            if data is not None and header.base_digest != _previous(chain, digest):
                raise IntegrityError(
                    f"delta chunk {digest[:16]}… names another base than its manifest",
                    tensor=tensor,
                    chunk=digest,
                )
            try:
                data = decode_frame(frame, base_raw=data)
            except IntegrityError as exc:
                raise IntegrityError(
                    f"chunk {digest[:16]}… of {_what(tensor)} does not decode: {exc}",
                    tensor=tensor,
                    chunk=digest,
                ) from exc
        assert data is not None
        return data


def _previous(chain: tuple[str, ...], digest: str) -> str:
    return chain[chain.index(digest) + 1]


def _what(tensor: str | None) -> str:
    return f"tensor {tensor!r}" if tensor else "an object"
