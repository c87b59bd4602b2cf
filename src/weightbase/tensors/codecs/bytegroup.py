"""Byte-grouped compression for floating point (placeholder: planes + zstd)."""

from __future__ import annotations

import numpy as np
import zstandard

from weightbase.errors import IntegrityError
from weightbase.tensors.codecs.base import Buffer, Codec
from weightbase.tensors.dtypes import DType

__all__ = ["ByteGroupCodec"]


class ByteGroupCodec(Codec):
    """Splits each value's bytes into planes, then entropy-codes each plane."""

    name = "bytegroup"
    codec_id = 3

    def encode(self, raw: Buffer, dtype: DType) -> Buffer:
        width = dtype.itemsize
        data = np.frombuffer(raw, dtype=np.uint8)
        if width == 1 or data.size % width:
            return b"\x00" + zstandard.compress(bytes(raw), 3)
        planes = np.ascontiguousarray(data.reshape(-1, width).T)
        return b"\x01" + zstandard.compress(planes.tobytes(), 3)

    def decode(self, payload: Buffer, raw_size: int, dtype: DType) -> Buffer:
        mode = bytes(payload[:1])
        try:
            body = zstandard.decompress(bytes(payload[1:]), max_output_size=raw_size)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"bytegroup payload does not decode: {exc}") from exc
        if len(body) != raw_size:
            raise IntegrityError("bytegroup payload has the wrong length")
        if mode == b"\x00":
            return body
        width = dtype.itemsize
        planes = np.frombuffer(body, dtype=np.uint8).reshape(width, -1)
        return np.ascontiguousarray(planes.T).tobytes()
