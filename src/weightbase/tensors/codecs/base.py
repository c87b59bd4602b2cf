"""The codec interface: raw chunk bytes in, payload out, and back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from weightbase.tensors.dtypes import DType

# Anything exposing the buffer protocol: bytes, bytearray, memoryview, mmap, NumPy arrays.
Buffer = bytes | bytearray | memoryview


class Codec(ABC):
    """A lossless transform of one chunk's bytes.

    ``decode(encode(raw, dtype), len(raw), dtype) == raw`` for every input;
    implementations may use ``dtype`` to pick a better layout but must not
    depend on it for correctness beyond its ``itemsize``.
    """

    name: ClassVar[str]
    codec_id: ClassVar[int]

    @abstractmethod
    def encode(self, raw: Buffer, dtype: DType) -> Buffer:
        """Compress ``raw`` (the bytes of whole elements of ``dtype``)."""

    @abstractmethod
    def decode(self, payload: Buffer, raw_size: int, dtype: DType) -> Buffer:
        """Restore exactly ``raw_size`` bytes from ``payload``."""
