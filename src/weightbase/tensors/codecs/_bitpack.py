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

from weightbase.tensors.codecs import _native
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

    data: memoryview
    entropy_size: float  # order-0 entropy of a sample, scaled to the plane, in bytes


def pack_plane(plane: U8, scratch: Scratch) -> PackedPlane | None:
    """``plane`` with its constant bits dropped; ``None`` if nothing is constant enough."""
    count = plane.size
    if count == 0:
        return None
    native = _native.kernels()
    step = max(1, count // _SAMPLE)
    if native is not None:
        histogram = native.histogram(plane, step)
    else:
        histogram = np.bincount(plane[::step], minlength=256)
    fixed, const = _constant_bits(histogram)
    if fixed == 0:
        return None
    broken = _broken(plane, fixed, const, native)
    if broken is None:
        return None
    mask = ~fixed & 0xFF
    padded = _padded(count)
    values = plane
    if padded != count:  # the last segment's padding holds the constant bits
        values = scratch.get("pack.values", padded)
        values[:count] = plane
        values[count:] = const
    packed_size = padded * mask.bit_count() // 8
    data = np.empty(_HEAD.size + packed_size + 5 * broken.size, np.uint8)
    _HEAD.pack_into(data.data, 0, mask, const, broken.size)
    position = _HEAD.size
    for first, width in _parts(mask):
        segment = padded * width // 8
        field = data[position : position + segment]
        position += segment
        if native is not None:
            native.pack_field(values, segment, width, first, field)
        else:
            _pack_field(values, segment, width, first, field, scratch)
    data[position : position + 4 * broken.size] = broken.astype("<u4").view(np.uint8)
    data[position + 4 * broken.size :] = plane[broken]
    return PackedPlane(data.data, _entropy_size(histogram, count))


def _broken(
    plane: U8, fixed: int, const: int, native: _native.Kernels | None
) -> npt.NDArray[np.intp] | None:
    """Indices of the values whose ``fixed`` bits are not ``const``; ``None`` if too many."""
    limit = plane.size * _MAX_EXCEPTIONS
    if native is not None:
        # counting is one pass; finding the indices takes three, and is rarely needed
        found = native.count_broken(plane, fixed, const)
        if found > limit:
            return None
        if found == 0:
            return np.empty(0, np.intp)
    broken = np.flatnonzero(np.bitwise_and(plane, fixed) != const)
    return broken if broken.size <= limit else None


def _pack_field(
    values: U8, segment: int, width: int, first: int, field: U8, scratch: Scratch
) -> None:
    """Gather bits ``[first, first + width)`` of every value into ``field`` (NumPy)."""
    words = values.view(np.uint64)
    out = field.view(np.uint64)
    piece = scratch.get("pack.term", segment).view(np.uint64)
    step = segment // 8
    for lane in range(8 // width):
        source = words[lane * step : (lane + 1) * step]
        _shift(source, width * lane - first, piece)
        np.bitwise_and(piece, _repeat(((1 << width) - 1) << (width * lane)), out=piece)
        if lane:
            np.bitwise_or(out, piece, out=out)
        else:
            np.copyto(out, piece)


@dataclass(frozen=True, slots=True)
class _Packed:
    """A packed plane, checked and cut into its parts, not yet unpacked."""

    count: int
    padded: int  # values the fields hold: ``count`` padded to whole words
    const: int  # value of the constant bits
    fields: tuple[tuple[memoryview, int, int], ...]  # (packed bits, width, first bit)
    indices: npt.NDArray[np.uint32]  # values that break the constant bits, increasing
    patches: U8  # their whole bytes


def _parse(data: memoryview, count: int) -> _Packed:
    """Check a packed plane of ``count`` bytes and find its parts; ``PackError`` if it is bad."""
    if len(data) < _HEAD.size:
        raise PackError("packed plane is shorter than its header")
    mask, const, exceptions = _HEAD.unpack_from(data)
    if const & mask:
        raise PackError("packed plane has constant bits inside its mask")
    padded = _padded(count)
    packed_size = padded * mask.bit_count() // 8
    if len(data) != _HEAD.size + packed_size + 5 * exceptions or exceptions > count:
        raise PackError("packed plane sizes do not add up")
    fields = []
    position = _HEAD.size
    for first, width in _parts(mask):
        segment = padded * width // 8
        fields.append((data[position : position + segment], width, first))
        position += segment
    indices = np.frombuffer(data, "<u4", count=exceptions, offset=position)
    patches = np.frombuffer(data, np.uint8, count=exceptions, offset=position + 4 * exceptions)
    if exceptions and int(indices.max()) >= count:
        raise PackError("packed plane patches a value past its end")
    return _Packed(count, padded, const, tuple(fields), indices, patches)


def unpack_plane(data: memoryview, count: int, scratch: Scratch, name: str) -> U8:
    """The ``count`` bytes of a packed plane, in ``scratch`` buffer ``name``."""
    return _unpack(_parse(data, count), scratch, name)


def _unpack(packed: _Packed, scratch: Scratch, name: str) -> U8:
    """The bytes of a parsed packed plane, in ``scratch`` buffer ``name``."""
    values = scratch.get(name, packed.padded)
    native = _native.kernels() if packed.fields else None
    if native is not None:
        for index, (bits, width, first) in enumerate(packed.fields):
            native.unpack_field(
                bits, len(bits), width, first, accumulate=index > 0, fill=packed.const, out=values
            )
    else:
        _unpack_numpy(packed, values, scratch)
    plane = values[: packed.count]
    plane[packed.indices] = packed.patches
    return plane


def _unpack_numpy(packed: _Packed, values: U8, scratch: Scratch) -> None:
    words = values.view(np.uint64)
    piece = scratch.get("unpack.piece", packed.padded // 2).view(np.uint64)
    for index, (bits, width, first) in enumerate(packed.fields):
        segment = len(bits) // 8
        field = np.frombuffer(bits, np.uint64)
        lane_mask = _repeat(((1 << width) - 1) << first)
        for lane in range(8 // width):
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
    if not packed.fields:
        words.fill(0)
    if packed.const:
        np.bitwise_or(words, _repeat(packed.const), out=words)
