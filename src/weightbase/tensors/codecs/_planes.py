"""Bit-plane layouts for floating-point values: split each value into byte planes and back.

2- and 4-byte values go through the compiled kernels (``_native``) where they
are built: one pass each way. The NumPy code, which gives the same bytes, uses
only whole-array ufuncs (no strided byte copies) writing into caller-owned
buffers, so it too runs near memory speed and releases the GIL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from weightbase.tensors.codecs import _native

__all__ = [
    "U8",
    "WIDTHS",
    "PlaneLayout",
    "Scratch",
    "low_halves",
    "merge_planes",
    "split_planes",
]

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]

_UINT: dict[int, type[np.unsignedinteger[Any]]] = {2: np.uint16, 4: np.uint32, 8: np.uint64}
WIDTHS = tuple(_UINT)


@dataclass(frozen=True, slots=True)
class PlaneLayout:
    """How one ``width``-byte float is cut into ``width`` byte planes.

    The top 16 bits of a value (sign, exponent, leading mantissa bits) make two
    planes: ``head`` holds bits ``split + 7 .. split`` (the low exponent bits and
    the first mantissa bits, whose joint distribution is skewed), ``rest`` holds
    the bits above and below that window (sign and the nearly constant high
    exponent bits, then mantissa). The remaining ``width - 2`` bytes become one
    plane each, most significant first.
    """

    width: int
    split: int  # 8: plain byte planes, for XOR residuals whose exponents are mostly zero

    def __post_init__(self) -> None:
        if self.width not in _UINT or not 1 <= self.split <= 8:
            raise ValueError(f"no plane layout for width {self.width}, split {self.split}")

    @property
    def rest_mask(self) -> int:
        """Bits of the top 16 that go into the ``rest`` plane, in place."""
        return (((0xFF << self.split) & 0xFF) << 8) | ((1 << self.split) - 1)


class Scratch:
    """Reusable buffers for one thread: fresh multi-MiB arrays cost page faults on every call."""

    def __init__(self) -> None:
        self._buffers: dict[str, U8] = {}

    def get(self, name: str, size: int) -> U8:
        """A buffer of at least ``size`` bytes (contents undefined), reused across calls."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(max(size, 1 << 16), np.uint8)
        return buffer[:size]

    def words16(self, name: str, count: int) -> U16:
        return self.get(name, 2 * count).view(np.uint16)


def split_planes(values: U8, layout: PlaneLayout, scratch: Scratch) -> list[U8]:
    """Cut ``values`` (whole elements, little-endian) into ``layout.width`` planes.

    The planes are views into ``scratch`` and stay valid until its next use.
    """
    width = layout.width
    words = values.view(_UINT[width])
    count = words.size
    store = scratch.get("split.planes", width * count)
    planes = [store[index * count : (index + 1) * count] for index in range(width)]
    native = _native.kernels() if width < 8 else None
    if native is not None:
        split = native.split2 if width == 2 else native.split4
        split(values, layout.split, layout.rest_mask, planes)
        return planes
    head, rest = planes[0], planes[1]
    if width == 2:
        top = words
    else:
        top = scratch.words16("split.top", count)
        np.right_shift(words, 8 * width - 16, out=top, casting="unsafe")
    np.right_shift(top, layout.split, out=head, casting="unsafe")
    # rest = the top byte's high bits | the low ``split`` bits, packed into one byte.
    masked = scratch.words16("split.masked", count)
    np.bitwise_and(top, layout.rest_mask, out=masked)
    shifted = top if width > 2 else scratch.words16("split.shifted", count)
    np.right_shift(masked, 8, out=shifted)
    np.bitwise_or(masked, shifted, out=rest, casting="unsafe")
    for byte, plane in zip(range(width - 3, -1, -1), planes[2:], strict=True):
        if byte:
            np.right_shift(words, 8 * byte, out=plane, casting="unsafe")
        else:
            np.copyto(plane, words, casting="unsafe")
    return planes


def low_halves(values: U8, scratch: Scratch) -> U8:
    """The low 16 bits of each 4-byte value, as they lie in memory (little-endian uint16)."""
    words = values.view(np.uint32)
    halves = scratch.words16("split.low", words.size)
    np.copyto(halves, words, casting="unsafe")
    return halves.view(np.uint8)


def merge_planes(
    planes: list[U8], layout: PlaneLayout, out: U8, scratch: Scratch, low: U8 | None = None
) -> None:
    """Inverse of :func:`split_planes`: write the interleaved values into ``out``.

    For 4-byte values the two low planes may come as ``low`` instead, the output
    of :func:`low_halves`, which saves three passes.
    """
    width = layout.width
    words = out.view(_UINT[width])
    count = words.size
    head, rest = planes[0], planes[1]
    native = _native.kernels() if width < 8 else None
    if native is not None:
        if width == 2:
            native.merge2(head, rest, layout.split, layout.rest_mask, out)
        elif low is None:
            native.merge4(head, rest, planes[2], planes[3], layout.split, layout.rest_mask, out)
        else:
            native.merge4_low(head, rest, low, layout.split, layout.rest_mask, out)
        return
    top = words if width == 2 else scratch.words16("merge.top", count)
    # rest * 257 copies its byte into both halves; the mask keeps each half's own bits.
    np.copyto(top, rest)
    np.multiply(top, 257, out=top)
    np.bitwise_and(top, layout.rest_mask, out=top)
    shifted = scratch.words16("merge.head", count)
    np.copyto(shifted, head)
    np.left_shift(shifted, layout.split, out=shifted)
    np.bitwise_or(top, shifted, out=top)
    if width == 2:
        return
    if width == 4:
        if low is None:
            halves = scratch.words16("merge.low", count)
            np.copyto(halves, planes[2])
            np.left_shift(halves, 8, out=halves)
            np.bitwise_or(halves, planes[3], out=halves)
        else:
            halves = low.view(np.uint16)
        np.copyto(words, top)
        np.left_shift(words, 16, out=words)
        np.bitwise_or(words, halves, out=words)
        return
    np.copyto(words, top)
    np.left_shift(words, 8 * width - 16, out=words)
    wide = scratch.get("merge.wide", width * count).view(words.dtype)
    for byte, plane in zip(range(width - 3, -1, -1), planes[2:], strict=True):
        np.copyto(wide, plane)
        if byte:
            np.left_shift(wide, 8 * byte, out=wide)
        np.bitwise_or(words, wide, out=words)
