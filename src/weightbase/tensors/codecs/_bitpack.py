"""Bit packing for byte planes whose bits are mostly constant.

The ``rest`` plane of a float layout holds the sign, the high exponent bits
(the same for every weight between 2**-63 and 2) and low mantissa bits: six
random bits out of eight. Huffman gets it to six bits too, but decodes at about
1.3 GB/s; dropping the constant bits and packing the others decodes at memory
speed. Values that break the constant bits (a stray zero or an outlier) are
patched back from an exception list.

Encoded plane, little-endian:

    mask u8         bits that vary (are packed); the others are ``const``
    const u8        value of the constant bits (``const & mask == 0``)
    exceptions u32  number of patched values
    parts           the packed bits: for a part of ``p`` bits per value,
                    ``8 // p`` segments of the (padded) plane share each byte
    indices         ``exceptions`` u32 values, increasing, each < plane size
    values          ``exceptions`` u8 values, the whole original bytes
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from weightbase.tensors.codecs._planes import U8, Scratch

__all__ = ["PackError", "PackedPlane", "pack_plane", "unpack_plane"]

_HEAD = struct.Struct("<BBI")
_ALIGN = 64  # padded plane length: every segment of every part is whole uint64 words
_MAX_EXCEPTIONS = 1 / 1024  # of the plane, beyond which Huffman wins anyway
_SAMPLE = 1 << 16

U64 = npt.NDArray[np.uint64]

# _BITS[v, b] = bit b of byte value v, to turn a byte histogram into per-bit counts.
_BITS = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(np.int64)


class PackError(ValueError):
    """A packed plane that does not describe ``count`` bytes."""


def _repeat(byte: int) -> np.uint64:
    """``byte`` in all eight lanes of a uint64."""
    return np.uint64(byte * 0x0101010101010101)


def _parts(mask: int) -> list[tuple[int, int]]:
    """The set bits of ``mask`` as fields of 4, 2 or 1 contiguous bits: (first bit, width).

    Each field is packed on its own, ``8 // width`` values to a byte, so a
    field is unpacked straight to its bit position with one shift and one mask.
    """
    parts = []
    bit = 0
    while bit < 8:
        if not mask >> bit & 1:
            bit += 1
            continue
        run = 0
        while bit + run < 8 and mask >> (bit + run) & 1:
            run += 1
        for width in (4, 2, 1):
            while run >= width:
                parts.append((bit, width))
                bit += width
                run -= width
    return parts


def _padded(count: int) -> int:
    return -(-count // _ALIGN) * _ALIGN


def _constant_bits(histogram: npt.NDArray[np.int64]) -> tuple[int, int]:
    """Bits that are the same in every value counted by ``histogram``: (mask, value)."""
    ones = histogram @ _BITS
    total = int(histogram.sum())
    mask = value = 0
    for bit in range(8):
        if ones[bit] == 0 or ones[bit] == total:
            mask |= 1 << bit
            if ones[bit]:
                value |= 1 << bit
    return mask, value


def _entropy_size(histogram: npt.NDArray[np.int64], count: int) -> float:
    """Order-0 entropy of ``count`` values distributed as ``histogram``, in bytes."""
    seen = histogram[histogram > 0] / histogram.sum()
    return float(-(seen * np.log2(seen)).sum()) * count / 8


def _shift(words: U64, by: int, out: U64) -> None:
    """``words`` shifted left by ``by`` bits (right when negative) into ``out``."""
    if by > 0:
        np.left_shift(words, by, out=out)
    elif by < 0:
        np.right_shift(words, -by, out=out)
    else:
        np.copyto(out, words)


@dataclass(frozen=True, slots=True)
class PackedPlane:
    """A packed plane, and what an entropy coder could hope for on the same bytes."""

    data: bytes
    entropy_size: float  # order-0 entropy of a sample, scaled to the plane, in bytes


def pack_plane(plane: U8, scratch: Scratch) -> PackedPlane | None:
    """``plane`` with its constant bits dropped; ``None`` if nothing is constant enough."""
    count = plane.size
    if count == 0:
        return None
    histogram = np.bincount(plane[:: max(1, count // _SAMPLE)], minlength=256)
    fixed, const = _constant_bits(histogram)
    if fixed == 0:
        return None
    broken = np.flatnonzero(np.bitwise_and(plane, fixed) != const)
    if broken.size > count * _MAX_EXCEPTIONS:
        return None
    mask = ~fixed & 0xFF
    padded = _padded(count)
    values = scratch.get("pack.values", padded)
    values[:count] = plane
    values[count:] = const
    words = values.view(np.uint64)
    term = scratch.get("pack.term", padded // 2).view(np.uint64)
    fields: list[bytes] = []
    for first, width in _parts(mask):
        lanes = 8 // width
        segment = padded // lanes // 8
        field = np.empty(segment, np.uint64)
        piece = term[:segment]
        for lane in range(lanes):
            source = words[lane * segment : (lane + 1) * segment]
            _shift(source, width * lane - first, piece)
            np.bitwise_and(piece, _repeat(((1 << width) - 1) << (width * lane)), out=piece)
            if lane:
                np.bitwise_or(field, piece, out=field)
            else:
                np.copyto(field, piece)
        fields.append(field.tobytes())
    data = b"".join(
        (
            _HEAD.pack(mask, const, broken.size),
            *fields,
            broken.astype("<u4").tobytes(),
            plane[broken].tobytes(),
        )
    )
    return PackedPlane(data, _entropy_size(histogram, count))


def unpack_plane(data: memoryview, count: int, scratch: Scratch, name: str) -> U8:
    """The ``count`` bytes of a packed plane, in ``scratch`` buffer ``name``."""
    if len(data) < _HEAD.size:
        raise PackError("packed plane is shorter than its header")
    mask, const, exceptions = _HEAD.unpack_from(data)
    if const & mask:
        raise PackError("packed plane has constant bits inside its mask")
    padded = _padded(count)
    packed_size = padded * mask.bit_count() // 8
    if len(data) != _HEAD.size + packed_size + 5 * exceptions or exceptions > count:
        raise PackError("packed plane sizes do not add up")
    values = scratch.get(name, padded)
    words = values.view(np.uint64)
    piece = scratch.get("unpack.piece", padded // 2).view(np.uint64)
    position = _HEAD.size
    for index, (first, width) in enumerate(_parts(mask)):
        lanes = 8 // width
        segment = padded // lanes // 8
        field = np.frombuffer(data, np.uint64, count=segment, offset=position)
        position += segment * 8
        lane_mask = _repeat(((1 << width) - 1) << first)
        for lane in range(lanes):
            target = words[lane * segment : (lane + 1) * segment]
            by = first - width * lane
            # The first field writes its bits straight into place; later ones OR theirs in.
            term = target if index == 0 else piece[:segment]
            if by:
                _shift(field, by, term)
                np.bitwise_and(term, lane_mask, out=term)
            else:
                np.bitwise_and(field, lane_mask, out=term)
            if index:
                np.bitwise_or(target, term, out=target)
    if not mask:
        words.fill(0)
    if const:
        np.bitwise_or(words, _repeat(const), out=words)
    plane = values[:count]
    if exceptions:
        indices = np.frombuffer(data, "<u4", count=exceptions, offset=position)
        patches = np.frombuffer(data, np.uint8, count=exceptions, offset=position + 4 * exceptions)
        if int(indices.max()) >= count:
            raise PackError("packed plane patches a value past its end")
        plane[indices] = patches
    return plane
