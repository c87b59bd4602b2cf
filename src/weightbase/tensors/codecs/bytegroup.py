"""Byte-grouped lossless compression for floating-point chunks.

Each value is cut into byte planes (see ``_planes``): the low exponent bits
with the first mantissa bits are Huffman-coded, the sign and high exponent
bits are bit-packed (``_bitpack``), the near-random low mantissa bytes are
stored as they are unless zstd finds something in them. XOR residuals (mostly
zero high bytes) are cut into plain byte planes instead, and their mostly-zero
planes stored sparse. Every choice is made per chunk and recorded in the
payload, so the decoder needs nothing but the payload and the raw size.

Payload layout (little-endian), first byte is the mode:

    0x00  stored: the raw bytes follow
    0x01  zstd:   one zstd frame of the raw bytes
    0x02  planes: width u8, split u8, then per plane (``width`` of them) a
                  method u8 and a size u32, zero padding to a multiple of 8
                  bytes; then the planes' bytes, last plane first; then the
                  ``raw_size % width`` tail bytes

Plane methods: 0 stored, 1 zstd frame, 2 bit-packed, 3 low halves (4-byte
values only: planes 2 and 3 kept together as the values' low uint16, given on
plane 2 with plane 3 empty; it saves three passes when decoding), 4 sparse (a
u32 size, a zstd frame of the bitmap of nonzero bytes, a zstd frame of those
bytes; Huffman spends at least a bit per byte, which mostly-zero planes of XOR
residuals cannot afford).
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
import zstandard

from weightbase.errors import IntegrityError
from weightbase.tensors.codecs._bitpack import PackError, pack_plane, unpack_plane
from weightbase.tensors.codecs._planes import (
    U8,
    WIDTHS,
    PlaneLayout,
    Scratch,
    low_halves,
    merge_planes,
    split_planes,
)
from weightbase.tensors.codecs.base import Buffer, Codec
from weightbase.tensors.dtypes import DType

__all__ = ["ByteGroupCodec"]

_STORED, _ZSTD, _PLANES = 0, 1, 2
_PLANE_STORED, _PLANE_ZSTD, _PLANE_PACKED, _PLANE_LOW_HALVES, _PLANE_SPARSE = 0, 1, 2, 3, 4
_PLANES_HEAD = struct.Struct("<BBB")
_PLANE_ENTRY = struct.Struct("<BI")
_SPARSE_HEAD = struct.Struct("<I")

# split = first bit of the top 16 that goes into the head plane: six low
# exponent bits and two mantissa bits for bf16/f32/f64, all five exponent bits
# and three mantissa bits for f16 (measured best on real weights).
_LAYOUTS = {
    "BF16": PlaneLayout(2, 5),
    "F16": PlaneLayout(2, 7),
    "F32": PlaneLayout(4, 5),
    "C64": PlaneLayout(4, 5),
    "F64": PlaneLayout(8, 2),
    "C128": PlaneLayout(8, 2),
}
# prefer="speed": the head plane is the exponent byte alone and the sign with
# the mantissa bits above the low bytes is stored as it is (ZipNN's layout).
# MiniLM: fp32 0.8187 of raw (vs 0.8167), bf16 0.6651 (vs 0.6611); decoding
# about 1.5x faster for fp32 and 1.7x for bf16, no bit unpacking.
_FAST_LAYOUTS = {
    **_LAYOUTS,
    "BF16": PlaneLayout(2, 7),
    "F32": PlaneLayout(4, 7),
    "C64": PlaneLayout(4, 7),
}

# Huffman-only zstd: a 64-entry hash table and 7-byte minimum matches leave
# almost everything to the literal coder, which beats zstd's greedy matches on
# i.i.d. exponents (0.33 vs 0.41 of the exponent plane at level 3) and runs at
# about 1 GB/s. A 128 KiB window is also the block size, so each 128 KiB of a
# plane gets its own Huffman table.
_HUFFMAN_PARAMS = zstandard.ZstdCompressionParameters(
    window_log=17,
    hash_log=6,
    chain_log=6,
    search_log=1,
    min_match=7,
    strategy=zstandard.STRATEGY_FAST,
    write_content_size=True,
)
_GENERIC_LEVEL = 3
# A compressed plane must save at least 1/_MIN_GAIN of its size, or it is
# stored: stored planes cost nothing to decode.
_MIN_GAIN = 128
# Bit-packed planes decode about 3x faster than Huffman-coded ones: take them
# unless Huffman is more than 2% smaller, and skip Huffman altogether when the
# plane's entropy says it cannot be.
_PACK_PREFERENCE = 0.98
_PACK_SLACK = 1.02
# Low planes are probed in this many places, this many bytes each, before zstd
# is tried on the whole plane.
_PROBES, _PROBE = 8, 8 << 10
# Values sampled to tell weights from XOR residuals, and to spot sparse planes.
_SAMPLE = 1 << 14
# A chunk whose top bytes are mostly zero is an XOR residual (weights always
# have exponent bits there): plain byte planes suit it better.
_RESIDUAL_ZEROS = 0.5
_RESIDUAL_SPLIT = 8
# Planes with more zero bytes than this also try the sparse method.
_SPARSE_ZEROS = 0.5


class _Contexts(threading.local):
    """zstd contexts are not thread-safe, scratch buffers are per call: one set per thread."""

    def __init__(self) -> None:
        self.huffman = zstandard.ZstdCompressor(compression_params=_HUFFMAN_PARAMS)
        self.fast = zstandard.ZstdCompressor(level=1)
        self.generic = zstandard.ZstdCompressor(level=_GENERIC_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()
        self.scratch = Scratch()


def _table_size(width: int) -> int:
    """Header of a planes payload, padded so the first plane is 8-byte aligned."""
    size = _PLANES_HEAD.size + width * _PLANE_ENTRY.size
    return -(-size // 8) * 8


class ByteGroupCodec(Codec):
    """Splits floats into exponent and mantissa byte planes and entropy-codes each.

    ``prefer`` only steers the encoder (smaller chunks, or faster decoding);
    any payload decodes whatever it was written with.
    """

    name = "bytegroup"
    codec_id = 3

    def __init__(self, prefer: Literal["ratio", "speed"] = "ratio") -> None:
        self._layouts = _LAYOUTS if prefer == "ratio" else _FAST_LAYOUTS
        self._contexts = _Contexts()

    # -- encoding ---------------------------------------------------------------

    def encode(self, raw: Buffer, dtype: DType) -> Buffer:
        return b"".join(self.encode_parts(raw, dtype))

    def encode_parts(self, raw: Buffer, dtype: DType) -> list[Buffer]:
        data = np.frombuffer(raw, dtype=np.uint8)
        if data.size == 0:
            return [bytes((_STORED,))]
        layout = self._layouts.get(dtype.name)
        if layout is None or data.size < 2 * layout.width:
            compressor = self._contexts.huffman if dtype.is_float else self._contexts.generic
            return self._whole(data, compressor)
        return self._planes(data, layout)

    def _whole(self, data: U8, compressor: zstandard.ZstdCompressor) -> list[Buffer]:
        compressed = compressor.compress(data.data)
        if len(compressed) >= data.size:
            return [bytes((_STORED,)), data.data]
        return [bytes((_ZSTD,)), compressed]

    def _planes(self, data: U8, layout: PlaneLayout) -> list[Buffer]:
        width = layout.width
        body = data.size - data.size % width
        values = data[:body]
        step = max(1, body // width // _SAMPLE)
        top_bytes = values[width - 1 :: width * step]
        if np.count_nonzero(top_bytes) < top_bytes.size * (1 - _RESIDUAL_ZEROS):
            layout = PlaneLayout(width, _RESIDUAL_SPLIT)
        scratch = self._contexts.scratch
        planes = split_planes(values, layout, scratch)
        choices = [self._plane(index, plane) for index, plane in enumerate(planes)]
        if width == 4 and all(method == _PLANE_STORED for method, _ in choices[2:]):
            choices[2:] = [
                (_PLANE_LOW_HALVES, low_halves(values, scratch).data),
                (_PLANE_LOW_HALVES, b""),
            ]
        table = b"".join(
            [_PLANES_HEAD.pack(_PLANES, width, layout.split)]
            + [_PLANE_ENTRY.pack(method, len(stored)) for method, stored in choices]
        )
        table = table.ljust(_table_size(width), b"\0")
        parts = [table, *(stored for _, stored in reversed(choices)), data[body:].data]
        if sum(len(part) for part in parts) > data.size:
            return [bytes((_STORED,)), data.data]
        return parts

    def _plane(self, index: int, plane: U8) -> tuple[int, Buffer]:
        """How to store one plane: (method, bytes)."""
        # The head plane is skewed and never bit-constant: only Huffman fits it.
        packed = pack_plane(plane, self._contexts.scratch) if index else None
        if packed is not None and len(packed.data) <= packed.entropy_size * _PACK_SLACK:
            return _PLANE_PACKED, packed.data  # no entropy coder would do much better
        # head/rest carry the exponent: Huffman. Low mantissa bytes are
        # near-random; level 1 is as cheap on them and also finds repeats.
        compressor = self._contexts.huffman if index < 2 else self._contexts.fast
        best: tuple[int, Buffer] = (_PLANE_STORED, plane.data)
        if index < 2 or _compressible(plane, compressor):
            compressed = compressor.compress(plane.data)
            if len(compressed) <= plane.size - plane.size // _MIN_GAIN - 1:
                best = (_PLANE_ZSTD, compressed)
        sample = plane[:: max(1, plane.size // _SAMPLE)]
        if np.count_nonzero(sample) < sample.size * (1 - _SPARSE_ZEROS):
            sparse = self._sparse(plane)
            if len(sparse) < len(best[1]):
                best = (_PLANE_SPARSE, sparse)
        if packed is not None and len(packed.data) * _PACK_PREFERENCE <= len(best[1]):
            best = (_PLANE_PACKED, packed.data)
        return best

    def _sparse(self, plane: U8) -> bytes:
        nonzero = plane != 0
        bitmap = self._contexts.huffman.compress(np.packbits(nonzero).data)
        values = self._contexts.huffman.compress(plane[nonzero].data)
        return b"".join((_SPARSE_HEAD.pack(len(bitmap)), bitmap, values))

    # -- decoding ---------------------------------------------------------------

    def decode(self, payload: Buffer, raw_size: int, dtype: DType) -> Buffer:
        view = memoryview(payload).cast("B")
        mode = _mode(view)
        if mode == _STORED:
            _check_stored(view, raw_size)
            return view[1:]  # no copy: a view of the payload
        if mode == _ZSTD:
            _check_frame(view[1:], raw_size)  # before allocating what it declares
            out = np.empty(raw_size, dtype=np.uint8)
            self._unzstd_into(view[1:], out)
            return out.data
        planes = self._unplanes(view, raw_size)  # every size checked before allocating
        out = np.empty(raw_size, dtype=np.uint8)
        planes.merge_into(out, self._contexts.scratch)
        return out.data

    def decode_into(self, payload: Buffer, out: U8, dtype: DType) -> None:
        view = memoryview(payload).cast("B")
        mode = _mode(view)
        if mode == _STORED:
            _check_stored(view, out.size)
            out[:] = np.frombuffer(view, dtype=np.uint8, offset=1)
        elif mode == _ZSTD:
            self._unzstd_into(view[1:], out)
        else:
            self._unplanes(view, out.size).merge_into(out, self._contexts.scratch)

    def _unzstd_into(self, frame: memoryview, out: U8) -> U8:
        """Decompress a frame of exactly ``out.size`` bytes into ``out``."""
        try:
            _check_frame(frame, out.size)  # before trusting what a corrupt header might say
            reader = self._contexts.decompressor.stream_reader(frame, read_size=len(frame))
            filled = reader.readinto(out)
            leftover = reader.read(1)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"bytegroup zstd frame does not decode: {exc}") from exc
        if filled != out.size or leftover:
            raise IntegrityError(f"bytegroup zstd frame does not decode to {out.size} bytes")
        return out

    def _unzstd_scratch(self, frame: memoryview, name: str, size: int) -> U8:
        """Decompress a frame of ``size`` bytes into scratch buffer ``name``.

        Reused buffers spare a fresh multi-MiB allocation, and its page faults, per call.
        """
        _check_frame(frame, size)  # before allocating what a corrupt header might say
        return self._unzstd_into(frame, self._contexts.scratch.get(name, size))

    def _unplanes(self, view: memoryview, raw_size: int) -> _DecodedPlanes:
        """Check a planes payload and decode its planes (into scratch), ready to merge."""
        if len(view) < _PLANES_HEAD.size:
            raise IntegrityError("bytegroup payload is shorter than its header")
        _, width, split = _PLANES_HEAD.unpack_from(view)
        if width not in WIDTHS or not 1 <= split <= _RESIDUAL_SPLIT:
            raise IntegrityError(
                f"bytegroup payload names no layout (width {width}, split {split})"
            )
        layout = PlaneLayout(width, split)
        count, tail = divmod(raw_size, width)
        start = _table_size(width)
        if len(view) < start:
            raise IntegrityError("bytegroup payload is shorter than its plane table")
        entries = [
            _PLANE_ENTRY.unpack_from(view, _PLANES_HEAD.size + index * _PLANE_ENTRY.size)
            for index in range(width)
        ]
        if start + sum(size for _, size in entries) + tail != len(view):
            raise IntegrityError("bytegroup plane sizes do not add up to the payload")
        # Plane bytes lie last plane first.
        offsets = {}
        offset = start
        for index in reversed(range(width)):
            offsets[index] = offset
            offset += entries[index][1]
        scratch = self._contexts.scratch
        planes: list[U8] = []
        low: U8 | None = None
        for index, (method, size) in enumerate(entries):
            chunk = view[offsets[index] : offsets[index] + size]
            if method == _PLANE_LOW_HALVES:
                if width != 4 or index < 2 or (index == 3) != (low is not None):
                    raise IntegrityError("bytegroup low halves are not where they belong")
                if size != (2 * count if index == 2 else 0):
                    raise IntegrityError(
                        f"bytegroup low halves hold {size} bytes for {count} values"
                    )
                if index == 2:
                    low = np.frombuffer(chunk, dtype=np.uint8)
            elif low is not None:
                raise IntegrityError("bytegroup low halves are not where they belong")
            elif method == _PLANE_STORED:
                if size != count:
                    raise IntegrityError(
                        f"bytegroup stored plane holds {size} bytes, expected {count}"
                    )
                planes.append(np.frombuffer(chunk, dtype=np.uint8))
            elif method == _PLANE_ZSTD:
                planes.append(self._unzstd_scratch(chunk, f"decode.plane{index}", count))
            elif method == _PLANE_PACKED and index:
                # Never the first plane: a packed plane of constant bytes says nothing
                # of its length, the first plane must vouch for ``raw_size``.
                try:
                    planes.append(unpack_plane(chunk, count, scratch, f"decode.packed{index}"))
                except PackError as exc:
                    raise IntegrityError(f"bytegroup plane does not unpack: {exc}") from exc
            elif method == _PLANE_SPARSE:
                planes.append(self._unsparse(chunk, f"decode.plane{index}", count))
            else:
                raise IntegrityError(f"bytegroup plane has unknown method {method}")
        return _DecodedPlanes(layout, planes, low, view[offset:])

    def _unsparse(self, chunk: memoryview, name: str, size: int) -> U8:
        if len(chunk) < _SPARSE_HEAD.size:
            raise IntegrityError("bytegroup sparse plane is shorter than its header")
        (bitmap_size,) = _SPARSE_HEAD.unpack_from(chunk)
        if _SPARSE_HEAD.size + bitmap_size > len(chunk):
            raise IntegrityError("bytegroup sparse plane is shorter than its bitmap")
        bitmap_frame = chunk[_SPARSE_HEAD.size : _SPARSE_HEAD.size + bitmap_size]
        bitmap = self._unzstd_scratch(bitmap_frame, "decode.bitmap", -(-size // 8))
        nonzero = np.unpackbits(bitmap, count=size).view(np.bool_)
        values_frame = chunk[_SPARSE_HEAD.size + bitmap_size :]
        values = self._unzstd_scratch(
            values_frame, "decode.nonzero", int(np.count_nonzero(nonzero))
        )
        out = self._contexts.scratch.get(name, size)
        out.fill(0)
        out[nonzero] = values
        return out


def _compressible(plane: U8, compressor: zstandard.ZstdCompressor) -> bool:
    """Whether zstd may save anything on a plane, judged by probes spread across it.

    Low mantissa bytes are near-random: a full attempt on them costs as much as
    the rest of the encoding, and almost always comes to nothing.
    """
    if plane.size < _PROBES * _PROBE * 4:
        return True
    stride = plane.size // _PROBES
    probes = [plane[index * stride : index * stride + _PROBE] for index in range(_PROBES)]
    compressed = sum(len(compressor.compress(probe.data)) for probe in probes)
    return compressed < _PROBES * _PROBE * (1 - 1 / (2 * _MIN_GAIN))


@dataclass(frozen=True, slots=True)
class _DecodedPlanes:
    """A checked planes payload, its planes decoded, waiting for an output buffer."""

    layout: PlaneLayout
    planes: list[U8]
    low: U8 | None  # the low halves of 4-byte values, in place of planes 2 and 3
    tail: memoryview  # the ``raw_size % width`` bytes after the last whole value

    def merge_into(self, out: U8, scratch: Scratch) -> None:
        body = out.size - len(self.tail)
        if body:
            merge_planes(self.planes, self.layout, out[:body], scratch, self.low)
        out[body:] = np.frombuffer(self.tail, dtype=np.uint8)


def _mode(view: memoryview) -> int:
    if len(view) == 0:
        raise IntegrityError("bytegroup payload is empty")
    mode = view[0]
    if mode not in (_STORED, _ZSTD, _PLANES):
        raise IntegrityError(f"bytegroup payload has unknown mode {mode}")
    return mode


def _check_stored(view: memoryview, size: int) -> None:
    if len(view) - 1 != size:
        raise IntegrityError(
            f"bytegroup stored payload holds {len(view) - 1} bytes, expected {size}"
        )


def _check_frame(frame: memoryview, size: int) -> None:
    # Without this check zstd would allocate whatever a corrupt header declares.
    try:
        declared = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"bytegroup zstd frame has no valid header: {exc}") from exc
    if declared != size:
        raise IntegrityError(f"bytegroup zstd frame declares {declared} bytes, expected {size}")
