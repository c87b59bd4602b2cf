"""General-purpose codecs: raw (identity), zstd and lz4."""

from __future__ import annotations

import threading

import lz4.frame
import zstandard

from weightbase.errors import IntegrityError
from weightbase.tensors.codecs.base import Buffer, Codec
from weightbase.tensors.dtypes import DType

__all__ = ["LZ4Codec", "RawCodec", "ZstdCodec"]


class RawCodec(Codec):
    """Stores bytes as they are; raw chunks on a local store can be memory-mapped."""

    name = "raw"
    codec_id = 0

    def encode(self, raw: Buffer, dtype: DType) -> Buffer:
        return raw

    def decode(self, payload: Buffer, raw_size: int, dtype: DType) -> Buffer:
        if len(payload) != raw_size:
            raise IntegrityError(f"raw payload holds {len(payload)} bytes, expected {raw_size}")
        return payload


class ZstdCodec(Codec):
    """Zstandard at a fixed level; the frame records nothing but the payload."""

    name = "zstd"
    codec_id = 1

    def __init__(self, level: int = 3) -> None:
        self.level = level
        # zstandard contexts are not thread-safe; keep one per thread.
        self._local = threading.local()

    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = zstandard.ZstdCompressor(level=self.level)
        return compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        decompressor = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = self._local.decompressor = zstandard.ZstdDecompressor()
        return decompressor

    def encode(self, raw: Buffer, dtype: DType) -> Buffer:
        return self._compressor().compress(raw)

    def decode(self, payload: Buffer, raw_size: int, dtype: DType) -> Buffer:
        try:
            out = self._decompressor().decompress(payload, max_output_size=raw_size)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"zstd payload does not decode: {exc}") from exc
        if len(out) != raw_size:
            raise IntegrityError(f"zstd payload decoded to {len(out)} bytes, expected {raw_size}")
        return out


class LZ4Codec(Codec):
    """LZ4 frames: fast, modest ratio."""

    name = "lz4"
    codec_id = 2

    def encode(self, raw: Buffer, dtype: DType) -> Buffer:
        payload: bytes = lz4.frame.compress(raw, store_size=False)
        return payload

    def decode(self, payload: Buffer, raw_size: int, dtype: DType) -> Buffer:
        try:
            out: bytes = lz4.frame.decompress(payload)
        except RuntimeError as exc:
            raise IntegrityError(f"lz4 payload does not decode: {exc}") from exc
        if len(out) != raw_size:
            raise IntegrityError(f"lz4 payload decoded to {len(out)} bytes, expected {raw_size}")
        return out
