"""Chunk frames: the self-describing unit the object store holds.

A frame is a 16-byte header, an optional 32-byte base digest, then the codec's
payload. A chunk's address is the BLAKE3 digest of its whole frame, so the
codec, the dtype and (for a delta) the base chunk are all part of what is
hashed and verified.

    offset  size  field
    0       3     magic b"WBC"
    3       1     frame version (1)
    4       1     codec id
    5       1     dtype code
    6       1     flags (bit 0: XOR-delta against the base chunk)
    7       1     reserved, 0
    8       8     raw size, little-endian
    16      32    base chunk digest (only when flag bit 0 is set)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import blake3
import numpy as np
import numpy.typing as npt

from weightbase.errors import IntegrityError
from weightbase.tensors.codecs import Buffer, Codec, codec_by_id
from weightbase.tensors.dtypes import DType, dtype_from_code

__all__ = [
    "FLAG_DELTA",
    "FrameHeader",
    "chunk_digest",
    "decode_frame",
    "decode_frame_into",
    "encode_frame",
    "parse_header",
    "xor_bytes",
    "xor_into",
]

_MAGIC = b"WBC"
_VERSION = 1
_HEADER = struct.Struct("<3sBBBBxQ")
FLAG_DELTA = 0x01
HEADER_SIZE = _HEADER.size
DIGEST_SIZE = 32


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """What a frame says about itself."""

    codec_id: int
    dtype: DType
    flags: int
    raw_size: int
    base_digest: str | None
    payload_offset: int

    @property
    def is_delta(self) -> bool:
        return bool(self.flags & FLAG_DELTA)


def chunk_digest(frame: Buffer) -> str:
    """The address of a frame: BLAKE3 of its bytes, as 64 hex digits."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO) if len(frame) >= 1 << 22 else None
    if hasher is None:
        return blake3.blake3(frame).hexdigest()
    hasher.update(frame)
    return hasher.hexdigest()


def xor_bytes(left: Buffer, right: Buffer) -> np.ndarray:
    """``left XOR right`` as a new uint8 array; both must have the same length."""
    a = np.frombuffer(left, dtype=np.uint8)
    b = np.frombuffer(right, dtype=np.uint8)
    if a.size != b.size:
        raise IntegrityError(f"delta base holds {b.size} bytes, the chunk {a.size}")
    out = np.empty_like(a)
    _xor(a, b, out)
    return out


def xor_into(target: npt.NDArray[np.uint8], other: Buffer) -> None:
    """``target ^= other`` in place; both must have the same length."""
    b = np.frombuffer(other, dtype=np.uint8)
    if target.size != b.size:
        raise IntegrityError(f"delta base holds {target.size} bytes, the chunk {b.size}")
    _xor(target, b, target)


def _xor(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], out: npt.NDArray[np.uint8]) -> None:
    words = a.size // 8 * 8  # eight bytes at a time, then the tail
    np.bitwise_xor(
        a[:words].view(np.uint64), b[:words].view(np.uint64), out=out[:words].view(np.uint64)
    )
    np.bitwise_xor(a[words:], b[words:], out=out[words:])


def encode_frame(
    raw: Buffer,
    dtype: DType,
    codec: Codec,
    *,
    base: tuple[str, Buffer] | None = None,
) -> bytes:
    """Frame ``raw`` with ``codec``; with ``base`` (digest, raw bytes) store the XOR residual."""
    flags = 0
    base_field = b""
    data: Buffer = raw
    if base is not None:
        base_digest, base_raw = base
        flags |= FLAG_DELTA
        base_field = bytes.fromhex(base_digest)
        data = xor_bytes(raw, base_raw).data
    payload = codec.encode_parts(data, dtype)
    header = _HEADER.pack(_MAGIC, _VERSION, codec.codec_id, dtype.code, flags, len(raw))
    return b"".join((header, base_field, *payload))


def parse_header(frame: Buffer) -> FrameHeader:
    """Read and check a frame's header; ``IntegrityError`` if it is not a frame."""
    if len(frame) < HEADER_SIZE:
        raise IntegrityError(f"chunk of {len(frame)} bytes is shorter than a frame header")
    magic, version, codec_id, dtype_code, flags, raw_size = _HEADER.unpack_from(frame)
    if magic != _MAGIC or version != _VERSION:
        raise IntegrityError("chunk does not start with a weightbase frame header")
    offset = HEADER_SIZE
    base_digest = None
    if flags & FLAG_DELTA:
        if len(frame) < HEADER_SIZE + DIGEST_SIZE:
            raise IntegrityError("delta chunk is missing its base digest")
        base_digest = bytes(frame[HEADER_SIZE : HEADER_SIZE + DIGEST_SIZE]).hex()
        offset += DIGEST_SIZE
    return FrameHeader(codec_id, dtype_from_code(dtype_code), flags, raw_size, base_digest, offset)


def decode_frame(frame: Buffer, *, base_raw: Buffer | None = None) -> Buffer:
    """The raw bytes a frame holds; a delta frame needs its base chunk's raw bytes."""
    header = parse_header(frame)
    codec = codec_by_id(header.codec_id)
    payload = memoryview(frame)[header.payload_offset :]
    data = codec.decode(payload, header.raw_size, header.dtype)
    if not header.is_delta:
        return data
    if base_raw is None:
        raise IntegrityError("delta chunk decoded without its base", digest=header.base_digest)
    return xor_bytes(data, base_raw).data


def decode_frame_into(frame: Buffer, out: npt.NDArray[np.uint8]) -> None:
    """Decode a frame of exactly ``out.size`` raw bytes into ``out``.

    A delta frame XORs its residual into ``out`` in place, so ``out`` must hold
    its base chunk's raw bytes already: decode a chain keyframe first.
    """
    header = parse_header(frame)
    if header.raw_size != out.size:
        raise IntegrityError(f"chunk holds {header.raw_size} bytes, expected {out.size}")
    codec = codec_by_id(header.codec_id)
    payload = memoryview(frame)[header.payload_offset :]
    if header.is_delta:
        xor_into(out, codec.decode(payload, header.raw_size, header.dtype))
    else:
        codec.decode_into(payload, out, header.dtype)
